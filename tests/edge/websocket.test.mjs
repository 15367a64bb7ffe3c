// The WebSocket protocol against `wrangler dev`: fan-out to many sockets with wildcard
// subscriptions that span hubs, batched frames, tokens (denied, expired), limits, bad frames.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { EdgeServer, RawSocket } from './support/server.mjs';

const LIMITS = { MAX_SUBSCRIPTIONS: 4, MAX_PAYLOAD_BYTES: 1024, MAX_MESSAGES_PER_SECOND: 20, BATCH_MAX_MESSAGES: 100 };
// The tests here publish over HTTP faster than the WebSocket rate under test (tests/edge/flow.test.mjs has the HTTP limit).
const server = new EdgeServer({ vars: { ...LIMITS, PUBLISH_MESSAGES_PER_SECOND: 100000 } });
let token;

before(async () => {
  await server.start();
  token = await server.token({ pub: ['>'], sub: ['>'] });
}, { timeout: 120_000 });
after(() => server.dispose());

const open = (t = token, q = '') => RawSocket.open(`${server.wsUrl}/connect?token=${t}${q}`);

test('fan-out: 120 sockets on every hub, wildcard subscriptions spanning hubs, each message once', async () => {
  const sockets = await Promise.all(Array.from({ length: 120 }, () => open()));
  // Every socket's hello names its home hub: connections spread over hubs.
  const homes = new Set();
  for (const s of sockets) homes.add((await s.waitFor((f) => f.t === 'hello')).hub);
  assert.ok(homes.size >= 4, `homes: ${[...homes]}`);
  // Even sockets: `*.alerts` (a wildcard in the routed token: every hub). Odd: `>` and `t3.*`
  // (overlapping: a message matching both arrives once, naming both subscriptions).
  await Promise.all(sockets.map(async (s, i) => {
    if (i % 2 === 0) assert.equal((await s.request({ op: 'sub', id: 1, pattern: '*.alerts' })).t, 'ok');
    else {
      assert.equal((await s.request({ op: 'sub', id: 1, pattern: '>' })).t, 'ok');
      assert.equal((await s.request({ op: 'sub', id: 2, pattern: 't3.*' })).t, 'ok');
    }
  }));
  const topics = [];
  for (let i = 0; i < 20; i++) topics.push(`t${i}.alerts`, `t${i}.other`);
  const res = await server.post('/publish', topics.map((topic, n) => ({ topic, payload: { n } })), token);
  assert.equal(res.status, 200);
  const stats = await server.stats();
  const owners = stats.perHub.filter((h) => h.published > 0).length;
  assert.ok(owners >= 4, `the topics are owned by ${owners} hubs`);
  for (const [i, s] of sockets.entries()) {
    const want = i % 2 === 0 ? topics.filter((t) => t.endsWith('.alerts')) : topics;
    const got = await s.waitMessages(want.length);
    assert.deepEqual(got.map((m) => m.msg.topic).sort(), [...want].sort(), `socket ${i}`);
    for (const m of got) {
      assert.deepEqual(m.subs, i % 2 === 1 && m.msg.topic.startsWith('t3.') ? [1, 2] : [1]);
      assert.equal(m.msg.payload.n, topics.indexOf(m.msg.topic));
    }
    for (const f of s.frames.filter((x) => x.t === 'msg')) assert.ok(f.m.length <= LIMITS.BATCH_MAX_MESSAGES);
  }
  // No duplicates arrived late: one more round with a marker.
  await server.post('/publish', { topic: 'zz.alerts', payload: 'end' }, token);
  for (const [i, s] of sockets.entries()) {
    const n = (i % 2 === 0 ? 20 : 40) + 1;
    const got = await s.waitMessages(n);
    assert.equal(got.length, n, `socket ${i}`);
  }
  await Promise.all(sockets.map((s) => s.close()));
});

test('frames are batched: 250 messages arrive in frames of at most 100', async () => {
  const s = await open();
  await s.request({ op: 'sub', id: 7, pattern: 'batch.*' });
  const msgs = Array.from({ length: 250 }, (_, n) => ({ topic: 'batch.x', payload: n }));
  assert.equal((await server.post('/publish', msgs, token)).status, 200);
  const got = await s.waitMessages(250);
  assert.deepEqual(got.map((m) => m.msg.payload), msgs.map((m) => m.payload), 'in publish order');
  const frames = s.frames.filter((f) => f.t === 'msg');
  assert.ok(frames.length >= 3 && frames.length < 250, `${frames.length} frames`);
  for (const f of frames) assert.ok(f.m.length <= 100);
  await s.close();
});

