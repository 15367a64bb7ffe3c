// Flow control and bad input at the edge (issue 11, items 6, 8, 9, 10): payload depth and size
// checked up front (typed 4xx, never a 5xx), forwards split under the RPC size limit, no `ok` for
// what was not delivered, the per-token rate limit of POST /publish, 1008 for a flooding socket,
// a bad `hub` refused over the socket, and the client's paced, retried offline flush.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { EdgeServer, RawSocket } from './support/server.mjs';
import { hubOfTopic } from '../../edge/src/routing.js';
import { connect } from 'edgebus';

const server = new EdgeServer();
// Small limits, and a depth limit above what an RPC between hubs can carry (to see a forward fail).
const tight = new EdgeServer({
  vars: { MAX_MESSAGES_PER_SECOND: '20', RATE_VIOLATIONS_TO_CLOSE: '3', MAX_REQUEST_BYTES: '100000', MAX_PAYLOAD_DEPTH: '100000', MAX_PAYLOAD_BYTES: '65536' },
});
let token;
let tightToken;

before(async () => {
  await server.start();
  await tight.start();
  token = await server.token();
  tightToken = await tight.token();
}, { timeout: 180_000 });
after(async () => {
  await server.dispose();
  await tight.dispose();
});

const open = (s = server, t = token, query = '') => RawSocket.open(`${s.wsUrl}/connect?token=${t}${query}`);
const until = async (pred) => {
  const guard = Date.now() + 60000; // a hang guard, not a timing assertion
  while (!(await pred())) {
    if (Date.now() > guard) throw new Error('condition not met in 60 s');
    await new Promise((r) => setTimeout(r, 20));
  }
};
/** JSON text of `n` nested arrays (built as text: JSON.stringify itself overflows the stack). */
const deep = (n) => `${'['.repeat(n)}0${']'.repeat(n)}`;
const pubFrame = (ref, topic, payloadJson, id) => `{"op":"pub","ref":"${ref}","topic":"${topic}"${id ? `,"id":"${id}"` : ''},"payload":${payloadJson}}`;
/** A topic prefix owned by a hub other than `notHub` (8 hubs, one routed token). */
function prefixOn(pred) {
  for (let i = 0; ; i++) if (pred(hubOfTopic(`p${i}`, 8, 1))) return `p${i}`;
}

test('a deeply nested payload is refused up front: 400 PAYLOAD_TOO_DEEP on HTTP, a typed err on WebSocket, delivered nowhere', async () => {
  const http = await server.post('/publish', `{"topic":"deep.x","payload":${deep(5000)}}`, token);
  assert.equal(http.status, 400);
  assert.equal(http.body.error.code, 'PAYLOAD_TOO_DEEP');
  assert.match(http.body.error.message, /64/);
  const inBatch = await server.post('/publish', `[{"topic":"deep.x","payload":1},{"topic":"deep.x","payload":${deep(65)}}]`, token);
  assert.deepEqual([inBatch.status, inBatch.body.error.code], [400, 'PAYLOAD_TOO_DEEP']);
  assert.match(inBatch.body.error.message, /message 1/);
  // 64 levels are fine.
  assert.equal((await server.post('/publish', `{"topic":"deep.x","payload":${deep(64)}}`, token)).status, 200);

  const s = await open();
  assert.equal((await s.request({ op: 'sub', id: 1, pattern: 'deep.*' })).t, 'ok');
  s.send(pubFrame('d', 'deep.x', deep(5000)));
  const r = await s.waitFor((x) => x.ref === 'd');
  assert.deepEqual([r.t, r.code], ['err', 'PAYLOAD_TOO_DEEP']);
  assert.equal((await s.request({ op: 'pub', ref: 'ok', topic: 'deep.x', payload: 'after' })).t, 'ok');
  const got = await s.waitMessages(1);
  assert.deepEqual(got.map((m) => m.msg.payload), ['after']);
  await s.close();
});

