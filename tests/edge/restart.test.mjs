// What survives a crash: the server's whole process group is killed with SIGKILL (no shutdown,
// no timers run) and started again on the same persist folder, or a hub is evicted in place.
// The idempotence window, work-queue attempt counts and the /stats counters must come back.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { EdgeServer, RawSocket } from './support/server.mjs';
import { hubOfTopic } from '../../edge/src/routing.js';

const server = new EdgeServer({ vars: { EDGEBUS_DEV_ADMIN: '1' } });
let token;

before(async () => {
  await server.start();
  token = await server.token();
}, { timeout: 120_000 });
after(() => server.dispose());

const connect = () => RawSocket.open(`${server.wsUrl}/connect?token=${token}`);
const stream = async (group) => (await server.stats()).perHub.flatMap((h) => h.groups).find((g) => g.group === group);

test('ids published and acknowledged before a SIGKILL are duplicates after it: nothing is delivered twice', { timeout: 120_000 }, async () => {
  const consumer = await connect();
  assert.equal((await consumer.request({ op: 'sub', id: 1, pattern: 'dd.jobs', group: 'dd', ackTimeoutMs: 60000 })).t, 'ok');
  const ids = Array.from({ length: 10 }, (_, i) => `dd-${i}`);
  const res = await server.post('/publish', ids.map((id) => ({ topic: 'dd.jobs', payload: id, id })), token);
  assert.deepEqual(res.body.results.map((r) => r.accepted), ids.map(() => true));
  const got = await consumer.waitMessages(10);
  consumer.send({ op: 'ack', sub: 1, d: got.map((m) => m.d) });
  await consumer.request({ op: 'sub', id: 2, pattern: 'sync.a' });
  assert.equal((await stream('dd')).stored, 0);

  await server.crash();
  await consumer.closedPromise;

  const again = await connect();
  assert.equal((await again.request({ op: 'sub', id: 1, pattern: 'dd.jobs', group: 'dd', ackTimeoutMs: 60000 })).t, 'ok');
  const watcher = await connect();
  await watcher.request({ op: 'sub', id: 1, pattern: 'dd.>' });
  const resend = await server.post('/publish', ids.map((id) => ({ topic: 'dd.jobs', payload: id, id })), token);
  assert.deepEqual(resend.body.results, ids.map(() => ({ accepted: false, duplicate: true })));
  // Over the WebSocket too (the client's resend after a reconnect).
  const ws = await again.request({ op: 'pub', topic: 'dd.jobs', payload: 'x', id: 'dd-3', ref: 'r1' });
  assert.deepEqual([ws.t, ws.dup], ['ok', true]);
  // A marker after the duplicates: it is the only message either connection receives.
  await server.post('/publish', { topic: 'dd.jobs', payload: 'marker', id: 'dd-marker' }, token);
  const [m] = await again.waitMessages(1);
  assert.equal(m.msg.id, 'dd-marker');
  assert.deepEqual((await watcher.waitMessages(1)).map((x) => x.msg.id), ['dd-marker']);
  assert.equal(again.messages().length, 1);
  assert.equal(watcher.messages().length, 1);
  again.send({ op: 'ack', sub: 1, d: [m.d] });
  await again.request({ op: 'sub', id: 2, pattern: 'sync.b' });
  assert.equal((await server.stats()).total.duplicates, 11);
  await again.close();
  await watcher.close();
});

test('an id is still a duplicate after its owner hub is evicted (the window is not in memory)', { timeout: 60_000 }, async () => {
  const owner = hubOfTopic('ev.orders', 8, 1);
  assert.equal((await server.post('/publish', { topic: 'ev.orders', payload: 1, id: 'ev-1' }, token)).body.accepted, true);
  const r = await server.post('/admin/evict', { hub: owner }, await server.adminToken());
  assert.notEqual(r.body.after, r.body.before, 'a new instance');
  assert.deepEqual((await server.post('/publish', { topic: 'ev.orders', payload: 1, id: 'ev-1' }, token)).body, { accepted: false, duplicate: true });
  assert.equal((await server.post('/publish', { topic: 'ev.orders', payload: 1, id: 'ev-2' }, token)).body.accepted, true);
});

test('an id is still a duplicate after its hub sat idle long enough to be evicted (about 10 s on local workerd)', { timeout: 60_000 }, async () => {
  const r1 = await server.post('/publish', { topic: 'idle.orders', payload: 1, id: 'idle-1' }, token);
  assert.equal(r1.body.accepted, true);
  const owner = hubOfTopic('idle.orders', 8, 1);
  const boot = (await server.stats()).perHub[owner].boot;
  // Nothing calls the hub meanwhile (the /stats above woke every hub; this waits past the idle timeout).
  await new Promise((r) => setTimeout(r, 16_000));
  const r2 = await server.post('/publish', { topic: 'idle.orders', payload: 1, id: 'idle-1' }, token);
  assert.deepEqual(r2.body, { accepted: false, duplicate: true });
  const after = (await server.stats()).perHub[owner].boot;
  assert.notEqual(after, boot, 'the hub was evicted while idle (a new instance answered)');
});

