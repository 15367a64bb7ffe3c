// Attacks by a token holder of one tenant of a shared deployment, against `wrangler dev`. Each
// test is one attack and asserts the defended outcome: refused with the documented code, nothing
// of another tenant (namespace) read, acknowledged, deduplicated against, dead-lettered, observed or
// changed (retained values and history included: replay), and the counters of each namespace right. Two tenants, `acme` and `bolt`, hold tokens
// with the very same claims; `acme` also has narrow tokens, to act beyond their claims within it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { randomBytes } from 'node:crypto';
import { EdgeServer, RawSocket } from './support/server.mjs';
import { signToken } from '../../edge/src/auth.js';
import { hubOfTopic } from '../../edge/src/routing.js';

const HUBS = 8;
const keys = { k1: 'first-key-secret', k2: 'second-key-secret' };
// A depth limit above what a call between hubs can carry, to make a forward fail (see the
// counting test); nothing else here depends on it.
const server = new EdgeServer({ keys, vars: { MAX_PAYLOAD_DEPTH: '100000' } });
const claims = { pub: ['orders.>', 'jobs.>', 'chat.>'], sub: ['orders.>', 'jobs.>', 'chat.>', '$dead.>'] };
let acme;
let bolt;

before(async () => {
  await server.start();
  acme = await server.token({ ...claims, ns: 'acme' });
  bolt = await server.token({ ...claims, ns: 'bolt' });
}, { timeout: 120_000 });
after(() => server.dispose());

