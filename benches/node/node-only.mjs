// What the Node benchmark measures beyond the browser page's scenarios: node:events as a contender
// of the emit scenarios, fastq in the latency scenario, the async-throughput scenario against fastq
// and p-queue, and the work-queue scenario (no peer in this process: its figures sit next to the
// native ones in BENCHMARKS.md).
import { EventEmitter } from 'node:events';
import { Bus } from 'edgebus';
import { payload, primeShared } from '../../bench-web/src/scenarios/common.js';
import { asyncThroughput, fastqLatency } from './async-throughput.mjs';

export { asyncThroughput };

const TOPIC = 'orders.created';

function nodeEvents(subscribers) {
  return {
    name: 'node:events',
    code: "ee.emit('orders.created', payload)",
    setup({ ops, shared }) {
      if (shared) {
        const other = new EventEmitter();
        primeShared((t, fn) => other.on(t, fn), (t, p) => other.emit(t, p));
      }
      const ee = new EventEmitter();
      ee.setMaxListeners(0);
      let seen = 0;
      for (let s = 0; s < subscribers; s++) ee.on(TOPIC, (p) => { seen += p.n; });
      return {
        work: ops * subscribers,
        run() {
          const before = seen;
          for (let i = 0; i < ops; i++) ee.emit(TOPIC, payload);
          return seen - before;
        },
      };
    },
  };
}

/** Extra contenders by scenario id. */
export const nodeContenders = {
  exact: [nodeEvents(1)],
  fanout: [nodeEvents(100)],
  'async-latency': [fastqLatency],
};

const JOBS = 10_000;

function claim(size) {
  return {
    name: `edgebus group, claim ${size}`,
    code: size > 1
      ? `bus.subscribe('jobs.*', (jobs) => …, { group: 'workers', batch: { maxSize: ${size}, maxWaitMs: 0 } })`
      : "bus.subscribe('jobs.*', (job) => …, { group: 'workers' })",
    setup({ rounds }) {
      const bus = new Bus({ maxQueue: JOBS });
      let done = 0;
      const options = size > 1 ? { group: 'workers', batch: { maxSize: size, maxWaitMs: 0 } } : { group: 'workers' };
      const handler = size > 1 ? (jobs) => { for (const j of jobs) done += j.payload.n; } : (p) => { done += p.n; };
      bus.subscribe('jobs.*', handler, options);
      const payloads = Array.from({ length: 100 }, () => payload);
      let next = 0;
      return {
        work: rounds * JOBS,
        run() {
          const before = done;
          // JOBS jobs per round in publishBatch calls of 100, each job with its own id.
          for (let r = 0; r < rounds; r++) {
            for (let b = 0; b < JOBS / 100; b++) {
              const ids = Array.from({ length: 100 }, () => `job-${next++}`);
              bus.publishBatch('jobs.email', payloads, { ids });
            }
          }
          return done - before;
        },
        teardown: () => bus.close(),
      };
    },
  };
}

export const workQueue = {
  id: 'work-queue',
  number: 'WQ',
  title: 'Work queue: enqueue + claim + ack of jobs with ids, by batch-claim size',
  unit: 'jobs/s',
  note: '10,000 jobs per round, published in batches of 100 with one id each; the handler acks by returning.',
  sizes: { full: { rounds: 10 }, small: { rounds: 1 } },
  contenders: [claim(100), claim(10), claim(1)],
};
