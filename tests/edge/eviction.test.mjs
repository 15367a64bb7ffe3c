// In-place eviction on local workerd: with EDGEBUS_DEV_ADMIN=1 the Worker's `POST /admin/evict`
// makes a hub call `ctx.abort()`, which discards the instance (memory, timers, pending calls)
// while the server keeps running; the next call builds a new instance from storage.
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

const HUBS = 8;
const stream = async (group) => (await server.stats()).perHub.flatMap((h) => h.groups).find((g) => g.group === group);

test('the owner hub of a work queue evicted in place: unacknowledged messages are redelivered to the consumer still connected elsewhere', { timeout: 120_000 }, async () => {
  const owner = hubOfTopic('evict.jobs', HUBS, 1);
  // The consumer's home: a hub other than the owner, so its connection outlives the eviction.
  let prefix;
  for (let i = 0; prefix === undefined; i++) if (hubOfTopic(`home${i}`, HUBS, 1) !== owner) prefix = `home${i}`;
  const consumer = await RawSocket.open(`${server.wsUrl}/connect?token=${token}&hub=${prefix}`);
  assert.equal((await consumer.request({ op: 'sub', id: 1, pattern: 'evict.jobs', group: 'evictees', ackTimeoutMs: 60000 })).t, 'ok');
  assert.equal((await consumer.request({ op: 'sub', id: 2, pattern: 'evict.news' })).t, 'ok');

  const ids = Array.from({ length: 20 }, (_, i) => `ev-${i}`);
  await server.post('/publish', ids.map((id, i) => ({ topic: 'evict.jobs', payload: { i }, id })), token);
  const first = await consumer.waitMessages(20);
  const acked = first.slice(0, 5);
  consumer.send({ op: 'ack', sub: 1, d: acked.map((m) => m.d) });
  await consumer.request({ op: 'sub', id: 3, pattern: 'sync.one' });
  assert.deepEqual([(await stream('evictees')).stored, (await stream('evictees')).inFlight], [15, 15]);

  const r = await server.post('/admin/evict', { hub: owner }, await server.adminToken());
  assert.equal(r.status, 200);
  assert.equal(r.body.hub, owner);
  assert.notEqual(r.body.after, r.body.before, 'a new instance');

  // The new instance reloaded the 15 stored messages, confirmed the member with its home hub and
  // delivered them again with new tokens; the connection never dropped.
  const all = await consumer.waitMessages(35);
  assert.equal(consumer.closed, undefined);
  const again = all.slice(20);
  assert.deepEqual(again.map((m) => m.msg.id).sort(), first.slice(5).map((m) => m.msg.id).sort());
  for (const m of again) {
    assert.ok(!first.some((f) => f.d === m.d), 'a new delivery token');
    assert.deepEqual(m.msg, first.find((f) => f.msg.id === m.msg.id).msg);
  }
  // Tokens of the discarded instance are late: counted, nothing deleted.
  const lateBefore = (await server.stats()).total.lateAcks;
  consumer.send({ op: 'ack', sub: 1, d: first.slice(5).map((m) => m.d) });
  await consumer.request({ op: 'sub', id: 4, pattern: 'sync.two' });
  assert.equal((await server.stats()).total.lateAcks, lateBefore + 15);
  assert.equal((await stream('evictees')).stored, 15);
  consumer.send({ op: 'ack', sub: 1, d: again.map((m) => m.d) });
  await consumer.request({ op: 'sub', id: 5, pattern: 'sync.three' });
  const g = await stream('evictees');
  assert.deepEqual([g.stored, g.inFlight, g.members], [0, 0, 1]);

  // The evicted owner reloaded its stored interests too: plain subscribers elsewhere still hear it.
  await server.post('/publish', { topic: 'evict.news', payload: 'after eviction', id: 'news-1' }, token);
  const [news] = (await consumer.waitMessages(36)).slice(35);
  assert.deepEqual([news.subs, news.msg.payload], [[2], 'after eviction']);
  await consumer.close();
});

test('evicting the hub that holds a connection closes it (ctx.abort ends its WebSockets); the hub serves new ones', { timeout: 60_000 }, async () => {
  const home = hubOfTopic('solo', HUBS, 1);
  const s = await RawSocket.open(`${server.wsUrl}/connect?token=${token}&hub=solo`);
  const hello = await s.waitFor((x) => x.t === 'hello');
  assert.equal(hello.hub, home);
  const r = await server.post('/admin/evict', { hub: home }, await server.adminToken());
  assert.notEqual(r.body.after, r.body.before);
  const closed = await s.closedPromise;
  assert.equal(closed.code, 1006);
  const again = await RawSocket.open(`${server.wsUrl}/connect?token=${token}&hub=solo`);
  assert.equal((await again.request({ op: 'sub', id: 1, pattern: 'solo.x' })).t, 'ok');
  await server.post('/publish', { topic: 'solo.x', payload: 1 }, token);
  assert.equal((await again.waitMessages(1))[0].msg.payload, 1);
  await again.close();
});