test('maxAttempts 3 with a SIGKILL after each delivery: three deliveries, then a dead letter', { timeout: 180_000 }, async () => {
  const sub = { op: 'sub', id: 1, pattern: 'crash.jobs', group: 'crashers', maxAttempts: 3, ackTimeoutMs: 60000 };
  let consumer = await connect();
  assert.equal((await consumer.request(sub)).t, 'ok');
  assert.equal((await server.post('/publish', { topic: 'crash.jobs', payload: { n: 1 }, id: 'crash-1' }, token)).body.accepted, true);
  const attempts = [];
  for (let round = 1; round <= 3; round++) {
    const [m] = await consumer.waitMessages(1);
    assert.equal(m.msg.id, 'crash-1');
    attempts.push(m.attempt);
    // Never acknowledged: the server dies with the delivery in flight.
    await server.crash();
    await consumer.closedPromise;
    consumer = await connect();
    if (round < 3) assert.equal((await consumer.request(sub)).t, 'ok');
  }
  assert.deepEqual(attempts, [1, 2, 3]);
  // After the third crash: a dead-letter subscriber first, then the member comes back.
  const dead = await RawSocket.open(`${server.wsUrl}/connect?token=${await server.token({ sub: ['$dead.crashers'] })}`);
  assert.equal((await dead.request({ op: 'sub', id: 1, pattern: '$dead.crashers' })).t, 'ok');
  assert.equal((await consumer.request(sub)).t, 'ok');
  const [letter] = await dead.waitMessages(1);
  assert.equal(letter.msg.payload.attempts, 3);
  assert.equal(letter.msg.payload.group, 'crashers');
  assert.equal(letter.msg.payload.message.id, 'crash-1');
  assert.equal(letter.msg.payload.error.code, 'HANDLER_TIMEOUT');
  // A marker through the same stream: the consumer gets it and nothing else (no fourth delivery).
  await server.post('/publish', { topic: 'crash.jobs', payload: 'marker', id: 'crash-marker' }, token);
  const [m] = await consumer.waitMessages(1);
  assert.deepEqual([m.msg.id, m.attempt], ['crash-marker', 1]);
  assert.equal(consumer.messages().length, 1);
  consumer.send({ op: 'ack', sub: 1, d: [m.d] });
  await consumer.request({ op: 'sub', id: 2, pattern: 'sync.c' });
  const g = await stream('crashers');
  assert.deepEqual([g.stored, g.dead, g.inFlight], [0, 1, 0]);
  await consumer.close();
  await dead.close();
});

test('an attempt count survives: a nack, a SIGKILL, then the retry is attempt 3 of 3 and a nack makes it dead', { timeout: 120_000 }, async () => {
  const sub = { op: 'sub', id: 1, pattern: 'nk.jobs', group: 'nackers', maxAttempts: 3, ackTimeoutMs: 60000 };
  let consumer = await connect();
  assert.equal((await consumer.request(sub)).t, 'ok');
  await server.post('/publish', { topic: 'nk.jobs', payload: 1, id: 'nk-1' }, token);
  const [m1] = await consumer.waitMessages(1);
  consumer.send({ op: 'nack', sub: 1, d: [m1.d], error: 'first' });
  const [, m2] = await consumer.waitMessages(2);
  assert.equal(m2.attempt, 2);
  await server.crash();
  await consumer.closedPromise;
  consumer = await connect();
  assert.equal((await consumer.request(sub)).t, 'ok');
  const [m3] = await consumer.waitMessages(1);
  assert.deepEqual([m3.msg.id, m3.attempt], ['nk-1', 3]);
  consumer.send({ op: 'nack', sub: 1, d: [m3.d], error: 'third' });
  await consumer.request({ op: 'sub', id: 2, pattern: 'sync.d' });
  let g;
  for (let i = 0; i < 50 && (g = await stream('nackers')).dead === 0; i++) await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual([g.stored, g.dead], [0, 1]);
  assert.equal(consumer.messages().length, 1, 'no fourth delivery');
  await consumer.close();
});