test('overlapping subscriptions across a full frame: each of 250 messages arrives once, naming both subscriptions', async () => {
  const s = await open();
  await s.request({ op: 'sub', id: 1, pattern: 'edge.*' });
  await s.request({ op: 'sub', id: 2, pattern: 'edge.>' });
  const msgs = Array.from({ length: 250 }, (_, n) => ({ topic: 'edge.x', payload: n }));
  assert.equal((await server.post('/publish', msgs, token)).status, 200);
  await server.post('/publish', { topic: 'edge.end', payload: 'end' }, token);
  await s.waitFor((f) => f.t === 'msg' && f.m.some(([, m]) => m.payload === 'end'));
  const got = s.messages();
  // The 100th message filled a frame: it is in that frame once, with both ids, not split over two.
  assert.deepEqual(got.map((m) => m.msg.payload), [...msgs.map((m) => m.payload), 'end']);
  for (const m of got) assert.deepEqual(m.subs, [1, 2], `message ${m.msg.payload}`);
  for (const f of s.frames.filter((x) => x.t === 'msg')) assert.ok(f.m.length <= LIMITS.BATCH_MAX_MESSAGES);
  await s.close();
});

test('tokens: none or expired refuses the socket with a reason; forbidden operations leave the rest alone', async () => {
  const none = await RawSocket.open(`${server.wsUrl}/connect`);
  assert.equal((await none.waitFor((f) => f.t === 'err')).code, 'UNAUTHORIZED');
  assert.equal((await none.closedPromise).code, 4401);
  const expired = await open(await server.token({ ttl: -1 }));
  assert.equal((await expired.waitFor((f) => f.t === 'err')).code, 'TOKEN_EXPIRED');
  assert.equal((await expired.closedPromise).code, 4401);

  const limited = await server.token({ pub: ['chat.>'], sub: ['chat.*', 'news.>'] });
  const s = await open(limited);
  assert.equal((await s.request({ op: 'sub', id: 1, pattern: 'chat.*' })).t, 'ok');
  const denied = await s.request({ op: 'sub', id: 2, pattern: 'chat.>' });
  assert.equal(denied.code, 'FORBIDDEN', 'chat.> reaches topics chat.* does not');
  assert.match(denied.message, /chat\.>/);
  assert.equal((await s.request({ op: 'sub', id: 3, pattern: 'secret.x' })).code, 'FORBIDDEN');
  const pubDenied = await s.request({ op: 'pub', ref: 'p1', topic: 'news.a', payload: 1 });
  assert.equal(pubDenied.code, 'FORBIDDEN');
  assert.equal((await s.request({ op: 'pub', ref: 'p2', topic: 'chat.room', payload: 'hi' })).t, 'ok');
  const [m] = await s.waitMessages(1);
  assert.deepEqual([m.subs, m.msg.topic, m.msg.payload], [[1], 'chat.room', 'hi']);
  assert.equal(s.closed, undefined, 'still open');
  await s.close();
});

test('a token that expires while connected: the next operation is refused and the socket closed', async () => {
  const short = await server.token({ ttl: 2 });
  const s = await open(short);
  assert.equal((await s.request({ op: 'sub', id: 1, pattern: 'x.*' })).t, 'ok');
  await new Promise((r) => setTimeout(r, 2500));
  s.send({ op: 'pub', ref: 1, topic: 'x.y', payload: 1 });
  assert.equal((await s.waitFor((f) => f.t === 'err')).code, 'TOKEN_EXPIRED');
  assert.equal((await s.closedPromise).code, 4401);
});

test('limits: subscriptions per connection, message size, messages per second, each its own code', async () => {
  const s = await open();
  for (let i = 1; i <= LIMITS.MAX_SUBSCRIPTIONS; i++) {
    assert.equal((await s.request({ op: 'sub', id: i, pattern: `lim.${i}` })).t, 'ok');
  }
  const over = await s.request({ op: 'sub', id: 99, pattern: 'lim.99' });
  assert.equal(over.code, 'TOO_MANY_SUBSCRIPTIONS');
  assert.equal((await s.request({ op: 'unsub', id: 4 })).t, 'ok');
  assert.equal((await s.request({ op: 'sub', id: 99, pattern: 'lim.99' })).t, 'ok', 'room again after unsub');

  const big = await s.request({ op: 'pub', ref: 'big', topic: 'lim.1', payload: 'x'.repeat(1100) });
  assert.equal(big.code, 'MESSAGE_TOO_LARGE');

  // 50 publishes in one frame against 20 per second: the first ones pass, the rest are refused.
  const from = s.frames.length;
  s.send(Array.from({ length: 50 }, (_, n) => ({ op: 'pub', ref: n, topic: 'lim.1', payload: n })));
  const replies = await s.waitFor((f) => f.t !== 'msg' && s.frames.length - from >= 50, from).then(() => s.frames.slice(from).filter((f) => f.t === 'ok' || f.t === 'err'));
  assert.equal(replies.length, 50);
  const ok = replies.filter((r) => r.t === 'ok').length;
  const limited = replies.filter((r) => r.code === 'RATE_LIMITED').length;
  assert.equal(ok + limited, 50);
  assert.ok(ok >= 20 && ok < 50, `${ok} accepted`);
  // Exactly the accepted ones are delivered (subscription 1 is on lim.1).
  const got = await s.waitMessages(ok);
  assert.deepEqual(got.map((m) => m.msg.payload), replies.filter((r) => r.t === 'ok').map((r) => r.ref));
  const stats = await server.stats();
  assert.ok(stats.total.rateLimited >= limited && stats.total.tooLarge >= 1);
  await s.close();
});

