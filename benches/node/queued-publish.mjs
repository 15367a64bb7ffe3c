// What a message costs while it queues behind a busy `async` subscription, and then to run:
// 100,000 publishes in one synchronous loop to a subscription with concurrency 16, then drain();
// nanoseconds per message for each part, 25 rounds after 5 of warm-up. Usage: node
// benches/node/queued-publish.mjs. A sketch behind scenario 6b (BENCHMARKS.md), not a comparison.
import { Bus } from 'edgebus';

const N = 100_000;
const bus = new Bus({ maxQueue: Infinity });
let handled = 0;
bus.subscribe('jobs', async (p) => { handled += p.n; }, { concurrency: 16 });
const payload = { n: 1 };
for (let r = 0; r < 30; r++) {
  const t0 = performance.now();
  for (let i = 0; i < N; i++) bus.publish('jobs', payload);
  const t1 = performance.now();
  await bus.drain();
  const t2 = performance.now();
  if (r >= 5) {
    console.log(`publish ${((t1 - t0) * 1e6 / N).toFixed(0)} ns/message, drain ${((t2 - t1) * 1e6 / N).toFixed(0)} ns/message`);
  }
}
if (handled !== 30 * N) throw new Error(`handled ${handled} of ${30 * N} messages`);
await bus.close();