test('evicting the home of a work-queue consumer: its in-flight deliveries are refused at once, retried for another member, dead on the last attempt', { timeout: 30_000 }, async () => {
  const owner = hubOfTopic('evhome.jobs', HUBS, 1);
  // The consumer's home and the other member's: two hubs other than the owner, and each other.
  const prefixes = [];
  for (let i = 0; prefixes.length < 2; i++) {
    const h = hubOfTopic(`eh${i}`, HUBS, 1);
    if (h !== owner && !prefixes.some((p) => hubOfTopic(p, HUBS, 1) === h)) prefixes.push(`eh${i}`);
  }
  const home = hubOfTopic(prefixes[0], HUBS, 1);
  const sub = { op: 'sub', id: 1, pattern: 'evhome.jobs', group: 'evhome', maxAttempts: 2, ackTimeoutMs: 600000 };
  const gone = await RawSocket.open(`${server.wsUrl}/connect?token=${token}&hub=${prefixes[0]}`);
  assert.equal((await gone.request(sub)).t, 'ok');
  await server.post('/publish', [{ topic: 'evhome.jobs', payload: 'a', id: 'eh-a' }, { topic: 'evhome.jobs', payload: 'b', id: 'eh-b' }], token);
  const held = await gone.waitMessages(2);
  // 'b' is refused once: its next delivery (to the same member) is its last attempt.
  gone.send({ op: 'nack', sub: 1, d: [held.find((m) => m.msg.payload === 'b').d] });
  const last = (await gone.waitMessages(3))[2];
  assert.deepEqual([last.msg.payload, last.attempt], ['b', 2]);
  const ops = await server.token({ sub: ['>', '$dead.>'] });
  const other = await RawSocket.open(`${server.wsUrl}/connect?token=${ops}&hub=${prefixes[1]}`);
  assert.equal((await other.request(sub)).t, 'ok');
  assert.equal((await other.request({ op: 'sub', id: 2, pattern: '$dead.evhome' })).t, 'ok');

  const r = await server.post('/admin/evict', { hub: home }, await server.adminToken());
  assert.notEqual(r.body.after, r.body.before);
  assert.equal((await gone.closedPromise).code, 1006);
  // Long before the ack deadline (10 minutes): 'a' comes to the other member as attempt 2, and 'b'
  // (its last attempt held by the consumer that went away) is a dead letter.
  const got = await other.waitMessages(2);
  const retried = got.find((m) => m.subs[0] === 1);
  const letter = got.find((m) => m.subs[0] === 2);
  assert.deepEqual([retried.msg.payload, retried.attempt], ['a', 2]);
  assert.deepEqual([letter.msg.payload.message.payload, letter.msg.payload.attempts, letter.msg.payload.error.code], ['b', 2, 'HANDLER_FAILED']);
  assert.match(letter.msg.payload.error.message, /consumer/);
  other.send({ op: 'ack', sub: 1, d: [retried.d] });
  await other.request({ op: 'unsub', id: 1 });
  const g = await stream('evhome');
  assert.deepEqual([g.stored, g.inFlight, g.members, g.done, g.dead], [0, 0, 0, 1, 1]);
  await other.close();
});

test('the admin route: typed errors for bad input, and absent unless EDGEBUS_DEV_ADMIN=1', async () => {
  for (const body of [{}, { hub: -1 }, { hub: HUBS }, { hub: '1' }]) {
    const r = await server.post('/admin/evict', body, await server.adminToken());
    assert.deepEqual([r.status, r.body.error.code], [400, 'BAD_REQUEST'], JSON.stringify(body));
  }
  assert.equal((await server.post('/admin/evict', { hub: 0 })).body.error.code, 'UNAUTHORIZED');
  const plain = new EdgeServer();
  try {
    await plain.start();
    const r = await plain.post('/admin/evict', { hub: 0 }, await plain.adminToken());
    assert.deepEqual([r.status, r.body.error.code], [404, 'NOT_FOUND']);
  } finally {
    await plain.dispose();
  }
});