test('a body over MAX_REQUEST_BYTES is 413 REQUEST_TOO_LARGE before it is parsed; a frame over it is a typed err', async () => {
  const body = JSON.stringify([{ topic: 'big.x', payload: 'x'.repeat(60000) }, { topic: 'big.x', payload: 'y'.repeat(60000) }]);
  const r = await tight.post('/publish', body, tightToken);
  assert.deepEqual([r.status, r.body.error.code], [413, 'REQUEST_TOO_LARGE']);
  const s = await open(tight, tightToken);
  s.send(JSON.parse(body).map((m, i) => ({ op: 'pub', ref: i, ...m })));
  const err = await s.waitFor((f) => f.t === 'err');
  assert.equal(err.code, 'REQUEST_TOO_LARGE');
  await s.close();
});

test('1,000 × 60 KB in one POST /publish: split under the RPC limit, all accepted and delivered, on the owner hub and on another', { timeout: 300_000 }, async () => {
  const owner = hubOfTopic('bulk', 8, 1);
  const near = await open(server, token, '&hub=bulk');
  const far = await open(server, token, `&hub=${prefixOn((h) => h !== owner)}`);
  for (const s of [near, far]) assert.equal((await s.request({ op: 'sub', id: 1, pattern: 'bulk.*' })).t, 'ok');
  const msgs = Array.from({ length: 1000 }, (_, i) => ({ topic: 'bulk.x', payload: `${i}:`.padEnd(60000, 'z'), id: `bulk-${i}` }));
  const r = await server.post('/publish', msgs, token);
  assert.equal(r.status, 200, JSON.stringify(r.body).slice(0, 300));
  assert.equal(r.body.results.filter((x) => x.accepted).length, 1000);
  for (const s of [near, far]) {
    const got = await s.waitMessages(1000);
    assert.deepEqual(got.map((m) => m.msg.id), msgs.map((m) => m.id));
  }
  const stats = await server.stats();
  assert.equal(stats.total.forwardFailed, 0);
  await near.close();
  await far.close();
});

test('a publish not delivered to every home hub is not answered ok: UNAVAILABLE, counted, and its id is not kept', { timeout: 120_000 }, async () => {
  // Depth 5,000 passes this server's depth check but cannot cross to another hub (RPC serialization).
  const owner = hubOfTopic('fw', 8, 1);
  const pub = await open(tight, tightToken, '&hub=fw');
  const far = await open(tight, tightToken, `&hub=${prefixOn((h) => h !== owner)}`);
  assert.equal((await far.request({ op: 'sub', id: 1, pattern: 'fw.*' })).t, 'ok');
  const before = (await tight.stats()).total.forwardFailed;
  pub.send(pubFrame('x', 'fw.x', deep(5000), 'fw-1'));
  const r = await pub.waitFor((x) => x.ref === 'x');
  assert.deepEqual([r.t, r.code], ['err', 'UNAVAILABLE']);
  assert.ok((await tight.stats()).total.forwardFailed > before);
  // The id was forgotten: the same id with a payload that can travel is taken, not a duplicate.
  const again = await pub.request({ op: 'pub', ref: 'y', topic: 'fw.x', payload: 'fine', id: 'fw-1' });
  assert.deepEqual([again.t, again.dup], ['ok', undefined]);
  const got = await far.waitMessages(1);
  assert.deepEqual(got.map((m) => m.msg.payload), ['fine']);
  await pub.close();
  await far.close();
});

