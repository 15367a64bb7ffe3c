// Durability of work queues against `wrangler dev --persist-to`: messages for a work queue are
// stored before the publisher is answered and deleted when acknowledged; the server's whole process
// group is killed with SIGKILL in the middle of a group stream and started again, and every message
// is delivered and acknowledged.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { EdgeServer, RawSocket } from './support/server.mjs';

const server = new EdgeServer();
let token;

before(async () => {
  await server.start();
  token = await server.token();
}, { timeout: 120_000 });
after(() => server.dispose());

async function groupStats() {
  const stats = await server.stats();
  return stats.perHub.flatMap((h) => h.groups).filter((g) => g.group === 'workers');
}

test('kill the server (SIGKILL) mid-stream: nothing acknowledged to the publisher is lost, every message is acknowledged once done', { timeout: 180_000 }, async () => {
  const consumer = await RawSocket.open(`${server.wsUrl}/connect?token=${token}`);
  assert.equal((await consumer.request({ op: 'sub', id: 1, pattern: 'jobs.>', group: 'workers', ackTimeoutMs: 60000 })).t, 'ok');
  // A plain subscriber on another connection: the group does not take messages from it.
  const watcher = await RawSocket.open(`${server.wsUrl}/connect?token=${token}`);
  await watcher.request({ op: 'sub', id: 1, pattern: 'jobs.*' });

  const ids = Array.from({ length: 100 }, (_, i) => `job-${i}`);
  const res = await server.post('/publish', ids.map((id, i) => ({ topic: `jobs.${i % 3 === 0 ? 'mail' : 'render'}`, payload: { i }, id })), token);
  assert.deepEqual(res.body.results.map((r) => r.accepted), ids.map(() => true));
  await watcher.waitMessages(100);

  const first = await consumer.waitMessages(100);
  assert.deepEqual(first.map((m) => m.msg.id).sort(), [...ids].sort(), 'each job went to the only member');
  for (const m of first) assert.equal(m.attempt, 1);
  // Acknowledge 30 of them; the reply to the request after them proves they were processed.
  const acked = first.slice(0, 30);
  consumer.send({ op: 'ack', sub: 1, d: acked.map((m) => m.d) });
  assert.equal((await consumer.request({ op: 'sub', id: 2, pattern: 'sync.point' })).t, 'ok');
  let groups = await groupStats();
  assert.equal(groups.length, 1);
  assert.equal(groups[0].stored, 70);
  assert.equal(groups[0].inFlight, 70);

  // Ten more published while the other 70 are in flight, then the server goes away.
  const late = Array.from({ length: 10 }, (_, i) => `late-${i}`);
  await server.post('/publish', late.map((id) => ({ topic: 'jobs.mail', payload: { late: true }, id })), token);
  await consumer.waitMessages(110);
  await server.crash();
  assert.ok((await consumer.closedPromise).code !== undefined, 'the consumer was disconnected');

  // After the restart the hub reloads every unacknowledged message.
  groups = await groupStats();
  assert.equal(groups.length, 1);
  assert.equal(groups[0].stored, 80);
  assert.equal(groups[0].members, 0, 'the lost connection is no member any more');

  const again = await RawSocket.open(`${server.wsUrl}/connect?token=${token}`);
  assert.equal((await again.request({ op: 'sub', id: 1, pattern: 'jobs.>', group: 'workers', ackTimeoutMs: 60000 })).t, 'ok');
  const redelivered = await again.waitMessages(80);
  const want = [...first.slice(30).map((m) => m.msg.id), ...late].sort();
  assert.deepEqual(redelivered.map((m) => m.msg.id).sort(), want, 'exactly the unacknowledged ones come back');
  for (const m of redelivered) {
    const original = first.find((f) => f.msg.id === m.msg.id);
    if (original !== undefined) assert.deepEqual(m.msg.payload, original.msg.payload);
  }
  again.send({ op: 'ack', sub: 1, d: redelivered.map((m) => m.d) });
  assert.equal((await again.request({ op: 'sub', id: 2, pattern: 'sync.point' })).t, 'ok');
  groups = await groupStats();
  assert.equal(groups[0].stored, 0, 'every message acknowledged and deleted');
  assert.equal(groups[0].inFlight, 0);

  // And once more across a restart: nothing comes back.
  await server.crash();
  groups = await groupStats();
  assert.equal(groups[0].stored, 0);
  await again.closedPromise;
});

test('a refused delivery (nack) is retried, then acknowledged', async () => {
  const s = await RawSocket.open(`${server.wsUrl}/connect?token=${token}`);
  assert.equal((await s.request({ op: 'sub', id: 1, pattern: 'retry.x', group: 'retrier', maxAttempts: 3 })).t, 'ok');
  await server.post('/publish', { topic: 'retry.x', payload: 'r', id: 'r-1' }, token);
  const [m1] = await s.waitMessages(1);
  assert.equal(m1.attempt, 1);
  s.send({ op: 'nack', sub: 1, d: [m1.d], error: 'not now' });
  const [, m2] = await s.waitMessages(2);
  assert.deepEqual([m2.msg.id, m2.attempt], ['r-1', 2]);
  s.send({ op: 'ack', sub: 1, d: [m2.d] });
  await s.request({ op: 'sub', id: 2, pattern: 'sync.point' });
  const g = (await server.stats()).perHub.flatMap((h) => h.groups).find((x) => x.group === 'retrier');
  assert.deepEqual([g.stored, g.done, g.redelivered], [0, 1, 1]);
  await s.close();
});
