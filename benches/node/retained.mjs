// What retained values and history cost on publish, and what a retained topic holds in memory.
// Side by side in one process, rounds interleaved, one subscriber on the topic counting payloads:
// - plain publish on an untracked topic (the direct path: no options, no core call), with a
//   handler taking only the payload, and one taking the message too (its object is built, with
//   the time of publishing read from the clock, as a retained message's is);
// - plain publish through the core's queues (`{ notBefore: 0 }`: due at once, but not handed to
//   the handler directly), the fair base for the next two, which go through the core as well;
// - `{ retain: true }` on every publish;
// - plain publish on a topic with history (`history: { topics }`, 100 messages kept);
// - plain publish on an untracked topic of a bus where retained values and history are in use
//   on other topics (1,000 retained values, history on `other.*`): what turning the features on
//   costs the topics that do not use them;
// - a hand-rolled retained value on EventEmitter3 (a Map of the last payload per topic, set on
//   every emit), the peer: what people write for "sticky" events, without numbers, bounds or replay;
//   and EventEmitter3 without it, for what keeping the last value costs the peer itself.
// Memory: bytes of JavaScript heap and WebAssembly memory per retained topic, 100,000 topics with a
// small object payload each (after gc, with --expose-gc; the WebAssembly memory's growth, in whole
// 64 KiB pages, so over many topics).
//
//   node --expose-gc benches/node/retained.mjs [--quick] [--rounds N] [--json FILE]
import EventEmitter3 from 'eventemitter3';
import { loadavg } from 'node:os';
import { benchArgs, median, writeJson } from './cli.mjs';

// The Node entry instantiates its module at import: the memory it creates is noted on the way,
// so its growth can be counted (as benches/node/run.mjs does).
let wasmMemory;
const Instance = WebAssembly.Instance;
WebAssembly.Instance = new Proxy(Instance, {
  construct(target, argv, newTarget) {
    const instance = Reflect.construct(target, argv, newTarget);
    if (instance.exports.memory instanceof WebAssembly.Memory) wasmMemory = instance.exports.memory;
    return instance;
  },
});
const { Bus } = await import('edgebus');
WebAssembly.Instance = Instance;
const wasmBytes = () => wasmMemory?.buffer.byteLength ?? NaN;

const { quick, rounds, json } = benchArgs();
const count = quick ? 2_000 : 500_000;

let sink = 0;
const count1 = (p) => { sink += p; };

const countMessage = (p, m) => { sink += p + (m.publishedAt > 0 ? 1 : 0); };

function bus(options, publishOptions, handler = count1) {
  const b = new Bus(options);
  b.subscribe('sensors.temp', handler);
  if (publishOptions === undefined) return (i) => b.publish('sensors.temp', i);
  return (i) => b.publish('sensors.temp', i, publishOptions);
}

function ee3() {
  const ee = new EventEmitter3();
  ee.on('sensors.temp', count1);
  return (i) => ee.emit('sensors.temp', i);
}

function ee3Sticky() {
  const ee = new EventEmitter3();
  const last = new Map();
  ee.on('sensors.temp', count1);
  return (i) => {
    last.set('sensors.temp', i);
    ee.emit('sensors.temp', i);
  };
}

/** A bus holding retained values and history on other topics, publishing plainly to its own. */
function busWithLogsElsewhere() {
  const b = new Bus({ history: { topics: ['other.*'], maxMessages: 100 } });
  for (let i = 0; i < 1000; i++) b.publish(`other.r${i}`, i, { retain: true });
  b.subscribe('other.*', count1);
  b.subscribe('sensors.temp', count1);
  return (i) => b.publish('sensors.temp', i);
}

const QUEUED = { notBefore: 0 };
const RETAIN = { retain: true };
const contenders = {
  'edgebus publish, plain (direct path)': bus(undefined, undefined),
  'edgebus publish, plain, handler taking the message': bus(undefined, undefined, countMessage),
  'edgebus publish through the queues': bus(undefined, QUEUED),
  'edgebus publish { retain: true }': bus(undefined, RETAIN),
  'edgebus publish, topic with history': bus({ history: { topics: ['sensors.*'], maxMessages: 100 } }, undefined),
  'edgebus publish, plain, retained values and history on other topics': busWithLogsElsewhere(),
  'EventEmitter3 + Map of last values': ee3Sticky(),
  'EventEmitter3 (no last values)': ee3(),
};
const RETAINED = 'edgebus publish { retain: true }';

function run(call, n) {
  for (let i = 0; i < n; i++) call(i);
}

const names = Object.keys(contenders);
for (const n of names) run(contenders[n], Math.min(count, 20_000)); // warm-up
const rates = Object.fromEntries(names.map((n) => [n, []]));
const loadBefore = loadavg()[0];
for (let r = 0; r < rounds; r++) {
  for (let k = 0; k < names.length; k++) {
    const n = names[(k + r) % names.length];
    globalThis.gc?.();
    const t0 = performance.now();
    run(contenders[n], count);
    rates[n].push(count / ((performance.now() - t0) / 1000));
  }
}
const rows = names.map((n) => ({
  name: n, median: median(rates[n]), min: Math.min(...rates[n]), max: Math.max(...rates[n]),
  retainRatio: median(rates[RETAINED].map((x, i) => x / rates[n][i])),
}));

// Memory per retained topic.
function heap() {
  globalThis.gc?.();
  return process.memoryUsage();
}
const topics = quick ? 500 : 100_000;
const before = heap();
const wasmBefore = wasmBytes();
const mem = new Bus({ retain: { maxTopics: topics, maxBytes: Infinity } });
for (let i = 0; i < topics; i++) mem.publish(`sensors.s${i}.temp`, { celsius: i % 40, at: i }, { retain: true });
const after = heap();
const perTopic = {
  heap: (after.heapUsed - before.heapUsed) / topics,
  // The core's WebAssembly memory only grows; its growth over the run bounds what it took.
  wasm: (wasmBytes() - wasmBefore) / topics,
};
const memPeer = new Map();
const beforePeer = heap();
for (let i = 0; i < topics; i++) memPeer.set(`sensors.s${i}.temp`, { celsius: i % 40, at: i });
const afterPeer = heap();
const peerPerTopic = (afterPeer.heapUsed - beforePeer.heapUsed) / topics;
const loadAfter = loadavg()[0];
if (mem.retained().length !== topics || memPeer.size !== topics) throw new Error('not every topic was kept');

const fmt = (x) => (x >= 1e6 ? `${(x / 1e6).toFixed(2)} M` : `${(x / 1e3).toFixed(0)} k`);
console.log(`# Retained values and history on publish, Node ${process.version}, ${count} publishes a round, ${rounds} rounds\n`);
console.log('| contender | median publishes/s | min | max | retain ÷ this |');
console.log('| --- | ---: | ---: | ---: | ---: |');
for (const r of rows) console.log(`| ${r.name} | ${fmt(r.median)} | ${fmt(r.min)} | ${fmt(r.max)} | ${r.retainRatio.toFixed(2)}x |`);
console.log(`\nMemory per retained topic (${topics} topics, small object payloads): edgebus ${perTopic.heap.toFixed(0)} B of JavaScript heap + ${perTopic.wasm.toFixed(0)} B of WebAssembly memory growth; a Map of last values ${peerPerTopic.toFixed(0)} B.`);
console.log(`1-minute load average: ${loadBefore.toFixed(2)} before, ${loadAfter.toFixed(2)} after (sink ${sink % 7})`);

writeJson(json, { rounds, count, rows, perTopic, peerPerTopic, loadBefore, loadAfter });