test('per-key order holds across a SIGKILL for a key whose first message had been attempted: one message of the key in flight, in publish order', { timeout: 120_000 }, async () => {
  const sub = { op: 'sub', id: 1, pattern: 'ko.jobs', group: 'keyorder', maxAttempts: 5, ackTimeoutMs: 60000 };
  let consumer = await connect();
  assert.equal((await consumer.request(sub)).t, 'ok');
  const res = await server.post('/publish', [
    { topic: 'ko.jobs', payload: 1, id: 'ko-1', key: 'k' },
    { topic: 'ko.jobs', payload: 2, id: 'ko-2', key: 'k' },
  ], token);
  assert.deepEqual(res.body.results.map((r) => r.accepted), [true, true]);
  const [first] = await consumer.waitMessages(1);
  assert.deepEqual([first.msg.id, first.attempt], ['ko-1', 1]);
  // ko-1 dies in flight with one attempt made; ko-2 of its key was never delivered.
  await server.crash();
  await consumer.closedPromise;
  consumer = await connect();
  assert.equal((await consumer.request(sub)).t, 'ok');
  const [again] = await consumer.waitMessages(1);
  assert.deepEqual([again.msg.id, again.attempt], ['ko-1', 2]);
  // The hub reloads its page in one turn: by the time ko-1 arrived, anything else it would have
  // delivered was in flight too. Only ko-1 is.
  assert.equal((await stream('keyorder')).inFlight, 1);
  await server.post('/publish', { topic: 'ko.jobs', payload: 3, id: 'ko-3', key: 'k' }, token);
  assert.equal((await stream('keyorder')).inFlight, 1);
  consumer.send({ op: 'ack', sub: 1, d: [again.d] });
  const [, second] = await consumer.waitMessages(2);
  assert.deepEqual([second.msg.id, second.attempt], ['ko-2', 1]);
  assert.equal((await stream('keyorder')).inFlight, 1);
  consumer.send({ op: 'ack', sub: 1, d: [second.d] });
  const [, , third] = await consumer.waitMessages(3);
  assert.deepEqual([third.msg.id, third.attempt], ['ko-3', 1]);
  consumer.send({ op: 'ack', sub: 1, d: [third.d] });
  await consumer.request({ op: 'sub', id: 2, pattern: 'sync.ko' });
  let g;
  for (let i = 0; i < 50 && (g = await stream('keyorder')).stored > 0; i++) await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual([g.stored, g.inFlight, g.dead], [0, 0, 0]);
  assert.deepEqual(consumer.messages().map((m) => m.msg.id), ['ko-1', 'ko-2', 'ko-3']);
  await consumer.close();
});

test('/stats counters written with the change: a SIGKILL right after the answers loses none', { timeout: 120_000 }, async () => {
  const before = (await server.stats()).total;
  const msgs = Array.from({ length: 25 }, (_, i) => ({ topic: `cnt.t${i % 5}`, payload: i }));
  const res = await server.post('/publish', msgs, token);
  assert.equal(res.body.results.length, 25);
  const dup1 = await server.post('/publish', { topic: 'cnt.x', payload: 0, id: 'cnt-1' }, token);
  const dup2 = await server.post('/publish', { topic: 'cnt.x', payload: 0, id: 'cnt-1' }, token);
  assert.deepEqual([dup1.body.accepted, dup2.body.duplicate], [true, true]);
  await server.crash();
  const total = (await server.stats()).total;
  assert.equal(total.published - before.published, 26);
  assert.equal(total.duplicates - before.duplicates, 1);
});

test('/stats counters of WebSocket publishes to the same hub: a SIGKILL right after the answers and deliveries loses none', { timeout: 120_000 }, async () => {
  // Publisher and subscriber live on the hub owning `wsc.*`: the publishes whose counters wait for
  // the next frame or reply (nothing durable is written for them) rather than a write of their own.
  const before = (await server.stats()).total;
  const sub = await RawSocket.open(`${server.wsUrl}/connect?token=${token}&hub=wsc`);
  assert.equal((await sub.request({ op: 'sub', id: 1, pattern: 'wsc.*' })).t, 'ok');
  const pub = await RawSocket.open(`${server.wsUrl}/connect?token=${token}&hub=wsc`);
  for (let i = 0; i < 30; i++) pub.send({ op: 'pub', topic: 'wsc.a', payload: i });
  await sub.waitMessages(30);
  assert.deepEqual((await pub.request({ op: 'pub', topic: 'wsc.b', payload: 'last', ref: 'r1' })), { t: 'ok', op: 'pub', ref: 'r1', stored: false });
  await server.crash();
  const total = (await server.stats()).total;
  assert.equal(total.published - before.published, 31);
  assert.equal(total.notStored - before.notStored, 31);
  assert.ok(total.delivered - before.delivered >= 30, `delivered ${total.delivered - before.delivered}, the subscriber received 30`);
  assert.ok(total.frames - before.frames >= 1);
});
