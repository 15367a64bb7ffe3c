// How long messages published in one synchronous loop to a busy `async` subscription wait to start:
// 20 publishes per repetition, five repetitions, microseconds from each publish to its handler's
// start. Usage: node benches/node/queued-start.mjs [concurrency] (default 16). A sketch behind
// scenario 6's 99th percentile (BENCHMARKS.md), not a comparison.
import { Bus } from 'edgebus';

const concurrency = Number(process.argv[2] ?? 16);
const bus = new Bus({ maxQueue: Infinity });
const waits = [];
bus.subscribe('jobs', async (job) => { waits.push(performance.now() - job.t0); }, { concurrency });
for (let r = 0; r < 5; r++) {
  waits.length = 0;
  for (let i = 0; i < 20; i++) bus.publish('jobs', { t0: performance.now() });
  await new Promise((resolve) => setTimeout(resolve, 5));
  console.log(waits.map((x) => (x * 1000).toFixed(1)).join(' '));
}
await bus.close();
