// Scenario 9: subscription churn. 9a: subscribe + unsubscribe cycles on an emitter that already has
// 100 subscriptions; 9b: publishing round-robin to 100 hot topics (one subscriber each) while one
// subscription is added or removed every 100 publishes, so every change lands between publishes to
// topics whose routes are warm. Two modes, as the emit scenarios: isolated, and shared (`{ shared:
// true }`: each library first used with five other handler functions, see `primeShared`).
import { Bus } from 'edgebus';
import EventEmitter from 'eventemitter3';
import { createNanoEvents } from 'nanoevents';
import { payload, primeShared } from './common.js';

const HOT = 100;
const topics = Array.from({ length: HOT }, (_, i) => `orders.${i}.created`);

/**
 * One contender: `make()` returns `{ on(topic, fn) → off(), emit(topic, payload) }` over the library,
 * used the way its README shows.
 */
function contender(name, code, make) {
  return { name, code, make };
}

const contenders = [
  contender('edgebus', 'const sub = bus.subscribe(topic, fn); sub.unsubscribe()', () => {
    const bus = new Bus();
    return {
      on: (t, fn) => {
        const sub = bus.subscribe(t, fn);
        return () => sub.unsubscribe();
      },
      emit: (t, p) => bus.publish(t, p),
      close: () => bus.close(),
    };
  }),
  contender('EventEmitter3', 'ee.on(topic, fn); ee.off(topic, fn)', () => {
    const ee = new EventEmitter();
    return {
      on: (t, fn) => {
        ee.on(t, fn);
        return () => ee.off(t, fn);
      },
      emit: (t, p) => ee.emit(t, p),
    };
  }),
  contender('nanoevents', 'const unbind = emitter.on(topic, fn); unbind()', () => {
    const e = createNanoEvents();
    return { on: (t, fn) => e.on(t, fn), emit: (t, p) => e.emit(t, p) };
  }),
];

/** The shared mode: another emitter of the library first used with five other handler functions. */
function prime(c) {
  const other = c.make();
  primeShared((t, fn) => other.on(t, fn), (t, p) => other.emit(t, p));
  other.close?.();
}

export const churnCycles = {
  id: 'churn',
  number: '9a',
  title: 'Churn: subscribe + unsubscribe cycles (100 other subscriptions present)',
  unit: 'cycles/s',
  note: 'Each cycle subscribes a new handler to one of 100 topics and unsubscribes it; the count ' +
    'checked is the number of subscriptions left over (the 100 standing ones) plus the cycles run.',
  sizes: { full: { ops: 200_000 }, small: { ops: 2_000 } },
  contenders: contenders.map((c) => ({
    name: c.name,
    code: c.code,
    setup({ ops, shared }) {
      if (shared) prime(c);
      const em = c.make();
      let seen = 0;
      for (const t of topics) em.on(t, (p) => { seen += p.n; });
      return {
        work: ops,
        run() {
          let cycles = 0;
          for (let i = 0; i < ops; i++) {
            const off = em.on(topics[i % HOT], (p) => { seen += p.n; });
            off();
            cycles++;
          }
          // Every standing subscription still receives exactly one message per topic.
          const before = seen;
          for (const t of topics) em.emit(t, payload);
          return cycles + (seen - before);
        },
        teardown: () => em.close?.(),
      };
    },
  })),
};

export const churnWhilePublishing = {
  id: 'churn-publish',
  number: '9b',
  title: 'Churn while publishing: one subscription change every 100 publishes over 100 hot topics',
  unit: 'msg/s',
  note: 'Publishes go round-robin to 100 topics with one standing subscriber each; every 100 ' +
    'publishes one extra subscription is added (or the last added one removed), alternating. The ' +
    'count checked is the number of deliveries.',
  sizes: { full: { ops: 1_000_000 }, small: { ops: 20_000 } },
  contenders: contenders.map((c) => ({
    name: c.name,
    code: c.code,
    setup({ ops, shared }) {
      if (shared) prime(c);
      const em = c.make();
      let seen = 0;
      for (const t of topics) em.on(t, (p) => { seen += p.n; });
      return {
        work: ops,
        run() {
          const before = seen;
          let off;
          for (let i = 0; i < ops; i++) {
            if (i % 100 === 99) {
              if (off === undefined) {
                off = em.on(topics[(i / 100) % HOT | 0], (p) => { seen += p.n; });
              } else {
                off();
                off = undefined;
              }
            }
            em.emit(topics[i % HOT], payload);
          }
          off?.();
          return seen - before;
        },
        teardown: () => em.close?.(),
      };
    },
  })),
};