const open = (t, query = '') => RawSocket.open(`${server.wsUrl}/connect?token=${t}${query}`);
const view = (t) => server.stats(t);
const queue = async (t, group) => (await view(t)).groups.find((g) => g.group === group);
const pick = (o, ks) => ks.map((k) => o[k]);
/** A topic prefix whose topics the hub `hub` owns (one routed token). */
function prefixOn(hub, not = []) {
  for (let i = 0; ; i++) {
    const p = `p${i}`;
    if (hubOfTopic(p, HUBS, 1) === hub && !not.includes(p)) return p;
  }
}
let syncs = 1000;
/** Waits until every frame sent before on `s` was handled (a reply to a later subscription to `pattern`). */
async function settle(s, pattern) {
  const id = syncs++;
  assert.equal((await s.request({ op: 'sub', id, pattern: pattern ?? `orders.sync${id}` })).t, 'ok');
}
/** The raw HTTP answer to `path` as written (no normalization by a client library). */
function rawGet(path, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: server.port, path, method: 'GET', headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode, body: body.startsWith('{') ? JSON.parse(body) : body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('another tenant\'s work queue with the same group and pattern: its depth, messages, ids and `del` are out of reach', { timeout: 60_000 }, async () => {
  // acme's work queue `workers` on `jobs.q`, memberless, with three stored messages.
  const a = await open(acme);
  assert.equal((await a.request({ op: 'sub', id: 1, pattern: 'jobs.q', group: 'workers' })).t, 'ok');
  assert.equal((await a.request({ op: 'unsub', id: 1 })).t, 'ok');
  const ids = ['job-1', 'job-2', 'job-3'];
  const res = await server.post('/publish', ids.map((id) => ({ topic: 'jobs.q', payload: `acme-${id}`, id })), acme);
  assert.deepEqual(res.body.results, ids.map(() => ({ accepted: true, stored: true })));
  const acme0 = (await view(acme)).total;

  // bolt, with the same claims: sees no such queue, deletes nothing, dedupes against nothing.
  assert.equal(await queue(bolt, 'workers'), undefined);
  const b = await open(bolt);
  const del = await b.request({ op: 'del', group: 'workers', pattern: 'jobs.q', ref: 'd' });
  assert.deepEqual(del, { t: 'ok', op: 'del', ref: 'd', found: false, discarded: 0 });
  const dup = await b.request({ op: 'pub', topic: 'jobs.q', payload: 'bolt-job-1', id: 'job-1', ref: 'p' });
  assert.deepEqual(dup, { t: 'ok', op: 'pub', ref: 'p', stored: false }, 'acme\'s id is no duplicate for bolt, and acme\'s queue does not store bolt\'s message');
  // bolt joins a queue of the same name and pattern: its own, empty; nothing of acme's arrives.
  assert.equal((await b.request({ op: 'sub', id: 1, pattern: 'jobs.q', group: 'workers' })).t, 'ok');
  assert.equal((await b.request({ op: 'sub', id: 2, pattern: 'jobs.>' })).t, 'ok');
  assert.equal((await b.request({ op: 'sub', id: 3, pattern: '$dead.workers' })).t, 'ok');
  await settle(b);
  assert.deepEqual(b.messages(), []);
  const bq = await queue(bolt, 'workers');
  assert.deepEqual(pick(bq, ['members', 'stored', 'waiting', 'inFlight']), [1, 0, 0, 0]);
  assert.equal((await view(bolt)).groups.length, 1, 'bolt sees its own queue only');

  // acme's queue is as it was, and its consumer gets exactly its three messages.
  let aq = await queue(acme, 'workers');
  assert.deepEqual(pick(aq, ['members', 'stored', 'waiting', 'done', 'dead']), [0, 3, 3, 0, 0]);
  assert.deepEqual(pick((await view(acme)).total, ['published', 'duplicates', 'acked', 'dead']), pick(acme0, ['published', 'duplicates', 'acked', 'dead']));
  assert.equal((await a.request({ op: 'sub', id: 2, pattern: 'jobs.q', group: 'workers' })).t, 'ok');
  const got = await a.waitMessages(3);
  assert.deepEqual(got.map((m) => m.msg.payload), ids.map((id) => `acme-${id}`));
  a.send({ op: 'ack', sub: 2, d: got.map((m) => m.d) });
  await settle(a);
  aq = await queue(acme, 'workers');
  assert.deepEqual(pick(aq, ['stored', 'done']), [0, 3]);
  assert.deepEqual(b.messages(), []);
  for (const s of [a, b]) await s.close();
});

test('wildcards never reach `$` topics: `>`, `*`, `*.workers` get no dead letter, `$` topics need their own claims, a look-alike `＄` is an ordinary topic', { timeout: 60_000 }, async () => {
  const wide = await server.token({ pub: ['>'], sub: ['>'], ns: 'acme' });
  const w = await open(wide);
  for (const pattern of ['$dead.>', '$dead.*', '$dead.workers2', '$errors', '$>']) {
    const r = await w.request({ op: 'sub', id: 1, pattern });
    assert.ok(r.t === 'err' && ['FORBIDDEN', 'INVALID_PATTERN'].includes(r.code), `${pattern}: ${JSON.stringify(r)}`);
  }
  for (const topic of ['$dead.workers2', '$errors', '$dead']) {
    const r = await w.request({ op: 'pub', topic, payload: { forged: true }, ref: topic });
    assert.deepEqual([r.t, r.code], ['err', 'FORBIDDEN'], `publishing to ${topic}`);
    const h = await server.post('/publish', { topic, payload: { forged: true } }, wide);
    assert.deepEqual([h.status, h.body.error?.code], [403, 'FORBIDDEN'], `POST /publish to ${topic}`);
  }
  for (const [id, pattern] of [[2, '>'], [3, '*'], [4, '*.workers2'], [5, '*.>']]) {
    assert.equal((await w.request({ op: 'sub', id, pattern })).t, 'ok', pattern);
  }
  // A job of acme dies; its letter reaches the subscriber whose claims name `$dead`, no wildcard.
  const ops = await open(await server.token({ pub: [], sub: ['$dead.workers2'], ns: 'acme' }));
  assert.equal((await ops.request({ op: 'sub', id: 1, pattern: '$dead.workers2' })).t, 'ok');
  const c = await open(acme);
  assert.equal((await c.request({ op: 'sub', id: 1, pattern: 'jobs.w2', group: 'workers2', maxAttempts: 1 })).t, 'ok');
  assert.equal((await server.post('/publish', { topic: 'jobs.w2', payload: 'j', id: 'w2-1' }, acme)).body.stored, true);
  const [job] = await c.waitMessages(1);
  c.send({ op: 'nack', sub: 1, d: [job.d], error: 'failed' });
  const [letter] = await ops.waitMessages(1);
  assert.equal(letter.msg.topic, '$dead.workers2');
  // A look-alike with a fullwidth dollar sign is an ordinary topic: the wildcards get it, the
  // dead-letter subscriber does not.
  assert.deepEqual((await server.post('/publish', { topic: '＄dead.workers2', payload: 'look-alike' }, wide)).body, { accepted: true, stored: false });
  await settle(w);
  await settle(ops, '$dead.workers2');
  assert.deepEqual(w.messages().map((m) => [m.msg.topic, m.subs]), [['jobs.w2', [2, 5]], ['＄dead.workers2', [2, 4, 5]]],
    'the job and the look-alike; no `$` topic reached a wildcard');
  assert.equal(ops.messages().length, 1, 'the look-alike is not a dead letter');
  for (const s of [w, ops, c]) await s.close();
});

test('spellings that look alike are other topics: case, fullwidth dots, zero-width and bidi characters, escapes; none passes a narrow token\'s claims', { timeout: 60_000 }, async () => {
  const narrow = await server.token({ pub: ['chat.room1.>'], sub: ['chat.room1.>'], ns: 'acme' });
  const s = await open(narrow);
  const topics = [
    'chat.room2.x', 'Chat.room1.x', 'chat.ROOM1.x', 'chat．room1.x', 'chat.room1', 'chat.room1\u200B.x', 'chat.\u202Eroom1.x',
    'chat.room1\u00A0.x', 'chat\u2024room1.x', 'chat.room１.x', 'chat.room1.x\u0000', 'chat.room1.\uD800',
  ];
  assert.equal((await s.request({ op: 'sub', id: 50, pattern: 'chat.room1.*' })).t, 'ok');
  let ref = 0;
  for (const topic of topics) {
    const r = await s.request({ op: 'pub', topic, payload: 1, ref: ++ref });
    assert.ok(r.t === 'err' && ['FORBIDDEN', 'INVALID_TOPIC'].includes(r.code), `${JSON.stringify(topic)}: ${JSON.stringify(r)}`);
    const h = await server.post('/publish', { topic, payload: 1 }, narrow);
    assert.ok([403, 400].includes(h.status) && ['FORBIDDEN', 'INVALID_TOPIC'].includes(h.body.error.code), `POST ${JSON.stringify(topic)}: ${h.status}`);
  }
  // A JSON escape spells the same string: that topic is the one the claims name, and allowed.
  s.send('{"op":"pub","topic":"chat.room\\u0031.x","payload":"escaped","ref":"esc"}');
  assert.deepEqual(await s.waitFor((f) => f.ref === 'esc'), { t: 'ok', op: 'pub', ref: 'esc', stored: false });
  const patterns = ['chat.*.x', 'chat.>', '*.room1.>', '>', 'chat.ROOM1.>', 'chat．room1.>', 'chat.room1\u200B.>', 'chat.*', '$dead.>'];
  let id = 0;
  for (const pattern of patterns) {
    const r = await s.request({ op: 'sub', id: ++id, pattern });
    assert.deepEqual([r.t, r.code], ['err', 'FORBIDDEN'], JSON.stringify(pattern));
  }
  // Another publisher of acme on the look-alike topics: none reaches the narrow subscriber.
  const wide = await server.token({ pub: ['>'], sub: [], ns: 'acme' });
  const invalid = ['chat.room1\u00A0.x', 'chat.room1.x\u0000', 'chat.room1.\uD800'];
  const ok = topics.filter((t) => !invalid.includes(t));
  const res = await server.post('/publish', [...ok.map((topic) => ({ topic, payload: topic })), { topic: 'chat.room1.end', payload: 'end' }], wide);
  assert.ok(res.body.results.every((r) => r.accepted), JSON.stringify(res.body));
  const got = await s.waitMessages(2);
  await settle(s, 'chat.room1.sync');
  assert.deepEqual(s.messages().map((m) => m.msg.payload), ['escaped', 'end']);
  assert.deepEqual(got[0].msg.topic, 'chat.room1.x');
  await s.close();
});

test('edited or re-signed tokens are refused: another namespace, admin, another key id, odd key ids', async () => {
  const [body, sig] = acme.split('.');
  const claimsOf = JSON.parse(Buffer.from(body, 'base64url').toString());
  const edit = (change) => `${Buffer.from(JSON.stringify({ ...claimsOf, ...change })).toString('base64url')}.${sig}`;
  const now = Math.floor(Date.now() / 1000);
  const forged = {
    'ns edited to bolt': edit({ ns: 'bolt' }),
    'ns removed (the default namespace)': edit({ ns: undefined }),
    'admin added': edit({ admin: true }),
    'claims widened': edit({ sub: ['>'], pub: ['>'] }),
    'kid added': edit({ kid: 'k1' }),
    'k1\'s key naming k2': await signToken({ ...claims, ns: 'bolt', exp: now + 600, kid: 'k2' }, keys.k1),
    'k1\'s key naming no kid': await signToken({ ...claims, ns: 'bolt', exp: now + 600 }, keys.k1),
    'the main key naming k1': await signToken({ ...claims, ns: 'bolt', exp: now + 600, kid: 'k1' }, server.secret),
    'kid __proto__': await signToken({ ...claims, exp: now + 600, kid: '__proto__' }, server.secret),
    'kid toString': await signToken({ ...claims, exp: now + 600, kid: 'toString' }, server.secret),
    'kid empty': await signToken({ ...claims, exp: now + 600, kid: '' }, server.secret),
    'kid null': await signToken({ ...claims, exp: now + 600, kid: null }, server.secret),
    'kid a number': await signToken({ ...claims, exp: now + 600, kid: 1 }, keys.k1),
    'a signature of another token': `${edit({ ns: 'acme' }).split('.')[0]}.${bolt.split('.')[1]}`,
    'bolt\'s claims, acme\'s signature': `${bolt.split('.')[0]}.${sig}`,
  };
  for (const [name, t] of Object.entries(forged)) {
    const r = await server.post('/publish', { topic: 'orders.a', payload: 1 }, t);
    assert.deepEqual([r.status, r.body.error?.code], [401, 'UNAUTHORIZED'], name);
    const st = await fetch(`${server.url}/stats`, { headers: { authorization: `Bearer ${t}` } });
    assert.equal(st.status, 401, `/stats: ${name}`);
    assert.equal((await st.json()).error.code, 'UNAUTHORIZED');
  }
  const s = await open(forged['ns edited to bolt']);
  assert.equal((await s.waitFor((f) => f.t === 'err')).code, 'UNAUTHORIZED');
  assert.equal((await s.closedPromise).code, 4401);
  // The untouched token still works, in its own namespace.
  assert.equal((await view(acme)).ns, 'acme');
});

test('routes: percent-encoding, dot segments, case variants and query parameters reach no other route nor another namespace\'s view', async () => {
  const auth = { authorization: `Bearer ${acme}` };
  for (const path of ['/Stats', '/STATS', '/stats/', '/%73tats', '/stats%2F', '/stats;ns=bolt', '/admin/evict', '/x/../admin/evict',
    '/admin%2Fevict', '/connect/../admin/evict', '//stats', '/stats%00', '/publish/..%2Fstats']) {
    const r = await rawGet(path, auth);
    assert.ok(r.status === 404 || r.status === 405, `${path}: ${r.status} ${JSON.stringify(r.body)}`);
    assert.ok(['NOT_FOUND', 'METHOD_NOT_ALLOWED'].includes(r.body.error?.code), `${path}: ${JSON.stringify(r.body)}`);
  }
  // Dot segments that resolve to /stats are /stats, with the token's own view.
  for (const path of ['/stats?ns=bolt&admin=true', '/x/../stats?ns=bolt', '/%2e%2e/stats', '/publish/../stats']) {
    const r = await rawGet(path, auth);
    assert.equal(r.status, 200, path);
    assert.deepEqual([r.body.ns, r.body.perHub], ['acme', undefined], path);
  }
  // Header case and an injected claims header change nothing either.
  const injected = await rawGet('/stats', {
    AUTHORIZATION: `bearer ${acme}`, 'x-edgebus-claims': JSON.stringify({ ns: 'bolt', admin: true, pub: ['>'], sub: ['>'], exp: 9e9 }),
  });
  assert.deepEqual([injected.status, injected.body.ns, injected.body.perHub], [200, 'acme', undefined]);
  const noToken = await rawGet('/stats', { 'x-edgebus-claims': JSON.stringify({ ns: 'bolt', admin: true, pub: ['>'], sub: ['>'], exp: 9e9 }) });
  assert.deepEqual([noToken.status, noToken.body.error.code], [401, 'UNAUTHORIZED']);
  // Over a WebSocket: claims and hub headers sent with the upgrade are replaced by the verified ones.
  const frames = await new Promise((resolve, reject) => {
    const got = [];
    const ws = new WebSocket(`${server.wsUrl}/connect`, {
      headers: {
        authorization: `Bearer ${acme}`, 'x-edgebus-hub': '-1',
        'x-edgebus-claims': JSON.stringify({ ns: 'bolt', admin: true, pub: ['>'], sub: ['>'], exp: 9e9 }),
      },
    });
    ws.onmessage = (e) => {
      got.push(JSON.parse(e.data));
      if (got.length === 1) ws.send(JSON.stringify({ op: 'sub', id: 1, pattern: '>' }));
      else ws.close();
    };
    ws.onclose = () => resolve(got);
    ws.onerror = () => reject(new Error('the upgrade failed'));
  });
  assert.deepEqual([frames[0].t, frames[0].ns], ['hello', 'acme']);
  assert.ok(frames[0].hub >= 0 && frames[0].hub < HUBS);
  assert.deepEqual([frames[1].t, frames[1].code], ['err', 'FORBIDDEN']);
});

test('an id, key or header with a lone UTF-16 surrogate is refused at the door (WebSocket and HTTP); the work queue it aimed at keeps delivering', { timeout: 60_000 }, async () => {
  const c = await open(acme);
  assert.equal((await c.request({ op: 'sub', id: 1, pattern: 'jobs.lone', group: 'lone' })).t, 'ok');
  const p = await open(acme);
  for (const [extra, ref] of [[{ id: 'x\ud800' }, 'a'], [{ key: '\udc00k' }, 'b'], [{ headers: { trace: 'a\ud800' } }, 'c'], [{ headers: { ['\ud800']: 'v' } }, 'd']]) {
    const r = await p.request({ op: 'pub', topic: 'jobs.lone', payload: ref, ref, ...extra });
    assert.deepEqual([r.t, r.code], ['err', 'BAD_REQUEST'], JSON.stringify(extra));
    assert.match(r.message, /lone UTF-16 surrogate/);
  }
  const req = await p.request({ op: 'req', topic: 'jobs.lone', payload: 0, ref: 9, key: 'k\udbff' });
  assert.deepEqual([req.t, req.code], ['err', 'BAD_REQUEST']);
  for (const m of [{ id: '\ud800' }, { key: 'a\udfff' }]) {
    const r = await server.post('/publish', { topic: 'jobs.lone', payload: 'h', ...m }, acme);
    assert.deepEqual([r.status, r.body.error.code], [400, 'BAD_REQUEST'], JSON.stringify(m));
  }
  // Well-formed ids (a surrogate pair among them) are taken and delivered, in order.
  assert.equal((await p.request({ op: 'pub', topic: 'jobs.lone', payload: 'good-1', id: 'x\ud83d\ude00', ref: 'e' })).t, 'ok');
  assert.equal((await server.post('/publish', { topic: 'jobs.lone', payload: 'good-2', id: 'y' }, acme)).body.stored, true);
  const jobs = await c.waitMessages(2);
  assert.deepEqual(jobs.map((j) => [j.msg.payload, j.msg.id]), [['good-1', 'x\ud83d\ude00'], ['good-2', 'y']]);
  for (const s of [c, p]) await s.close();
});

test('oversized ids, keys, groups, topics, patterns, hubs and headers are refused with typed codes', { timeout: 60_000 }, async () => {
  const s = await open(acme);
  const long = (n) => `orders.${'x'.repeat(n - 7)}`;
  const rows = [
    [{ op: 'pub', topic: 'orders.a', payload: 1, id: 'i'.repeat(257), ref: 'a' }, 'BAD_REQUEST'],
    [{ op: 'pub', topic: 'orders.a', payload: 1, key: 'k'.repeat(257), ref: 'b' }, 'BAD_REQUEST'],
    [{ op: 'pub', topic: long(4097), payload: 1, ref: 'c' }, 'INVALID_TOPIC'],
    [{ op: 'pub', topic: `orders${'.x'.repeat(256)}`, payload: 1, ref: 'd' }, 'INVALID_TOPIC'],
    [{ op: 'sub', id: 1, pattern: long(4097) }, 'INVALID_PATTERN'],
    [{ op: 'sub', id: 2, pattern: 'jobs.q', group: 'g'.repeat(65) }, 'INVALID_OPTION'],
    [{ op: 'sub', id: 3, pattern: 'jobs.q', group: 'a/b' }, 'INVALID_OPTION'],
    [{ op: 'sub', id: 4, pattern: 'jobs.q', group: 'a b' }, 'INVALID_OPTION'],
    [{ op: 'sub', id: Number.MAX_SAFE_INTEGER + 2, pattern: 'jobs.q' }, 'BAD_REQUEST'],
    [{ op: 'del', group: 'g'.repeat(65), pattern: 'jobs.q', ref: 'e' }, 'INVALID_OPTION'],
  ];
  for (const [op, code] of rows) {
    const r = await s.request(op);
    assert.deepEqual([r.t, r.code], ['err', code], JSON.stringify(op).slice(0, 120));
  }
  for (const [m, status, code] of [
    [{ topic: 'orders.a', payload: 1, id: 'i'.repeat(257) }, 400, 'BAD_REQUEST'],
    [{ topic: long(4097), payload: 1 }, 400, 'INVALID_TOPIC'],
  ]) {
    const r = await server.post('/publish', m, acme);
    assert.deepEqual([r.status, r.body.error.code], [status, code]);
  }
  // The longest valid topic and id are taken, and dedupe as any other.
  const topic = long(4096);
  const first = await s.request({ op: 'pub', topic, payload: 1, id: 'i'.repeat(256), ref: 'f' });
  assert.deepEqual([first.t, first.dup], ['ok', undefined]);
  const again = await s.request({ op: 'pub', topic, payload: 1, id: 'i'.repeat(256), ref: 'g' });
  assert.deepEqual([again.t, again.dup], ['ok', true]);
  // Huge headers: a 60 KB token, a 40 KB claims part, a 60 KB header next to a valid token.
  const padded = `${Buffer.from(JSON.stringify({ ...claims, exp: 1, pad: 'x'.repeat(40000) })).toString('base64url')}.${'A'.repeat(43)}`;
  for (const [headers, status, code] of [
    [{ authorization: `Bearer ${'A'.repeat(60000)}.${'B'.repeat(43)}` }, 401, 'UNAUTHORIZED'],
    [{ authorization: `Bearer ${padded}` }, 401, 'UNAUTHORIZED'],
    [{ authorization: `Bearer ${acme}`, 'x-junk': 'j'.repeat(60000) }, 200, undefined],
  ]) {
    const r = await rawGet('/stats', headers);
    assert.deepEqual([r.status, r.body.error?.code, r.body.ns], [status, code, code === undefined ? 'acme' : undefined]);
  }
  const bad = new RawSocket(`${server.wsUrl}/connect?token=${acme}&hub=${'h'.repeat(5000)}`);
  assert.equal((await bad.closedPromise).code, 4400);
  assert.equal(bad.frames[0].code, 'BAD_REQUEST');
  assert.equal(s.closed, undefined, 'the connection carries on');
  await s.close();
});

test('a token limited to some topics makes no id of another topic a duplicate, nor a dead letter\'s', { timeout: 60_000 }, async () => {
  const narrow = await server.token({ pub: ['chat.room1.>'], sub: [], ns: 'acme' });
  const backend = await server.token({ pub: ['chat.>'], sub: ['chat.>'], ns: 'acme' });
  assert.equal(hubOfTopic('chat.room1.x', HUBS, 1), hubOfTopic('chat.room2.x', HUBS, 1), 'one owner hub for both rooms');
  const s = await open(backend);
  assert.equal((await s.request({ op: 'sub', id: 1, pattern: 'chat.room2.*' })).t, 'ok');
  const n = await open(narrow);
  const start = (await view(acme)).total;
  // The narrow token claims the ids the backend will use, over HTTP and over a WebSocket.
  assert.deepEqual((await server.post('/publish', { topic: 'chat.room1.x', payload: 'squat', id: 'order-1' }, narrow)).body, { accepted: true, stored: false });
  assert.deepEqual(await n.request({ op: 'pub', topic: 'chat.room1.x', payload: 'squat', id: 'order-2', ref: 'q' }), { t: 'ok', op: 'pub', ref: 'q', stored: false });
  // The backend's messages on the other room are taken and delivered.
  assert.deepEqual((await server.post('/publish', { topic: 'chat.room2.x', payload: 'real-1', id: 'order-1' }, backend)).body, { accepted: true, stored: false });
  assert.deepEqual(await s.request({ op: 'pub', topic: 'chat.room2.x', payload: 'real-2', id: 'order-2', ref: 'r' }), { t: 'ok', op: 'pub', ref: 'r', stored: false });
  assert.deepEqual((await s.waitMessages(2)).map((m) => [m.msg.id, m.msg.payload]), [['order-1', 'real-1'], ['order-2', 'real-2']]);
  // On one topic an id still dedupes, whoever sends it again.
  assert.deepEqual((await server.post('/publish', { topic: 'chat.room1.x', payload: 'again', id: 'order-1' }, narrow)).body, { accepted: false, duplicate: true });
  assert.deepEqual((await server.post('/publish', { topic: 'chat.room2.x', payload: 'again', id: 'order-1' }, backend)).body, { accepted: false, duplicate: true });
  const end = (await view(acme)).total;
  assert.deepEqual([end.published - start.published, end.duplicates - start.duplicates], [4, 2]);

  // A token that may publish on a topic of the hub that owns `$dead.mailer` claims the id of a
  // dead letter before the job dies (in the form of before, and of now): the letter still
  // reaches its subscriber.
  const prefix = prefixOn(hubOfTopic('$dead.mailer', HUBS, 1));
  const squatter = await server.token({ pub: [`${prefix}.>`], sub: [], ns: 'acme' });
  for (const id of ['mail-1@$dead.mailer', 'mail-1@jobs.mail@$dead.mailer']) {
    assert.deepEqual((await server.post('/publish', { topic: `${prefix}.x`, payload: 'squat', id }, squatter)).body, { accepted: true, stored: false });
  }
  const ops = await open(acme);
  assert.equal((await ops.request({ op: 'sub', id: 1, pattern: '$dead.mailer' })).t, 'ok');
  const c = await open(acme);
  assert.equal((await c.request({ op: 'sub', id: 1, pattern: 'jobs.mail', group: 'mailer', maxAttempts: 1 })).t, 'ok');
  assert.deepEqual((await server.post('/publish', { topic: 'jobs.mail', payload: 'job', id: 'mail-1' }, acme)).body, { accepted: true, stored: true });
  const [job] = await c.waitMessages(1);
  c.send({ op: 'nack', sub: 1, d: [job.d], error: 'mailbox unavailable' });
  const [letter] = await ops.waitMessages(1);
  assert.deepEqual([letter.msg.id, letter.msg.topic, letter.msg.payload.message.id, letter.msg.payload.error.message],
    ['mail-1@jobs.mail@$dead.mailer', '$dead.mailer', 'mail-1', 'mailbox unavailable']);
  // One id on two topics of a work queue: two jobs, and two letters, each its own id.
  assert.equal((await c.request({ op: 'sub', id: 2, pattern: 'jobs.*', group: 'twins', maxAttempts: 1 })).t, 'ok');
  assert.equal((await ops.request({ op: 'sub', id: 2, pattern: '$dead.twins' })).t, 'ok');
  const twins = await server.post('/publish', ['jobs.a', 'jobs.b'].map((topic) => ({ topic, payload: topic, id: 'twin' })), acme);
  assert.deepEqual(twins.body.results, [{ accepted: true, stored: true }, { accepted: true, stored: true }]);
  const jobs = (await c.waitMessages(3)).slice(1);
  assert.deepEqual(jobs.map((m) => [m.msg.topic, m.msg.id]), [['jobs.a', 'twin'], ['jobs.b', 'twin']]);
  c.send({ op: 'nack', sub: 2, d: jobs.map((m) => m.d), error: 'no' });
  const letters = (await ops.waitMessages(3)).slice(1);
  assert.deepEqual(letters.map((m) => m.msg.id).sort(), ['twin@jobs.a@$dead.twins', 'twin@jobs.b@$dead.twins']);
  for (const x of [s, n, ops, c]) await x.close();
});

test('a publish refused by its owner hub is counted in its tenant\'s namespace, not in another', { timeout: 60_000 }, async () => {
  // A payload nested 5,000 deep passes this server's depth check but cannot cross to another hub.
  const owner = hubOfTopic('orders.fw', HUBS, 1);
  const far = await open(acme, `&hub=${prefixOn(owner === 0 ? 1 : 0)}`);
  assert.equal((await far.request({ op: 'sub', id: 1, pattern: 'orders.fw' })).t, 'ok');
  const pub = await open(acme, '&hub=orders');
  const plain = await server.token({ pub: [], sub: [] });
  const before = await Promise.all([acme, bolt, plain].map(async (t) => (await view(t)).total.refused));
  pub.send(`{"op":"pub","ref":"x","topic":"orders.fw","payload":${'['.repeat(5000)}0${']'.repeat(5000)}}`);
  const r = await pub.waitFor((f) => f.ref === 'x');
  assert.deepEqual([r.t, r.code], ['err', 'UNAVAILABLE']);
  const after = await Promise.all([acme, bolt, plain].map(async (t) => (await view(t)).total.refused));
  assert.deepEqual(after, [before[0] + 1, before[1], before[2]], 'refused: acme, bolt, the default namespace');
  for (const x of [far, pub]) await x.close();
});

test('a flood of subscription changes is rate limited per connection and closed (1008); another tenant on the same hub is served meanwhile', { timeout: 120_000 }, async () => {
  const victim = await open(bolt, '&hub=orders');
  assert.equal((await victim.request({ op: 'sub', id: 1, pattern: 'orders.v' })).t, 'ok');
  const flooder = await open(await server.token({ pub: [], sub: ['>'], ns: 'acme' }), '&hub=orders');
  const { hub } = await flooder.waitFor((f) => f.t === 'hello');
  assert.equal(hub, (await victim.waitFor((f) => f.t === 'hello')).hub, 'one home hub');
  const acme0 = (await view(acme)).total;
  const bolt0 = (await view(bolt)).total;
  // Each `>` subscription is an interest on every hub, each unsubscription takes it back: one
  // connection churning them kept its home (and every hub) busy.
  for (let f = 0; f < 20; f++) {
    flooder.send(Array.from({ length: 500 }, (_, i) => [{ op: 'sub', id: i, pattern: '>' }, { op: 'unsub', id: i }]).flat());
  }
  const limited = await flooder.waitFor((x) => x.code === 'RATE_LIMITED', 0, 'a RATE_LIMITED refusal');
  assert.equal(limited.op, 'sub');
  const r = await victim.request({ op: 'pub', topic: 'orders.v', payload: 'served', ref: 'v' });
  assert.deepEqual([r.t, r.stored], ['ok', false]);
  assert.deepEqual((await victim.waitMessages(1)).map((m) => m.msg.payload), ['served']);
  assert.equal((await flooder.closedPromise).code, 1008);
  const acme1 = (await view(acme)).total;
  const bolt1 = (await view(bolt)).total;
  assert.ok(acme1.rateLimited > acme0.rateLimited, 'counted in the flooder\'s namespace');
  assert.equal(acme1.rateClosed, acme0.rateClosed + 1);
  assert.deepEqual(pick(bolt1, ['rateLimited', 'rateClosed', 'refused']), pick(bolt0, ['rateLimited', 'rateClosed', 'refused']));
  // The flooder's subscriptions went with its connection.
  for (let i = 0; i < 100 && (await view(acme)).total.subscriptions > 0; i++) await new Promise((res) => setTimeout(res, 100));
  assert.equal((await view(acme)).total.subscriptions, 0);
  // A client subscribing its whole set at once (a reconnect: MAX_SUBSCRIPTIONS wildcard
  // subscriptions in one frame) is within the burst.
  const client = await open(await server.token({ pub: [], sub: ['>'], ns: 'acme' }));
  const from = client.frames.length;
  client.send(Array.from({ length: 100 }, (_, i) => ({ op: 'sub', id: i, pattern: `*.w${i}` })));
  await client.waitFor((x) => x.ref === 99, from, 'the reply to the last subscription');
  assert.deepEqual(client.frames.slice(from).filter((x) => x.op === 'sub').map((x) => x.t), Array(100).fill('ok'));
  for (const x of [client, victim]) await x.close();
});

test('a flood of guessed delivery tokens is metered per connection: the owner hub checks at most UNVOUCHED_ACKS_PER_SECOND of them; real acknowledgements are not metered', { timeout: 120_000 }, async () => {
  const guess = () => randomBytes(16).toString('base64url');
  const victim = await open(acme);
  assert.equal((await victim.request({ op: 'sub', id: 1, pattern: 'jobs.flood', group: 'flood', ackTimeoutMs: 120000 })).t, 'ok');
  const attacker = await open(bolt);
  assert.equal((await attacker.request({ op: 'sub', id: 1, pattern: 'jobs.flood', group: 'flood', ackTimeoutMs: 120000 })).t, 'ok');
  await server.post('/publish', [1, 2, 3].map((n) => ({ topic: 'jobs.flood', payload: n, id: `fl-${n}` })), acme);
  const real = (await victim.waitMessages(3)).map((m) => m.d);
  const [victim0, attacker0] = await Promise.all([view(acme), view(bolt)]);

  // 3,000 guessed tokens in one frame: the first 1,000 go to the owner (refused there), the rest
  // are not taken at all.
  const from = attacker.frames.length;
  attacker.send({ op: 'ack', sub: 1, d: Array.from({ length: 3000 }, guess) });
  await settle(attacker, 'jobs.sync-flood');
  const errs = attacker.frames.slice(from).filter((f) => f.t === 'err');
  const forbidden = errs.find((e) => e.code === 'FORBIDDEN');
  const limited = errs.find((e) => e.code === 'RATE_LIMITED');
  assert.ok(limited !== undefined && forbidden !== undefined, JSON.stringify(errs).slice(0, 300));
  assert.equal(forbidden.refused + limited.limited, 3000);
  assert.ok(forbidden.refused >= 1000 && forbidden.refused < 1100, `${forbidden.refused} checked by the owner`);
  assert.match(limited.message, /not taken: more than 1000 per second/);
  const attacker1 = await view(bolt);
  assert.equal(attacker1.total.forbiddenAcks, attacker0.total.forbiddenAcks + forbidden.refused);
  assert.equal(attacker1.total.rateLimited, attacker0.total.rateLimited + limited.limited);

  // The victim's real acknowledgements, right after, are taken: its home delivered them.
  const from2 = victim.frames.length;
  victim.send({ op: 'ack', sub: 1, d: real });
  await settle(victim, 'jobs.sync-victim');
  assert.deepEqual(victim.frames.slice(from2).filter((f) => f.t === 'err'), []);
  const victim1 = await view(acme);
  assert.equal(victim1.total.acked, victim0.total.acked + 3);
  assert.deepEqual([victim1.total.forbiddenAcks, victim1.total.rateLimited], [victim0.total.forbiddenAcks, victim0.total.rateLimited]);
  assert.deepEqual(pick(await queue(acme, 'flood'), ['stored', 'inFlight', 'done']), [0, 0, 3]);
  for (const x of [victim, attacker]) await x.close();
});

test('replay: another tenant\'s retained values and history are out of reach, by wildcard, by named positions and by time; each namespace counts its own', async () => {
  const topic = 'orders.rp.secret';
  await server.post('/publish', { topic, payload: 'acme-only', retain: true }, acme);
  await server.post('/publish', { topic: 'chat.rp.a', payload: 'acme-chat' }, acme);
  const before = (await view(bolt)).total;
  const b = await open(bolt);
  // Every shape of replay, over the same patterns and topic names acme used.
  const replays = ['retained', { last: 1000 }, { sinceSeq: 0 }, { sinceMs: 0 }, { sinceSeq: { [topic]: 0, 'orders.rp.other': 0 }, sinceMs: 0 }];
  let id = 1;
  for (const pattern of ['orders.rp.>', 'chat.rp.>', topic]) {
    for (const replay of replays) {
      if (typeof replay.sinceSeq === 'object' && pattern !== 'orders.rp.>') continue; // a position the pattern does not match is INVALID_OPTION
      assert.equal((await b.request({ op: 'sub', id: id++, pattern, replay })).t, 'ok', `${pattern} ${JSON.stringify(replay)}`);
    }
  }
  assert.deepEqual(b.messages(), [], 'nothing of acme replayed to bolt');
  assert.equal(b.frames.some((f) => f.t === 'gap'), false, 'nor a gap that tells of acme\'s seqs');
  // A narrow acme token: only what its claims cover, even inside its own namespace.
  const narrow = await server.token({ pub: [], sub: ['chat.>'], ns: 'acme' });
  const n = await open(narrow);
  const refused = await n.request({ op: 'sub', id: 1, pattern: 'orders.>', replay: 'retained' });
  assert.deepEqual([refused.t, refused.code], ['err', 'FORBIDDEN']);
  const wide = await n.request({ op: 'sub', id: 2, pattern: '>', replay: { sinceMs: 0 } });
  assert.deepEqual([wide.t, wide.code], ['err', 'FORBIDDEN']);
  assert.equal((await n.request({ op: 'sub', id: 3, pattern: 'chat.rp.>', replay: { sinceMs: 0 } })).t, 'ok');
  assert.deepEqual(n.messages().map((m) => m.msg.payload), ['acme-chat']);
  const after = (await view(bolt)).total;
  assert.equal(after.replayed - before.replayed, 0);
  assert.equal(after.retained, 0, 'bolt holds no retained value');
  for (const s of [b, n]) await s.close();
});
