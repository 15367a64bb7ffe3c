// The client's persistent outbox (`connect(url, { persist: store })`) against the real hub under
// `wrangler dev`: what one session could not send (the server down) stays in the store after
// close(), and the next session with the same store sends it with its ids; an entry that had
// reached the hub before its session ended is dropped by the hub's durable dedupe. A work queue
// receives and acknowledges every message exactly once (the hub's own counters say so).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'edgebus';
import { EdgeServer } from './support/server.mjs';

const server = new EdgeServer();
let token;
const fast = { reconnect: { initialMs: 50, maxMs: 400 }, connectTimeoutMs: 2000 };
const until = async (cond) => { while (!cond()) await new Promise((r) => setTimeout(r, 20)); };

/** An outbox store in a Map, shared by the sessions of one test (what IndexedDB is to a page). */
class MapStore {
  constructor() { this.entries = new Map(); this.seq = 0; }
  load() {
    return [...this.entries.values()].sort((a, b) => a.seq - b.seq).map((e) => {
      const entry = { ...e };
      delete entry.seq;
      return entry;
    });
  }
  async put(entry) { this.entries.set(`${entry.id}#${++this.seq}`, { ...entry, seq: this.seq }); }
  async delete(ids) { for (const [k, e] of this.entries) if (ids.includes(e.id)) this.entries.delete(k); }
  ids() { return this.load().map((e) => e.id); }
}

before(async () => {
  await server.start();
  token = await server.token();
}, { timeout: 120_000 });
after(() => server.dispose());

const group = async (name) => (await server.stats()).perHub.flatMap((h) => h.groups).find((g) => g.group === name);

test('what a session left in the store is sent by the next one, first, with its ids; the hub keeps each message single', { timeout: 180_000 }, async () => {
  const jobs = [];
  const consumer = connect(server.url, { token, ...fast });
  const work = consumer.subscribe('ob.jobs', (payload, msg) => { jobs.push(msg.id); }, { group: 'ob' });
  await work.ready;

  // Session 0 sent `seed` and the hub took it, but the page went away before its entry was deleted.
  const store = new MapStore();
  const s0 = connect(server.url, { token, ...fast });
  assert.equal(await s0.publishAsync('ob.jobs', 'seed', { id: 'seed' }), true);
  await s0.close();
  await store.put({ id: 'seed', topic: 'ob.jobs', payload: 'seed', at: Date.now() });
  for (let i = 0; i < 3; i++) await store.put({ id: `left-${i}`, topic: 'ob.jobs', payload: i, key: 'k', at: Date.now() });
  await until(() => jobs.length === 1);

  // Session 1 runs while the deployment is down: it restores, publishes, and closes with nothing sent.
  await server.stop();
  await until(() => !consumer.connected);
  const s1 = connect(server.url, { token, ...fast, persist: store, onError: () => {} });
  assert.equal(s1.stats().restored, 4);
  for (let i = 0; i < 3; i++) assert.equal(s1.publish('ob.jobs', `off-${i}`, { id: `off-${i}` }), true);
  const { remaining } = await s1.close({ timeoutMs: 0 });
  const all = ['seed', 'left-0', 'left-1', 'left-2', 'off-0', 'off-1', 'off-2'];
  assert.deepEqual(remaining.map((r) => r.id), all);
  assert.deepEqual(remaining[1], { topic: 'ob.jobs', payload: 0, id: 'left-0', key: 'k' });
  assert.deepEqual(store.ids(), all, 'close() leaves them in the store');

  // Session 2, the deployment back: everything goes, in order, and the store empties.
  await server.start();
  const errors = [];
  const s2 = connect(server.url, { token, ...fast, persist: store, onError: (e) => errors.push(e) });
  assert.equal(s2.stats().restored, 7);
  assert.equal(s2.publish('ob.jobs', 'after', { id: 'after' }), true);
  await s2.flush();
  const stats = s2.stats();
  assert.deepEqual([stats.acknowledged, stats.duplicates, stats.persistFailed], [8, 1, 0], 'seed is a duplicate at the hub');
  assert.deepEqual((await s2.close()).remaining, []);
  assert.deepEqual(store.ids(), []);
  assert.deepEqual(errors, []);

  await until(() => jobs.length === 8);
  assert.deepEqual([...jobs].sort(), [...all, 'after'].sort());
  await until(() => consumer.stats().unacknowledged === 0);
  let g;
  do g = await group('ob'); while (g.stored !== 0);
  assert.equal(g.done, 8, 'each message stored and acknowledged once');
  await consumer.close();
});

test('a store that rejects every call: publishes still reach the hub, the failures are reported and counted', { timeout: 60_000 }, async () => {
  const errors = [];
  const broken = { load: async () => { throw new Error('gone'); }, put: async () => { throw new Error('gone'); }, delete: () => { throw new Error('gone'); } };
  const bus = connect(server.url, { token, ...fast, persist: broken, onError: (e) => errors.push(e.code) });
  const heard = [];
  const sub = bus.subscribe('ob.plain', (p) => heard.push(p));
  await sub.ready;
  assert.equal(await bus.publishAsync('ob.plain', 1), true);
  await until(() => heard.length === 1);
  await bus.close();
  assert.equal(bus.stats().persistFailed, 3);
  assert.deepEqual(errors, ['PERSIST_FAILED', 'PERSIST_FAILED', 'PERSIST_FAILED']);
});
