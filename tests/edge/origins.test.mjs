// How the token travels, and which origins may call: `Authorization: Bearer` on WebSocket upgrades
// too (the package's client sends it so outside browsers, never in the URL), the `bearer.<token>`
// subprotocol or `?token=` for browsers; ALLOWED_ORIGINS checked on HTTP and WebSocket requests
// that carry an Origin, with CORS for POST /publish (and GET /stats) from allowed origins.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { connect } from 'edgebus';
import { EdgeServer } from './support/server.mjs';

const APP = 'https://app.example.com';
const server = new EdgeServer({ vars: { ALLOWED_ORIGINS: `${APP}, https://admin.example.com/` } });
let token;

before(async () => {
  await server.start();
  token = await server.token({ pub: ['orders.>'], sub: ['orders.>'] });
}, { timeout: 120_000 });
after(() => server.dispose());

/** A WebSocket upgrade by hand, with any headers: resolves to the HTTP status (101 when upgraded). */
function upgrade(headers, path = '/connect') {
  return new Promise((resolve, reject) => {
    const req = request(`${server.url}${path}`, {
      headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', ...headers },
    });
    req.on('upgrade', (res, socket) => { socket.destroy(); resolve({ status: res.statusCode, headers: res.headers }); });
    req.on('response', (res) => {
      let body = '';
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('POST /publish from an allowed origin: preflight and response carry CORS headers', async () => {
  const pre = await fetch(`${server.url}/publish`, {
    method: 'OPTIONS',
    headers: { origin: APP, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' },
  });
  assert.equal(pre.status, 204);
  assert.equal(pre.headers.get('access-control-allow-origin'), APP);
  assert.equal(pre.headers.get('access-control-allow-methods'), 'POST');
  assert.match(pre.headers.get('access-control-allow-headers'), /authorization/);
  assert.match(pre.headers.get('access-control-allow-headers'), /content-type/);
  assert.match(pre.headers.get('vary'), /Origin/);

  const r = await fetch(`${server.url}/publish`, {
    method: 'POST', headers: { origin: APP, authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ topic: 'orders.cors', payload: 1 }),
  });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('access-control-allow-origin'), APP);
  // Refusals are readable by the page too.
  const bad = await fetch(`${server.url}/publish`, { method: 'POST', headers: { origin: 'https://admin.example.com', authorization: `Bearer ${token}` }, body: '{' });
  assert.equal(bad.status, 400);
  assert.equal(bad.headers.get('access-control-allow-origin'), 'https://admin.example.com');
  // Without an Origin (servers, curl): no CORS headers, served as before.
  const server2server = await server.post('/publish', { topic: 'orders.cors', payload: 2 }, token);
  assert.deepEqual(server2server, { status: 200, body: { accepted: true, stored: false } });
});

test('an origin outside ALLOWED_ORIGINS is refused on HTTP, preflight and WebSocket', async () => {
  const evil = 'https://evil.example';
  const pre = await fetch(`${server.url}/publish`, { method: 'OPTIONS', headers: { origin: evil, 'access-control-request-method': 'POST' } });
  assert.equal(pre.status, 403);
  assert.equal(pre.headers.get('access-control-allow-origin'), null);
  assert.equal((await pre.json()).error.code, 'ORIGIN_NOT_ALLOWED');
  const r = await fetch(`${server.url}/publish`, {
    method: 'POST', headers: { origin: evil, authorization: `Bearer ${token}` }, body: JSON.stringify({ topic: 'orders.x', payload: 1 }),
  });
  assert.equal(r.status, 403);
  assert.equal(r.headers.get('access-control-allow-origin'), null);
  assert.equal((await r.json()).error.code, 'ORIGIN_NOT_ALLOWED');
  const stats = await fetch(`${server.url}/stats`, { headers: { origin: evil, authorization: `Bearer ${token}` } });
  assert.equal(stats.status, 403);

  const refused = await upgrade({ origin: evil, authorization: `Bearer ${token}` });
  assert.equal(refused.status, 403);
  assert.equal(JSON.parse(refused.body).error.code, 'ORIGIN_NOT_ALLOWED');
  const allowed = await upgrade({ origin: APP, authorization: `Bearer ${token}` });
  assert.equal(allowed.status, 101);
});

test('the token in an Authorization header or the bearer subprotocol opens a WebSocket', async () => {
  const h = await new Promise((resolve, reject) => {
    const ws = new WebSocket(`${server.wsUrl}/connect`, { headers: { authorization: `Bearer ${token}` } });
    ws.onmessage = (e) => { resolve(JSON.parse(e.data)); ws.close(); };
    ws.onerror = () => reject(new Error('the upgrade failed'));
  });
  assert.equal(h.t, 'hello');

  const p = await new Promise((resolve, reject) => {
    const ws = new WebSocket(`${server.wsUrl}/connect`, ['edgebus', `bearer.${token}`]);
    ws.onmessage = (e) => { resolve({ protocol: ws.protocol, frame: JSON.parse(e.data) }); ws.close(); };
    ws.onerror = () => reject(new Error('the upgrade failed'));
  });
  assert.deepEqual([p.protocol, p.frame.t], ['edgebus', 'hello']);

  // A refusal through the subprotocol still completes the handshake, so a browser reads why.
  const r = await new Promise((resolve, reject) => {
    const ws = new WebSocket(`${server.wsUrl}/connect`, ['edgebus', 'bearer.forged.token']);
    ws.onmessage = (e) => resolve({ protocol: ws.protocol, frame: JSON.parse(e.data) });
    ws.onerror = () => reject(new Error('the upgrade failed'));
  });
  assert.deepEqual([r.protocol, r.frame.code], ['edgebus', 'UNAUTHORIZED']);
});

test('connect() in Node sends the token in a header, never in the URL', { timeout: 30_000 }, async () => {
  const opened = [];
  class Recording extends WebSocket {
    constructor(url, options) {
      super(url, options);
      opened.push({ url, options });
    }
  }
  const bus = connect(server.url, { token, WebSocket: Recording });
  const got = [];
  const sub = bus.subscribe('orders.node', (payload) => got.push(payload));
  await sub.ready;
  assert.equal(await bus.publishAsync('orders.node', 'hi'), true);
  while (got.length === 0) await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(got, ['hi']);
  assert.equal(opened.length, 1);
  assert.doesNotMatch(opened[0].url, /token/);
  assert.doesNotMatch(opened[0].url, new RegExp(token.slice(0, 20)));
  assert.equal(opened[0].options.headers.authorization, `Bearer ${token}`);
  assert.deepEqual(await bus.close(), { remaining: [] });
});
