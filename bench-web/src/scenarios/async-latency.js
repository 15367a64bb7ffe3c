// Scenario 6: publish→handler-start latency of async handlers under a steady 100,000 msg/s.
// Messages are published on schedule (each macrotask publishes the messages due by then); the
// handler reads the clock as it starts. Reported: p50 and p99 of each run. (The Node benchmark adds
// fastq as a peer: benches/node/async-throughput.mjs.)
import { Bus } from 'edgebus';

export const RATE = 100_000; // messages per second

/** Resolves at the next macrotask without the 4 ms clamp of nested setTimeout. */
export function nextTask() {
  return new Promise((resolve) => {
    const ch = new MessageChannel();
    ch.port1.onmessage = () => { ch.port1.close(); resolve(); };
    ch.port2.postMessage(0);
  });
}

export function percentile(sorted, q) {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

function contender(concurrency) {
  return {
    name: `edgebus, concurrency ${concurrency}`,
    code: `bus.subscribe('jobs', async (job) => …, { concurrency: ${concurrency} })`,
    setup({ durationMs }) {
      const total = Math.round((RATE * durationMs) / 1000);
      const latencies = new Float64Array(total);
      let started = 0;
      const bus = new Bus({ maxQueue: Infinity });
      bus.subscribe('jobs', async (job) => {
        latencies[started++] = performance.now() - job.t0;
      }, { concurrency });
      return {
        async run() {
          started = 0;
          const t0 = performance.now();
          let sent = 0;
          while (sent < total) {
            const due = Math.min(total, Math.floor(((performance.now() - t0) * RATE) / 1000));
            for (; sent < due; sent++) bus.publish('jobs', { t0: performance.now() });
            await nextTask();
          }
          await bus.drain();
          const sorted = latencies.slice(0, started).sort();
          return { p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99), count: started };
        },
        teardown: () => bus.close(),
      };
    },
  };
}

export const asyncLatency = {
  id: 'async-latency',
  number: '6',
  title: 'Async handlers: publish→handler-start latency under a steady 100,000 msg/s',
  note: 'Each run publishes for the whole duration (1 s at full size) on schedule; the handler is ' +
    '`async` and records `performance.now() − t0` as it starts. Lower is better.',
  rounds: { full: 5 },
  metrics: [
    { key: 'p50', label: 'p50 latency', unit: 'ms', better: 'lower' },
    { key: 'p99', label: 'p99 latency', unit: 'ms', better: 'lower' },
  ],
  sizes: { full: { durationMs: 1000 }, small: { durationMs: 100 } },
  contenders: [contender(1), contender(16)],
};
