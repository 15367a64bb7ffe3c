// The HTTP API of the edge Worker, against `wrangler dev`: every bad-input row gets a 4xx with
// `{ error: { code, message } }`, publishing is idempotent by id, and /stats counts it all.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { EdgeServer, RawSocket } from './support/server.mjs';

const server = new EdgeServer({ vars: { MAX_PAYLOAD_BYTES: 1024, MAX_BATCH_PUBLISH: 10 } });
let token;

before(async () => {
  await server.start();
  token = await server.token({ pub: ['orders.>', 'jobs.>'], sub: ['>'] });
}, { timeout: 120_000 });
after(() => server.dispose());

function assertError(res, status, code) {
  assert.equal(res.status, status, JSON.stringify(res.body));
  assert.equal(res.body.error.code, code);
  assert.equal(typeof res.body.error.message, 'string');
  assert.ok(res.body.error.message.length > 10, res.body.error.message);
}

async function raw(method, path, { body, auth = token, headers = {} } = {}) {
  const h = { ...headers };
  if (auth !== null) h.authorization = `Bearer ${auth}`;
  const r = await fetch(server.url + path, { method, headers: h, body });
  return { status: r.status, body: await r.json() };
}

test('bad input rows: each a 4xx with a typed error, never a 5xx', async () => {
  const big = 'x'.repeat(2000);
  const rows = [
    ['malformed JSON', () => raw('POST', '/publish', { body: '{"topic": "orders.a", ' }), 400, 'BAD_JSON'],
    ['empty body', () => raw('POST', '/publish', { body: '' }), 400, 'BAD_JSON'],
    ['a number instead of a message', () => raw('POST', '/publish', { body: '42' }), 400, 'BAD_REQUEST'],
    ['null', () => raw('POST', '/publish', { body: 'null' }), 400, 'BAD_REQUEST'],
    ['empty batch', () => raw('POST', '/publish', { body: '[]' }), 400, 'BAD_REQUEST'],
    ['unknown field', () => raw('POST', '/publish', { body: JSON.stringify({ topic: 'orders.a', payload: 1, colour: 'red' }) }), 400, 'BAD_REQUEST'],
    ['missing payload', () => raw('POST', '/publish', { body: JSON.stringify({ topic: 'orders.a' }) }), 400, 'BAD_REQUEST'],
    ['id not a string', () => raw('POST', '/publish', { body: JSON.stringify({ topic: 'orders.a', payload: 1, id: 7 }) }), 400, 'BAD_REQUEST'],
    ['empty token in topic', () => raw('POST', '/publish', { body: JSON.stringify({ topic: 'orders..a', payload: 1 }) }), 400, 'INVALID_TOPIC'],
    ['wildcard in topic', () => raw('POST', '/publish', { body: JSON.stringify({ topic: 'orders.*', payload: 1 }) }), 400, 'INVALID_TOPIC'],
    ['topic not a string', () => raw('POST', '/publish', { body: JSON.stringify({ topic: 5, payload: 1 }) }), 400, 'INVALID_TOPIC'],
    ['invalid topic inside a batch', () => raw('POST', '/publish', { body: JSON.stringify([{ topic: 'orders.a', payload: 1 }, { topic: 'orders. a', payload: 1 }]) }), 400, 'INVALID_TOPIC'],
    ['oversize payload', () => raw('POST', '/publish', { body: JSON.stringify({ topic: 'orders.a', payload: big }) }), 413, 'MESSAGE_TOO_LARGE'],
    ['oversize batch', () => raw('POST', '/publish', { body: JSON.stringify(Array.from({ length: 11 }, () => ({ topic: 'orders.a', payload: 1 }))) }), 413, 'BATCH_TOO_LARGE'],
    ['unknown route', () => raw('GET', '/nothing-here'), 404, 'NOT_FOUND'],
    ['wrong method on /publish', () => raw('GET', '/publish'), 405, 'METHOD_NOT_ALLOWED'],
    ['wrong method on /stats', () => raw('POST', '/stats', { body: '{}' }), 405, 'METHOD_NOT_ALLOWED'],
    ['/connect without a WebSocket upgrade', () => raw('GET', '/connect'), 400, 'BAD_REQUEST'],
    ['no token', () => raw('POST', '/publish', { auth: null, body: JSON.stringify({ topic: 'orders.a', payload: 1 }) }), 401, 'UNAUTHORIZED'],
    ['not a bearer header', () => raw('POST', '/publish', { auth: null, headers: { authorization: 'Basic abc' }, body: '{}' }), 401, 'UNAUTHORIZED'],
    ['forged signature', () => raw('POST', '/publish', { auth: token.slice(0, -4) + 'AAAA', body: JSON.stringify({ topic: 'orders.a', payload: 1 }) }), 401, 'UNAUTHORIZED'],
    ['garbage token', () => raw('POST', '/publish', { auth: 'not-a-token', body: '{}' }), 401, 'UNAUTHORIZED'],
  ];
  for (const [name, run, status, code] of rows) {
    const res = await run();
    assert.ok(res.status < 500, `${name}: ${res.status}`);
    try {
      assertError(res, status, code);
    } catch (e) {
      e.message = `${name}: ${e.message}`;
      throw e;
    }
  }
});

