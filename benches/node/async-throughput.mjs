// Async handlers against the async work queues of Node (fastq, p-queue), each as its README shows:
// 6b, 100,000 messages queued with a concurrency limit of 16, then waited for; and fastq as a contender
// of the page's latency scenario 6. Node only: fastq relies on `process.nextTick`.
import { Bus } from 'edgebus';
import fastq from 'fastq';
import PQueue from 'p-queue';
import { payload } from '../../bench-web/src/scenarios/common.js';
import { nextTask, percentile, RATE } from '../../bench-web/src/scenarios/async-latency.js';

const CONCURRENCY = 16;

export const asyncThroughput = {
  id: 'async-throughput',
  number: '6b',
  title: 'Async handlers, concurrency 16: 100,000 messages queued, then drained',
  unit: 'msg/s',
  note: 'The handler is `async (p) => { seen += p.n }`; each call queues every message, then waits ' +
    'until all have run. The count checked is the number of handler runs.',
  rounds: { full: 7 },
  sizes: { full: { ops: 100_000 }, small: { ops: 2_000 } },
  contenders: [
    {
      name: 'edgebus',
      code: "bus.subscribe('jobs', async (p) => …, { concurrency: 16 }); bus.publish('jobs', p); await bus.drain()",
      setup({ ops }) {
        const bus = new Bus({ maxQueue: Infinity });
        let seen = 0;
        bus.subscribe('jobs', async (p) => { seen += p.n; }, { concurrency: CONCURRENCY });
        return {
          work: ops,
          async run() {
            const before = seen;
            for (let i = 0; i < ops; i++) bus.publish('jobs', payload);
            await bus.drain();
            return seen - before;
          },
          teardown: () => bus.close(),
        };
      },
    },
    {
      name: 'fastq (promise API)',
      code: 'const q = fastq.promise(async (p) => …, 16); q.push(p); await q.drained()',
      setup({ ops }) {
        let seen = 0;
        const q = fastq.promise(async (p) => { seen += p.n; }, CONCURRENCY);
        return {
          work: ops,
          async run() {
            const before = seen;
            for (let i = 0; i < ops; i++) q.push(payload);
            await q.drained();
            return seen - before;
          },
        };
      },
    },
    {
      name: 'p-queue',
      code: 'const q = new PQueue({ concurrency: 16 }); q.add(() => handler(p)); await q.onIdle()',
      setup({ ops }) {
        let seen = 0;
        const handler = async (p) => { seen += p.n; };
        const q = new PQueue({ concurrency: CONCURRENCY });
        return {
          work: ops,
          async run() {
            const before = seen;
            for (let i = 0; i < ops; i++) q.add(() => handler(payload));
            await q.onIdle();
            return seen - before;
          },
        };
      },
    },
  ],
};

/** fastq with concurrency 16, fed on the latency scenario's schedule (publish→start at 100,000 msg/s). */
export const fastqLatency = {
  name: 'fastq (promise API), concurrency 16',
  code: 'const q = fastq.promise(async (job) => …, 16); q.push(job)',
  setup({ durationMs }) {
    const total = Math.round((RATE * durationMs) / 1000);
    const latencies = new Float64Array(total);
    let started = 0;
    const q = fastq.promise(async (job) => {
      latencies[started++] = performance.now() - job.t0;
    }, CONCURRENCY);
    return {
      async run() {
        started = 0;
        const t0 = performance.now();
        let sent = 0;
        while (sent < total) {
          const due = Math.min(total, Math.floor(((performance.now() - t0) * RATE) / 1000));
          for (; sent < due; sent++) q.push({ t0: performance.now() });
          await nextTask();
        }
        await q.drained();
        const sorted = latencies.slice(0, started).sort();
        return { p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99), count: started };
      },
    };
  },
};
