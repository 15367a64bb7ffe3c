// Node benchmarks: edgebus against the event buses people use, side by side in one process.
//
//   node benches/node/run.mjs [--quick] [--rounds N] [--json FILE]
//
// Method: every scenario runs each contender for a fixed number of operations per round; rounds
// interleave the contenders (rotating who goes first) after warm-up rounds; we report the median
// of the rounds with min and max, and the ratio edgebus ÷ peer computed per round (median). Ratios
// are what to compare across machines; absolute rates move with machine load. The work-queue
// scenario has no peer in this process: its figures sit next to the native ones in BENCHMARKS.md.
import { Bus } from 'edgebus';
import EventEmitter from 'eventemitter3';
import mitt from 'mitt';
import { EventEmitter as NodeEventEmitter } from 'node:events';
import { writeFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import os from 'node:os';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const arg = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const ROUNDS = Number(arg('--rounds', quick ? 2 : 9));
const WARMUP = quick ? 1 : 3;
const SCALE = quick ? 0.01 : 1;

let sink = 0;
const payload = { n: 1 };

/** Each contender: setup() returns a function running `ops` operations. */
const scenarios = [
  {
    name: 'exact topic, 1 subscriber',
    unit: 'msg/s',
    ops: Math.round(2_000_000 * SCALE),
    contenders: {
      edgebus: (ops) => {
        const bus = new Bus();
        bus.subscribe('orders.created', (p) => { sink += p.n; });
        return () => { for (let i = 0; i < ops; i++) bus.publish('orders.created', payload); };
      },
      EventEmitter3: (ops) => {
        const ee = new EventEmitter();
        ee.on('orders.created', (p) => { sink += p.n; });
        return () => { for (let i = 0; i < ops; i++) ee.emit('orders.created', payload); };
      },
      mitt: (ops) => {
        const m = mitt();
        m.on('orders.created', (p) => { sink += p.n; });
        return () => { for (let i = 0; i < ops; i++) m.emit('orders.created', payload); };
      },
      'node:events': (ops) => {
        const ee = new NodeEventEmitter();
        ee.on('orders.created', (p) => { sink += p.n; });
        return () => { for (let i = 0; i < ops; i++) ee.emit('orders.created', payload); };
      },
    },
  },
  {
    name: 'fan-out, 100 subscribers',
    unit: 'deliveries/s',
    ops: Math.round(50_000 * SCALE),
    perOp: 100,
    contenders: {
      edgebus: (ops) => {
        const bus = new Bus();
        for (let s = 0; s < 100; s++) bus.subscribe('orders.created', (p) => { sink += p.n; });
        return () => { for (let i = 0; i < ops; i++) bus.publish('orders.created', payload); };
      },
      EventEmitter3: (ops) => {
        const ee = new EventEmitter();
        for (let s = 0; s < 100; s++) ee.on('orders.created', (p) => { sink += p.n; });
        return () => { for (let i = 0; i < ops; i++) ee.emit('orders.created', payload); };
      },
      mitt: (ops) => {
        const m = mitt();
        for (let s = 0; s < 100; s++) m.on('orders.created', (p) => { sink += p.n; });
        return () => { for (let i = 0; i < ops; i++) m.emit('orders.created', payload); };
      },
    },
  },
  {
    name: 'publishBatch of 1,000 vs 1,000 single publishes (edgebus)',
    unit: 'msg/s',
    ops: Math.round(2_000 * SCALE) || 1,
    perOp: 1000,
    contenders: {
      'edgebus publishBatch': (ops) => {
        const bus = new Bus();
        bus.subscribe('orders.created', (p) => { sink += p.n; });
        const batch = Array.from({ length: 1000 }, () => payload);
        return () => { for (let i = 0; i < ops; i++) bus.publishBatch('orders.created', batch); };
      },
      'edgebus publish ×1000': (ops) => {
        const bus = new Bus();
        bus.subscribe('orders.created', (p) => { sink += p.n; });
        const batch = Array.from({ length: 1000 }, () => payload);
        return () => {
          for (let i = 0; i < ops; i++) for (let j = 0; j < 1000; j++) bus.publish('orders.created', batch[j]);
        };
      },
    },
  },
  {
    name: 'publishBatch of 1,000 to a busy (async) subscriber vs 1,000 single publishes',
    unit: 'msg/s',
    ops: Math.round(200 * SCALE) || 1,
    perOp: 1000,
    async: true,
    contenders: {
      'edgebus publishBatch': (ops) => {
        const bus = new Bus({ maxQueue: Infinity });
        bus.subscribe('jobs', async (p) => { sink += p.n; });
        const batch = Array.from({ length: 1000 }, () => payload);
        return async () => {
          for (let i = 0; i < ops; i++) { bus.publishBatch('jobs', batch); await bus.drain(); }
        };
      },
      'edgebus publish ×1000': (ops) => {
        const bus = new Bus({ maxQueue: Infinity });
        bus.subscribe('jobs', async (p) => { sink += p.n; });
        return async () => {
          for (let i = 0; i < ops; i++) {
            for (let j = 0; j < 1000; j++) bus.publish('jobs', payload);
            await bus.drain();
          }
        };
      },
    },
  },
  {
    name: 'work queue: enqueue + claim + ack of jobs with ids, by batch-claim size',
    unit: 'jobs/s',
    ops: Math.round(100 * SCALE) || 1,
    perOp: 10_000,
    contenders: Object.fromEntries([100, 10, 1].map((claim) => [`edgebus group, claim ${claim}`, (ops) => {
      const bus = new Bus({ maxQueue: 10_000 });
      const options = claim > 1 ? { group: 'workers', batch: { maxSize: claim, maxWaitMs: 0 } } : { group: 'workers' };
      const handler = claim > 1 ? (jobs) => { for (const j of jobs) sink += j.payload.n; } : (p) => { sink += p.n; };
      bus.subscribe('jobs.*', handler, options);
      const payloads = Array.from({ length: 100 }, () => payload);
      let next = 0;
      return () => {
        for (let i = 0; i < ops; i++) {
          // 10,000 jobs in publishBatch calls of 100, each job with its own id.
          for (let b = 0; b < 100; b++) {
            const ids = Array.from({ length: 100 }, () => `job-${next++}`);
            bus.publishBatch('jobs.email', payloads, { ids });
          }
        }
      };
    }])),
  },
];

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

async function timeOnce(fn) {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

const results = [];
for (const sc of scenarios) {
  const names = Object.keys(sc.contenders);
  const runs = Object.fromEntries(names.map((n) => [n, sc.contenders[n](sc.ops)]));
  const rates = Object.fromEntries(names.map((n) => [n, []]));
  for (let r = 0; r < WARMUP + ROUNDS; r++) {
    const order = names.map((_, i) => names[(i + r) % names.length]);
    for (const n of order) {
      const secs = await timeOnce(runs[n]);
      if (r >= WARMUP) rates[n].push((sc.ops * (sc.perOp ?? 1)) / secs);
    }
  }
  const base = names[0];
  const rows = names.map((n) => ({
    contender: n,
    median: median(rates[n]),
    min: Math.min(...rates[n]),
    max: Math.max(...rates[n]),
    ratio: n === base ? 1 : median(rates[base].map((x, i) => x / rates[n][i])),
  }));
  results.push({ scenario: sc.name, unit: sc.unit, rows });
}

const fmt = (x) => (x >= 1e6 ? (x / 1e6).toFixed(2) + ' M' : x >= 1e3 ? (x / 1e3).toFixed(1) + ' k' : x.toFixed(0));
const machine = `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, ${os.type()} ${os.release()}, Node ${process.version}`;
console.log(`# edgebus Node benchmarks (${quick ? 'quick' : 'full'}: ${ROUNDS} rounds after ${WARMUP} warm-up)`);
console.log(`machine: ${machine}\n`);
for (const r of results) {
  console.log(`## ${r.scenario} (${r.unit})`);
  console.log('| contender | median | min | max | first ÷ this (median of rounds) |');
  console.log('| --- | ---: | ---: | ---: | ---: |');
  for (const row of r.rows) {
    console.log(`| ${row.contender} | ${fmt(row.median)} | ${fmt(row.min)} | ${fmt(row.max)} | ${row.ratio.toFixed(2)}x |`);
  }
  console.log();
}
const out = arg('--json', undefined);
if (out) {
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify({ machine, date: new Date().toISOString(), rounds: ROUNDS, results }, null, 2));
}
if (sink === 42) console.log(''); // keeps the handlers' work observable
