// Scenario 7: memory held by 10,000 subscriptions (10,000 distinct topics, one handler each):
// JavaScript heap after a forced GC, plus, for edgebus, the growth of its WebAssembly memory.
// Needs Chromium started with --enable-precise-memory-info and --js-flags=--expose-gc (the headless
// runner and the tests do); otherwise the scenario reports why it cannot measure.
import { Bus } from 'edgebus';
import { wasmMemoryBytes } from '../wasm-memory.js';
import EventEmitter from 'eventemitter3';
import { EventEmitter2 } from 'eventemitter2';
import mitt from 'mitt';
import { createNanoEvents } from 'nanoevents';
import PubSub from 'pubsub-js';

const SUBSCRIPTIONS = 10_000;
const topics = Array.from({ length: SUBSCRIPTIONS }, (_, i) => `orders.${i}.created`);

/** Why memory cannot be measured in this browser, or undefined when it can. */
export function memoryUnavailable() {
  if (typeof globalThis.gc !== 'function') return 'needs --js-flags=--expose-gc';
  if (!performance.memory) return 'needs performance.memory (Chromium)';
  return undefined;
}

function heap() {
  globalThis.gc();
  globalThis.gc();
  return performance.memory.usedJSHeapSize;
}

/** A contender building `SUBSCRIPTIONS` subscriptions; `keep` keeps each round's bus alive. */
function contender(name, code, build, { keep = false, release } = {}) {
  return {
    name,
    code,
    setup() {
      const kept = [];
      return {
        run() {
          const before = heap();
          const wasmBefore = wasmMemoryBytes();
          const target = build();
          const after = heap();
          const wasm = wasmMemoryBytes() - wasmBefore;
          // Kept alive so that a later round cannot reuse freed WebAssembly memory and look free.
          if (keep) kept.push(target);
          else release?.(target);
          return { bytes: (after - before + wasm) / SUBSCRIPTIONS, wasmBytes: wasm / SUBSCRIPTIONS };
        },
        teardown: () => { for (const b of kept) b.close(); kept.length = 0; },
      };
    },
  };
}

export const memory = {
  id: 'memory',
  number: '7',
  title: 'Memory: 10,000 subscriptions',
  note: 'Bytes per subscription: JavaScript heap growth after a forced GC (Chromium ' +
    '`performance.memory`, precise), plus WebAssembly memory growth for edgebus (it grows in ' +
    '64 KiB pages). Runs first, before other scenarios allocate. Lower is better.',
  runFirst: true,
  unavailable: memoryUnavailable,
  rounds: { full: 5 },
  metrics: [{ key: 'bytes', label: 'bytes per subscription', unit: 'B/subscription', better: 'lower' }],
  // Shown beside the total: the WebAssembly part of it.
  details: [{ key: 'wasmBytes', label: 'of which WebAssembly memory' }],
  sizes: { full: {}, small: {} },
  contenders: [
    contender('edgebus', "bus.subscribe(topic, fn) ×10,000", () => {
      const bus = new Bus();
      for (const t of topics) bus.subscribe(t, () => {});
      return bus;
    }, { keep: true }),
    contender('EventEmitter3', 'ee.on(topic, fn) ×10,000', () => {
      const ee = new EventEmitter();
      for (const t of topics) ee.on(t, () => {});
      return ee;
    }),
    contender('mitt', 'emitter.on(topic, fn) ×10,000', () => {
      const m = mitt();
      for (const t of topics) m.on(t, () => {});
      return m;
    }),
    contender('nanoevents', 'emitter.on(topic, fn) ×10,000', () => {
      const e = createNanoEvents();
      for (const t of topics) e.on(t, () => {});
      return e;
    }),
    contender('PubSubJS', 'PubSub.subscribe(topic, fn) ×10,000', () => {
      for (const t of topics) PubSub.subscribe(t, () => {});
      return PubSub;
    }, { release: (ps) => ps.clearAllSubscriptions() }),
    contender('EventEmitter2', "new EventEmitter2({ wildcard: true }); ee.on(topic, fn) ×10,000", () => {
      const ee = new EventEmitter2({ wildcard: true, delimiter: '.' });
      for (const t of topics) ee.on(t, () => {});
      return ee;
    }),
  ],
};