test('POST /publish is rate limited per token like a WebSocket: 429 RATE_LIMITED with Retry-After', async () => {
  const t = await tight.token({ pub: ['rl.>'] });
  const first = await tight.post('/publish', Array.from({ length: 20 }, (_, i) => ({ topic: 'rl.x', payload: i })), t);
  assert.equal(first.status, 200);
  const r = await fetch(`${tight.url}/publish`, {
    method: 'POST', headers: { authorization: `Bearer ${t}`, 'content-type': 'application/json' },
    body: JSON.stringify(Array.from({ length: 10 }, (_, i) => ({ topic: 'rl.x', payload: i }))),
  });
  assert.equal(r.status, 429);
  assert.ok(Number(r.headers.get('retry-after')) >= 1);
  assert.equal((await r.json()).error.code, 'RATE_LIMITED');
  // Another token has its own bucket.
  assert.equal((await tight.post('/publish', { topic: 'rl.x', payload: 1 }, await tight.token({ pub: ['rl.>', 'x'] }))).status, 200);
});

test('a socket flooding past the rate limit is closed with 1008; another client on the same hub gets its message first', { timeout: 120_000 }, async () => {
  const flooder = await open(tight, tightToken, '&hub=flood');
  const victim = await open(tight, tightToken, '&hub=flood');
  assert.equal((await victim.request({ op: 'sub', id: 1, pattern: 'flood.victim' })).t, 'ok');
  const frames = 200;
  for (let f = 0; f < frames; f++) flooder.send(Array.from({ length: 200 }, (_, i) => ({ op: 'pub', ref: f * 1000 + i, topic: 'flood.junk', payload: 'x'.repeat(100) })));
  assert.equal((await victim.request({ op: 'pub', ref: 'v', topic: 'flood.victim', payload: 'hello' })).t, 'ok');
  const got = await victim.waitMessages(1);
  assert.equal(got[0].msg.payload, 'hello');
  const closed = await flooder.closedPromise;
  assert.equal(closed.code, 1008);
  // The flooder's backlog was not worked off: far fewer than its frames were answered.
  const answered = new Set(flooder.frames.filter((x) => x.ref !== undefined).map((x) => Math.floor(x.ref / 1000)));
  assert.ok(answered.size < frames, `${answered.size} of ${frames} frames answered`);
  assert.ok((await tight.stats()).total.rateClosed >= 1);
  await victim.close();
});

test('an invalid `hub` is refused over the socket with a typed error and 4400 (not an HTTP 400 the client cannot see)', async () => {
  const s = new RawSocket(`${server.wsUrl}/connect?token=${token}&hub=${encodeURIComponent('bad..hub')}`);
  const closed = await s.closedPromise;
  assert.equal(closed.code, 4400);
  assert.equal(s.frames[0].code, 'BAD_REQUEST');
  // The client refuses it at the call.
  assert.throws(() => connect(server.url, { token, hub: 'bad..hub' }), (e) => e.code === 'INVALID_OPTION');
});

test('the client paces its offline flush at the hub\'s rate: 3,000 publishes, maxBuffer 2,500 → 500 QUEUE_FULL, 2,500 delivered', { timeout: 180_000 }, async () => {
  // A work queue: it stores what is published while its consumer reconnects too.
  const listener = connect(server.url, { token, hub: 'paced', reconnect: { initialMs: 50, maxMs: 200 } });
  const heard = new Set();
  const sub = listener.subscribe('paced.x', (p) => { heard.add(p); }, { group: 'paced' });
  await sub.ready;
  const errors = [];
  const bus = connect(server.url, { token, hub: 'paced', maxBuffer: 2500, reconnect: { initialMs: 50, maxMs: 200 }, onError: (e) => errors.push(e.code) });
  await bus.ready;
  await server.stop();
  await until(() => !bus.connected);
  for (let i = 0; i < 3000; i++) bus.publish('paced.x', i);
  assert.equal(errors.filter((c) => c === 'QUEUE_FULL').length, 500);
  await server.start();
  await bus.flush();
  await until(() => heard.size === 2500);
  assert.deepEqual([...heard].sort((a, b) => a - b), Array.from({ length: 2500 }, (_, i) => i + 500));
  assert.deepEqual(errors.filter((c) => c !== 'QUEUE_FULL'), []);
  assert.equal(bus.stats().acknowledged, 2500);
  await bus.close();
  await listener.close();
});
