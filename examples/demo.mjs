// A short tour of edgebus in Node: wildcard routing, async handlers with per-key order, overflow,
// dedupe, batching, error isolation and statistics. Run after building: `node examples/demo.mjs`.
import { Bus, EdgebusError } from 'edgebus';

const log = (...a) => console.log('  ', ...a);
const bus = new Bus({ dedupe: { maxIds: 1000 }, onError: (err, msg, sub) => log(`onError: #${sub.id} ${sub.pattern} failed on ${msg.topic}: ${err.message}`) });

console.log('1. Wildcards: `*` is one token, `>` the rest');
bus.subscribe('orders.*.created', (order, m) => log(`orders.*.created  <- ${m.topic} #${order.id}`));
bus.subscribe('orders.>', (order, m) => log(`orders.>          <- ${m.topic} #${order.id}`));
bus.publish('orders.eu.created', { id: 1 });
bus.publish('orders.eu.west.shipped', { id: 2 });

console.log('2. Async handler, concurrency 3, messages of one key never overlap and keep order');
const running = new Set();
const done = [];
bus.subscribe('jobs', async (job, m) => {
  if (running.has(m.key)) throw new Error('overlap');
  running.add(m.key);
  await new Promise((r) => setTimeout(r, job.ms));
  running.delete(m.key);
  done.push(`${m.key}${job.n}`);
}, { concurrency: 3 });
for (const [key, n, ms] of [['a', 1, 30], ['a', 2, 5], ['b', 1, 10], ['c', 1, 1], ['a', 3, 1], ['b', 2, 1]]) {
  bus.publish('jobs', { n, ms }, { key });
}
await bus.drain();
log('finished in this order:', done.join(' '), '(a1 a2 a3 and b1 b2 stay in order)');

console.log('3. Dedupe by message id');
let charged = 0;
bus.subscribe('payments', () => charged++);
for (const id of ['p-1', 'p-2', 'p-1', 'p-3', 'p-2']) bus.publish('payments', {}, { id });
log(`5 publishes, 3 distinct ids: handler ran ${charged} times`);

console.log('4. Batching: flushed at 4 messages, or after 20 ms');
bus.subscribe('metrics', (batch) => log(`batch of ${batch.length}: ${batch.map((m) => m.payload).join(',')}`), { batch: { maxSize: 4, maxWaitMs: 20 } });
for (let i = 1; i <= 6; i++) bus.publish('metrics', i);
await bus.drain();

console.log('5. Backpressure: a full `reject` queue refuses the publish, atomically');
bus.subscribe('slow', () => new Promise((r) => setTimeout(r, 5)), { maxQueue: 1, overflow: 'reject' });
bus.publish('slow', 1);
bus.publish('slow', 2);
try {
  bus.publish('slow', 3);
} catch (e) {
  log(`${e instanceof EdgebusError ? 'EdgebusError' : 'Error'} ${e.code}: ${e.message}`);
}

console.log('6. A failing handler never stops the others');
bus.subscribe('$errors', (e) => log(`$errors got: ${e.error.message}`));
bus.subscribe('audit', () => { throw new Error('audit store down'); });
bus.subscribe('audit', (x) => log(`second audit handler still got ${x}`));
bus.publish('audit', 'event-7');

console.log('7. Bad input gets a typed error');
for (const [what, fn] of [
  ['topic with a wildcard', () => bus.publish('orders.*', 1)],
  ['pattern with > in the middle', () => bus.subscribe('a.>.b', () => {})],
  ['misspelt option', () => bus.subscribe('a', () => {}, { concurency: 2 })],
]) {
  try { fn(); } catch (e) { log(`${what}: ${e.code} — ${e.message}`); }
}

await bus.close();
const s = bus.stats();
console.log('8. Statistics');
log(`published ${s.published}, delivered ${s.delivered}, duplicates ${s.duplicates}, dropped ${s.dropped}, failed ${s.failed}, latency p50 ${s.latency.p50Ms} ms p99 ${s.latency.p99Ms} ms`);
