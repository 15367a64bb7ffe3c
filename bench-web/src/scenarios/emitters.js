// Scenarios 1 and 2: exact-topic emit with one subscriber, and fan-out to 100 subscribers, against
// the event emitters people use, each as its README shows. Two modes: isolated (each library sees
// only the measured handler) and shared (`{ shared: true }`: each library is first used with five
// other handler functions, so its call sites are polymorphic as in an app; see `primeShared`).
import { Bus } from 'edgebus';
import EventEmitter from 'eventemitter3';
import mitt from 'mitt';
import { createNanoEvents } from 'nanoevents';
import PubSub from 'pubsub-js';
import { EventEmitter as Tseep } from 'tseep';
import { otherTopicHandlers, payload, primeShared } from './common.js';

const TOPIC = 'orders.created';

/** Contenders publishing `ops` messages to `subscribers` handlers, each counting its deliveries. */
function contenders(subscribers) {
  return [
    {
      name: 'edgebus',
      code: "bus.publish('orders.created', payload)",
      setup({ ops, shared }) {
        if (shared) {
          const other = new Bus();
          primeShared((t, fn) => other.subscribe(t, fn), (t, p) => other.publish(t, p));
        }
        const bus = new Bus();
        let seen = 0;
        for (let s = 0; s < subscribers; s++) bus.subscribe(TOPIC, (p) => { seen += p.n; });
        return {
          work: ops * subscribers,
          run() {
            const before = seen;
            for (let i = 0; i < ops; i++) bus.publish(TOPIC, payload);
            return seen - before;
          },
          teardown: () => bus.close(),
        };
      },
    },
    {
      name: 'EventEmitter3',
      code: "ee.emit('orders.created', payload)",
      setup({ ops, shared }) {
        if (shared) {
          const other = new EventEmitter();
          primeShared((t, fn) => other.on(t, fn), (t, p) => other.emit(t, p));
        }
        const ee = new EventEmitter();
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
    },
    {
      name: 'mitt',
      code: "emitter.emit('orders.created', payload)",
      setup({ ops, shared }) {
        if (shared) {
          const other = mitt();
          primeShared((t, fn) => other.on(t, fn), (t, p) => other.emit(t, p));
        }
        const m = mitt();
        let seen = 0;
        for (let s = 0; s < subscribers; s++) m.on(TOPIC, (p) => { seen += p.n; });
        return {
          work: ops * subscribers,
          run() {
            const before = seen;
            for (let i = 0; i < ops; i++) m.emit(TOPIC, payload);
            return seen - before;
          },
        };
      },
    },
    {
      name: 'nanoevents',
      code: "emitter.emit('orders.created', payload)",
      setup({ ops, shared }) {
        if (shared) {
          const other = createNanoEvents();
          primeShared((t, fn) => other.on(t, fn), (t, p) => other.emit(t, p));
        }
        const emitter = createNanoEvents();
        let seen = 0;
        for (let s = 0; s < subscribers; s++) emitter.on(TOPIC, (p) => { seen += p.n; });
        return {
          work: ops * subscribers,
          run() {
            const before = seen;
            for (let i = 0; i < ops; i++) emitter.emit(TOPIC, payload);
            return seen - before;
          },
        };
      },
    },
    {
      name: 'tseep',
      code: "ee.emit('orders.created', payload) (compiles emit with new Function: not allowed under CSP or in Workers)",
      setup({ ops, shared }) {
        if (shared) {
          const other = new Tseep();
          primeShared((t, fn) => other.on(t, fn), (t, p) => other.emit(t, p));
        }
        const ee = new Tseep();
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
    },
    {
      name: 'PubSubJS',
      code: "PubSub.publishSync('orders.created', payload)",
      setup({ ops, shared }) {
        if (shared) {
          const tokens = [];
          primeShared((t, fn) => tokens.push(PubSub.subscribe(t, fn)), (t, p) => PubSub.publishSync(t, p), otherTopicHandlers);
          for (const token of tokens) PubSub.unsubscribe(token);
        }
        let seen = 0;
        for (let s = 0; s < subscribers; s++) PubSub.subscribe(TOPIC, (_msg, p) => { seen += p.n; });
        return {
          work: ops * subscribers,
          run() {
            const before = seen;
            for (let i = 0; i < ops; i++) PubSub.publishSync(TOPIC, payload);
            return seen - before;
          },
          teardown: () => PubSub.clearAllSubscriptions(),
        };
      },
    },
  ];
}

export const exactTopic = {
  id: 'exact',
  number: '1',
  title: 'Exact topic, one subscriber, small payload',
  unit: 'msg/s',
  sizes: { full: { ops: 1_000_000 }, small: { ops: 20_000 } },
  contenders: contenders(1),
};

export const fanOut = {
  id: 'fanout',
  number: '2',
  title: 'Fan-out: one topic, 100 subscribers',
  unit: 'deliveries/s',
  sizes: { full: { ops: 20_000 }, small: { ops: 500 } },
  contenders: contenders(100),
};
