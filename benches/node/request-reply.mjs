// In-page request/reply round trip: `bus.request` on an edgebus Bus against the request/reply people
// write by hand on EventEmitter3 (a correlation id, a map of pending resolvers, a reply event),
// with and without the timeout a request needs (a host timer per request), side by side in one
// process, rounds interleaved, the handler adding 1. Two shapes: one request at a time (each awaited
// before the next), and `count` at once (every reply awaited together).
//
//   node benches/node/request-reply.mjs [--quick] [--rounds N] [--json FILE]
import { Bus } from 'edgebus';
import EventEmitter3 from 'eventemitter3';
import { loadavg } from 'node:os';
import { benchArgs, median, writeJson } from './cli.mjs';

const { quick, rounds, json } = benchArgs();
const count = quick ? 200 : 50_000;

function edgebus() {
  const bus = new Bus();
  bus.subscribe('svc.inc', (n) => n + 1);
  return (n) => bus.request('svc.inc', n, { timeoutMs: 5000 });
}

function handRolled(withTimeout) {
  const ee = new EventEmitter3();
  const pending = new Map();
  let seq = 0;
  ee.on('svc.inc', (msg) => ee.emit('reply', msg.id, msg.payload + 1));
  ee.on('reply', (id, value) => {
    const p = pending.get(id);
    if (p === undefined) return; // late
    pending.delete(id);
    if (p.timer !== undefined) clearTimeout(p.timer);
    p.resolve(value);
  });
  return (n) => new Promise((resolve, reject) => {
    const id = ++seq;
    const p = { resolve, timer: undefined };
    if (withTimeout) {
      p.timer = setTimeout(() => { pending.delete(id); reject(new Error('timeout')); }, 5000);
    }
    pending.set(id, p);
    ee.emit('svc.inc', { id, payload: n });
  });
}

const contenders = {
  'edgebus Bus.request': edgebus(),
  'EventEmitter3, by hand, with a timeout': handRolled(true),
  'EventEmitter3, by hand, no timeout': handRolled(false),
};

let sink = 0;
async function sequential(call, n) {
  for (let i = 0; i < n; i++) sink += await call(i);
}
async function together(call, n) {
  const all = new Array(n);
  for (let i = 0; i < n; i++) all[i] = call(i);
  for (const v of await Promise.all(all)) sink += v;
}

async function measure(shape) {
  const names = Object.keys(contenders);
  for (const n of names) await shape(contenders[n], Math.min(count, 2000)); // warm-up
  const rates = Object.fromEntries(names.map((n) => [n, []]));
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < names.length; k++) {
      const n = names[(k + r) % names.length];
      globalThis.gc?.();
      const t0 = performance.now();
      await shape(contenders[n], count);
      rates[n].push(count / ((performance.now() - t0) / 1000));
    }
  }
  const base = rates['edgebus Bus.request'];
  return names.map((n) => ({
    name: n, median: median(rates[n]), min: Math.min(...rates[n]), max: Math.max(...rates[n]),
    edgebusRatio: median(base.map((x, i) => x / rates[n][i])),
  }));
}

const loadBefore = loadavg()[0];
const seq = await measure(sequential);
const all = await measure(together);
const loadAfter = loadavg()[0];

const fmt = (x) => (x >= 1e6 ? `${(x / 1e6).toFixed(2)} M` : `${(x / 1e3).toFixed(0)} k`);
function print(title, rows) {
  const lines = [`### ${title} (round trips/s, ${rounds} rounds)`, '', '| contender | median | min | max | edgebus ÷ this |', '| --- | ---: | ---: | ---: | ---: |'];
  for (const r of rows) lines.push(`| ${r.name} | ${fmt(r.median)} | ${fmt(r.min)} | ${fmt(r.max)} | ${r.edgebusRatio.toFixed(2)}x |`);
  return lines.join('\n');
}
console.log(`# In-page request/reply, Node ${process.version}\n`);
console.log(print(`one at a time, ${count} requests`, seq) + '\n');
console.log(print(`${count} at once`, all));
console.log(`\n1-minute load average: ${loadBefore.toFixed(2)} before, ${loadAfter.toFixed(2)} after (sink ${sink % 7})`);

writeJson(json, { rounds, count, loadBefore, loadAfter, sequential: seq, together: all });
