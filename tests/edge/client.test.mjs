// The package's remote client, `connect(url, { token })`, against the same `wrangler dev` server:
// the Bus API over WebSockets, a forced disconnect (the server stopped and started again) with
// publishes made while offline, resubscription, duplicates dropped by id, the offline buffer's
// overflow policies, and refreshed tokens. Runs in Node 22 (global WebSocket).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, EdgebusError } from 'edgebus';
import { EdgeServer, freePort } from './support/server.mjs';

const server = new EdgeServer();
let token;
const fast = { reconnect: { initialMs: 50, maxMs: 400 }, connectTimeoutMs: 2000 };
const until = async (cond) => { while (!cond()) await new Promise((r) => setTimeout(r, 20)); };

before(async () => {
  await server.start();
  token = await server.token();
}, { timeout: 120_000 });
after(() => server.dispose());

test('subscribe, publish, publishAsync and close, as with the in-page Bus', async () => {
  const a = connect(server.url, { token, ...fast });
  const b = connect(server.url, { token, ...fast });
  const got = [];
  const sub = a.subscribe('room.*.said', (payload, msg) => got.push([msg.topic, payload]));
  assert.equal(sub.pattern, 'room.*.said');
  await sub.ready;
  await b.ready;
  assert.equal(await b.publishAsync('room.1.said', 'hello', { id: 'm-1' }), true);
  assert.equal(await b.publishAsync('room.1.said', 'hello', { id: 'm-1' }), false, 'a duplicate id');
  assert.equal(b.publish('room.2.said', { text: 'hi' }), true);
  await b.flush();
  await until(() => got.length === 2);
  assert.deepEqual(got, [['room.1.said', 'hello'], ['room.2.said', { text: 'hi' }]]);
  assert.throws(() => b.publish('room.*', 1), (e) => e instanceof EdgebusError && e.code === 'INVALID_TOPIC');
  assert.throws(() => a.subscribe('a..b', () => {}), (e) => e.code === 'INVALID_PATTERN');
  assert.throws(() => a.subscribe('a.b', () => {}, { concurrency: 2 }), (e) => e.code === 'INVALID_OPTION');
  const refused = await b.publishAsync('$sys.x', 1).catch((e) => e);
  assert.equal(refused.code, 'FORBIDDEN', 'a `$` topic is not reached by a `>` claim');
  assert.equal(sub.unsubscribe(), true);
  assert.equal(sub.unsubscribe(), false);
  assert.deepEqual(await b.close(), { remaining: [] });
  assert.throws(() => b.publish('room.1.said', 1), (e) => e.code === 'CLOSED');
  await a.close();
});

