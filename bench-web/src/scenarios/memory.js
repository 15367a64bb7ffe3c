// Scenario 7: memory held by 10,000 and by 100,000 subscriptions (distinct topics, one handler each):
// JavaScript heap after a forced GC, plus, for edgebus, the growth of its WebAssembly memory.
// Needs Chromium started with --enable-precise-memory-info and --js-flags=--expose-gc (the headless
// runner and the tests do), or Node with --expose-gc (benches/node/run.mjs); otherwise the scenario
// reports why it cannot measure.
import { Bus } from 'edgebus';
import { wasmMemoryBytes } from '../wasm-memory.js';
import EventEmitter from 'eventemitter3';
import eventemitter2 from 'eventemitter2'; // CommonJS: its default import works in Vite and Node alike

import mitt from 'mitt';
import { createNanoEvents } from 'nanoevents';
import PubSub from 'pubsub-js';

const { EventEmitter2 } = eventemitter2;

const topicLists = new Map();
function topicsFor(n) {
  if (!topicLists.has(n)) topicLists.set(n, Array.from({ length: n }, (_, i) => `orders.${i}.created`));
  return topicLists.get(n);
}

/** Why memory cannot be measured in this browser, or undefined when it can. */
export function memoryUnavailable() {
  if (typeof globalThis.gc !== 'function') return 'needs --js-flags=--expose-gc (Node: --expose-gc)';
  if (!performance.memory && typeof globalThis.process?.memoryUsage !== 'function') {
    return 'needs performance.memory (Chromium) or process.memoryUsage (Node)';
  }
  return undefined;
}

function heap() {
  globalThis.gc();
  globalThis.gc();
  return performance.memory ? performance.memory.usedJSHeapSize : globalThis.process.memoryUsage().heapUsed;
}

/** A contender building `SUBSCRIPTIONS` subscriptions; `keep` keeps each round's bus alive. */
function contender(name, code, build, { keep = false, release } = {}) {
  return {
    name,
    code,
    setup({ subscriptions }) {
      const kept = [];
      const topics = topicsFor(subscriptions);
      return {
        run() {
          const before = heap();
          const wasmBefore = wasmMemoryBytes();
          const target = build(topics);
          const after = heap();
          const wasm = wasmMemoryBytes() - wasmBefore;
          // Kept alive so that a later round cannot reuse freed WebAssembly memory and look free.
          if (keep) kept.push(target);
          else release?.(target);
          return { bytes: (after - before + wasm) / subscriptions, wasmBytes: wasm / subscriptions };
        },
        teardown: () => { for (const b of kept) b.close(); kept.length = 0; },
      };
    },
  };
}

const memoryScenario = (subscriptions, extra) => ({
  id: subscriptions === 10_000 ? 'memory' : 'memory-100k',
  number: subscriptions === 10_000 ? '7a' : '7b',
  title: `Memory: ${subscriptions.toLocaleString('en')} subscriptions`,
  note: 'Bytes per subscription: JavaScript heap growth after a forced GC (Chromium ' +
    '`performance.memory`, precise), plus WebAssembly memory growth for edgebus (it grows in ' +
    '64 KiB pages). Runs first, before other scenarios allocate. Lower is better.',
  runFirst: true,
  unavailable: memoryUnavailable,
  rounds: { full: 5 },
  metrics: [{ key: 'bytes', label: 'bytes per subscription', unit: 'B/subscription', better: 'lower' }],
  // Shown beside the total: the WebAssembly part of it.
  details: [{ key: 'wasmBytes', label: 'of which WebAssembly memory' }],
  sizes: { full: { subscriptions }, small: { subscriptions } },
  ...extra,
  contenders: [
    contender('edgebus', "bus.subscribe(topic, fn) ×N", (topics) => {
      const bus = new Bus();
      for (const t of topics) bus.subscribe(t, () => {});
      return bus;
    }, { keep: true }),
    contender('EventEmitter3', 'ee.on(topic, fn) ×N', (topics) => {
      const ee = new EventEmitter();
      for (const t of topics) ee.on(t, () => {});
      return ee;
    }),
    contender('mitt', 'emitter.on(topic, fn) ×N', (topics) => {
      const m = mitt();
      for (const t of topics) m.on(t, () => {});
      return m;
    }),
    contender('nanoevents', 'emitter.on(topic, fn) ×N', (topics) => {
      const e = createNanoEvents();
      for (const t of topics) e.on(t, () => {});
      return e;
    }),
    contender('PubSubJS', 'PubSub.subscribe(topic, fn) ×N', (topics) => {
      for (const t of topics) PubSub.subscribe(t, () => {});
      return PubSub;
    }, { release: (ps) => ps.clearAllSubscriptions() }),
    contender('EventEmitter2', "new EventEmitter2({ wildcard: true }); ee.on(topic, fn) ×N", (topics) => {
      const ee = new EventEmitter2({ wildcard: true, delimiter: '.' });
      for (const t of topics) ee.on(t, () => {});
      return ee;
    }),
  ],
});

export const memory = memoryScenario(10_000);
export const memory100k = memoryScenario(100_000, { rounds: { full: 3 } });