test('an expired token is refused with TOKEN_EXPIRED; a topic outside the claims with FORBIDDEN', async () => {
  const expired = await server.token({ ttl: -5 });
  assertError(await server.post('/publish', { topic: 'orders.a', payload: 1 }, expired), 401, 'TOKEN_EXPIRED');
  const res = await server.post('/publish', { topic: 'billing.a', payload: 1 }, token);
  assertError(res, 403, 'FORBIDDEN');
  assert.match(res.body.error.message, /billing\.a/);
  // A token signed with another secret does not verify.
  const { signToken } = await import('../../edge/src/auth.js');
  const other = await signToken({ pub: ['>'], sub: [], exp: Math.floor(Date.now() / 1000) + 60 }, 'another-secret');
  assertError(await server.post('/publish', { topic: 'orders.a', payload: 1 }, other), 401, 'UNAUTHORIZED');
});

test('publishing is idempotent by id: the second publish is a duplicate, delivered once, counted', async () => {
  const ws = await RawSocket.open(`${server.wsUrl}/connect?token=${token}`);
  assert.equal((await ws.request({ op: 'sub', id: 1, pattern: 'orders.>' })).t, 'ok');
  const before = (await server.stats()).total.duplicates;
  const first = await server.post('/publish', { topic: 'orders.eu', payload: { n: 1 }, id: 'order-1' }, token);
  assert.deepEqual(first, { status: 200, body: { accepted: true, stored: false } }, 'no work queue on orders: not stored');
  const again = await server.post('/publish', { topic: 'orders.eu', payload: { n: 1 }, id: 'order-1' }, token);
  assert.deepEqual(again, { status: 200, body: { accepted: false, duplicate: true } });
  // A batch: a new id, the same one again within the batch, and one without an id.
  const batch = await server.post('/publish', [
    { topic: 'orders.us', payload: 2, id: 'order-2' },
    { topic: 'orders.us', payload: 2, id: 'order-2' },
    { topic: 'orders.us', payload: 3 },
  ], token);
  assert.deepEqual(batch.body.results, [{ accepted: true, stored: false }, { accepted: false, duplicate: true }, { accepted: true, stored: false }]);
  const got = await ws.waitMessages(3);
  // A marker publish after the duplicates proves nothing else is on its way.
  await server.post('/publish', { topic: 'orders.end', payload: 'end' }, token);
  const all = await ws.waitMessages(4);
  assert.deepEqual(all.map((m) => m.msg.payload), [{ n: 1 }, 2, 3, 'end']);
  assert.deepEqual(all.slice(0, 2).map((m) => m.msg.id), ['order-1', 'order-2']);
  assert.equal(typeof got[2].msg.id, 'string', 'a message published without an id gets one from its hub');
  const stats = await server.stats();
  assert.equal(stats.total.duplicates - before, 2);
  await ws.close();
});

test('GET /stats sums every hub and lists them', async () => {
  const stats = await server.stats();
  assert.equal(stats.hubs, 8);
  assert.equal(stats.perHub.length, 8);
  assert.deepEqual(stats.perHub.map((h) => h.hub), [0, 1, 2, 3, 4, 5, 6, 7]);
  assert.ok(stats.total.published >= 4, `published ${stats.total.published}`);
  for (const k of ['delivered', 'frames', 'dropped', 'rateLimited', 'tooLarge', 'forbidden', 'duplicates']) {
    assert.equal(typeof stats.total[k], 'number', k);
  }
  const res = await fetch(`${server.url}/stats`);
  assert.equal(res.status, 401);
});