test('bad frames get typed errors and the connection keeps working', async () => {
  const s = await open();
  assert.equal((await s.request({ op: 'sub', id: 1, pattern: 'ok.*' })).t, 'ok');
  let from = s.frames.length;
  s.send('{not json');
  assert.equal((await s.waitFor((f) => f.t === 'err', from)).code, 'BAD_JSON');
  from = s.frames.length;
  s.send({ op: 'dance' });
  assert.equal((await s.waitFor((f) => f.t === 'err', from)).code, 'BAD_REQUEST');
  assert.equal((await s.request({ op: 'sub', id: 2, pattern: 'a.>.b' })).code, 'INVALID_PATTERN');
  assert.equal((await s.request({ op: 'sub', id: 1, pattern: 'dup.*' })).code, 'BAD_REQUEST', 'id in use');
  assert.equal((await s.request({ op: 'sub', id: 3, pattern: '*.jobs', group: 'g' })).code, 'GROUP_SPANS_HUBS');
  assert.equal((await s.request({ op: 'sub', id: 4, pattern: 'jobs.x', group: 'bad name' })).code, 'INVALID_OPTION');
  assert.equal((await s.request({ op: 'unsub', id: 42 })).code, 'UNKNOWN_SUBSCRIPTION');
  assert.equal((await s.request({ op: 'pub', ref: 'r', topic: 'ok.*', payload: 1 })).code, 'INVALID_TOPIC');
  assert.equal((await s.request({ op: 'pub', ref: 'r2', topic: 'ok.go' })).code, 'BAD_REQUEST', 'no payload');
  assert.equal((await s.request({ op: 'pub', ref: 'r3', topic: 'ok.go', payload: 'still here' })).t, 'ok');
  const [m] = await s.waitMessages(1);
  assert.equal(m.msg.payload, 'still here');
  await s.close();
});

test('unsubscribing stops delivery on every hub the pattern spans', async () => {
  const s = await open();
  const other = await open();
  await s.request({ op: 'sub', id: 1, pattern: '*.unsub' });
  await other.request({ op: 'sub', id: 1, pattern: '*.unsub' });
  await server.post('/publish', [{ topic: 'a.unsub', payload: 1 }, { topic: 'b.unsub', payload: 2 }], token);
  await s.waitMessages(2);
  assert.equal((await s.request({ op: 'unsub', id: 1 })).t, 'ok');
  await server.post('/publish', [{ topic: 'a.unsub', payload: 3 }, { topic: 'c.unsub', payload: 4 }], token);
  await other.waitMessages(4);
  await s.request({ op: 'sub', id: 2, pattern: 'marker' });
  await server.post('/publish', { topic: 'marker', payload: 'm' }, token);
  const got = await s.waitMessages(3);
  assert.equal(got.length, 3, 'nothing published after unsub arrived before the marker');
  assert.deepEqual(got.slice(0, 2).map((m) => m.msg.payload).sort(), [1, 2]);
  assert.equal(got[2].msg.payload, 'm');
  await s.close();
  await other.close();
});

test('connections of one hub get the same messages in frames naming each its own subscriptions', async () => {
  const q = '&hub=same';
  const [a, b, c, d] = await Promise.all([open(token, q), open(token, q), open(token, q), open(token, q)]);
  assert.equal((await a.request({ op: 'sub', id: 1, pattern: 'same.*' })).t, 'ok');
  assert.equal((await b.request({ op: 'sub', id: 7, pattern: 'same.*' })).t, 'ok');
  assert.equal((await c.request({ op: 'sub', id: 1, pattern: 'same.*' })).t, 'ok');
  assert.equal((await c.request({ op: 'sub', id: 2, pattern: 'same.>' })).t, 'ok');
  assert.equal((await d.request({ op: 'sub', id: 1, pattern: 'same.a' })).t, 'ok');
  const topics = ['same.a', 'same.b', 'same.a', 'same.c', 'same.a'];
  const res = await server.post('/publish', topics.map((topic, i) => ({ topic, payload: i })), token);
  assert.deepEqual(res.body.results.map((r) => r.accepted), topics.map(() => true));
  const got = async (s, n) => (await s.waitMessages(n)).map((m) => [m.subs, m.msg.topic, m.msg.payload]);
  const all = topics.map((topic, i) => [topic, i]);
  assert.deepEqual(await got(a, 5), all.map(([t, i]) => [[1], t, i]));
  assert.deepEqual(await got(b, 5), all.map(([t, i]) => [[7], t, i]));
  assert.deepEqual(await got(c, 5), all.map(([t, i]) => [[1, 2], t, i]));
  assert.deepEqual(await got(d, 3), all.filter(([t]) => t === 'same.a').map(([t, i]) => [[1], t, i]));
  for (const s of [a, b, c, d]) await s.close();
});