test('a forced disconnect: publishes made while offline are held and delivered after reconnecting; subscriptions come back', { timeout: 120_000 }, async () => {
  const errors = [];
  const publisher = connect(server.url, { token, ...fast, onError: (e) => errors.push(e) });
  const consumer = connect(server.url, { token, ...fast });
  const listener = connect(server.url, { token, ...fast });
  const jobs = [];
  const work = consumer.subscribe('offline.jobs', (payload, msg) => { jobs.push(msg.id); }, { group: 'offline' });
  const heard = [];
  const plain = listener.subscribe('offline.*', (payload) => heard.push(payload));
  await Promise.all([work.ready, plain.ready, publisher.ready]);
  assert.equal(await publisher.publishAsync('offline.jobs', 'before', { id: 'before' }), true);
  await until(() => jobs.length === 1);

  await server.stop();
  await until(() => !publisher.connected && !consumer.connected && !listener.connected);
  // Offline: held in the bounded buffer, acknowledged later.
  const pending = [];
  for (let i = 0; i < 25; i++) {
    if (i % 5 === 0) pending.push(publisher.publishAsync('offline.jobs', i, { id: `job-${i}` }));
    else assert.equal(publisher.publish('offline.jobs', i, { id: `job-${i}` }), true);
  }
  assert.equal(publisher.stats().buffered, 25);
  await server.start();

  assert.deepEqual(await Promise.all(pending), [true, true, true, true, true]);
  await publisher.flush();
  await until(() => jobs.length === 26);
  assert.deepEqual([...jobs].sort(), ['before', ...Array.from({ length: 25 }, (_, i) => `job-${i}`)].sort());
  for (const c of [publisher, consumer, listener]) assert.ok(c.stats().reconnects >= 1);
  // The plain subscription came back too: probe until it hears (at-most-once: earlier ones may
  // have been published before it was registered again).
  for (let n = 0; !heard.includes(`probe-${n - 1}`); n++) {
    await publisher.publishAsync('offline.probe', `probe-${n}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.deepEqual(errors, []);
  for (const c of [publisher, consumer, listener]) assert.deepEqual(await c.close(), { remaining: [] });
});

test('work queues through the client: a handler that throws is refused (nack) and retried, then acknowledged and deleted', async () => {
  const bus = connect(server.url, { token, ...fast, onError: () => {} });
  const calls = [];
  const sub = bus.subscribe('client.jobs', async (payload, msg) => {
    calls.push([msg.id, msg.attempt]);
    if (msg.attempt === 1) throw new Error('try again');
  }, { group: 'cq', maxAttempts: 3 });
  await sub.ready;
  await bus.publishAsync('client.jobs', { n: 1 }, { id: 'cj-1' });
  await until(() => calls.length === 2);
  assert.deepEqual(calls, [['cj-1', 1], ['cj-1', 2]]);
  const groups = async () => (await server.stats()).perHub.flatMap((h) => h.groups).find((g) => g.group === 'cq');
  await until(() => bus.stats().unacknowledged === 0);
  let g;
  do g = await groups(); while (g.stored !== 0);
  assert.equal(g.done, 1);
  await bus.close();
});

test('offline buffer overflow follows the policy, never silently', async () => {
  const nowhere = `http://127.0.0.1:${await freePort()}`;
  const rejecting = connect(nowhere, { token, maxBuffer: 3, overflow: 'reject', reconnect: { initialMs: 1000, maxMs: 1000 }, onError: () => {} });
  for (let i = 0; i < 3; i++) rejecting.publish('buf.x', i);
  assert.throws(() => rejecting.publish('buf.x', 3), (e) => e.code === 'QUEUE_FULL');
  assert.deepEqual((await rejecting.close()).remaining.map((r) => r.payload), [0, 1, 2]);

  const errors = [];
  const dropping = connect(nowhere, { token, maxBuffer: 3, reconnect: { initialMs: 1000, maxMs: 1000 }, onError: (e) => errors.push(e) });
  const first = dropping.publishAsync('buf.x', 'a');
  for (const p of ['b', 'c', 'd']) dropping.publish('buf.x', p);
  assert.equal((await first.catch((e) => e)).code, 'QUEUE_FULL', 'the oldest was dropped and its promise says so');
  assert.equal(dropping.stats().dropped, 1);
  assert.ok(errors.some((e) => e.code === 'QUEUE_FULL'), 'reported to onError');
  assert.deepEqual((await dropping.close()).remaining.map((r) => r.payload), ['b', 'c', 'd']);

  const waiting = connect(nowhere, { token, maxBuffer: 1, overflow: 'wait', reconnect: { initialMs: 1000, maxMs: 1000 }, onError: () => {} });
  waiting.publish('buf.x', 1);
  const later = waiting.publishAsync('buf.x', 2);
  assert.equal(waiting.stats().buffered, 2);
  assert.equal((await waiting.close()).remaining.length, 2);
  assert.equal((await later.catch((e) => e)).code, 'CLOSED');
});

test('a token function is asked again after the server refuses an expired token', async () => {
  const tokens = [await server.token({ ttl: -1 }), token];
  let asked = 0;
  const errors = [];
  const bus = connect(server.url, { token: () => tokens[Math.min(asked++, 1)], ...fast, onError: (e) => errors.push(e.code) });
  await bus.ready;
  assert.ok(asked >= 2);
  assert.equal(await bus.publishAsync('tok.x', 1), true);
  assert.ok(errors.includes('TOKEN_EXPIRED'));
  await bus.close();

  const fixed = [];
  const once = connect(server.url, { token: tokens[0], ...fast, onError: (e) => fixed.push(e.code) });
  await until(() => fixed.includes('TOKEN_EXPIRED') && fixed.filter((c) => c === 'TOKEN_EXPIRED').length >= 2);
  await once.close();
});
