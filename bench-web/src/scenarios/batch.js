// Scenario 5: `publishBatch` of 1,000 payloads against 1,000 single publishes (edgebus only), with
// an idle synchronous subscriber and with a busy asynchronous one (messages queue in the core).
import { Bus } from 'edgebus';
import { payload } from './common.js';

const BATCH = 1_000;

function idle(name, code, publishBatch) {
  return {
    name,
    code,
    setup({ batches }) {
      const bus = new Bus();
      let seen = 0;
      bus.subscribe('orders.created', (p) => { seen += p.n; });
      const items = Array.from({ length: BATCH }, () => payload);
      return {
        work: batches * BATCH,
        run() {
          const before = seen;
          for (let i = 0; i < batches; i++) {
            if (publishBatch) bus.publishBatch('orders.created', items);
            else for (let j = 0; j < BATCH; j++) bus.publish('orders.created', items[j]);
          }
          return seen - before;
        },
        teardown: () => bus.close(),
      };
    },
  };
}

function busy(name, code, publishBatch) {
  return {
    name,
    code,
    setup({ batches }) {
      const bus = new Bus({ maxQueue: Infinity });
      let seen = 0;
      bus.subscribe('jobs', async (p) => { seen += p.n; });
      const items = Array.from({ length: BATCH }, () => payload);
      return {
        work: batches * BATCH,
        async run() {
          const before = seen;
          for (let i = 0; i < batches; i++) {
            if (publishBatch) bus.publishBatch('jobs', items);
            else for (let j = 0; j < BATCH; j++) bus.publish('jobs', items[j]);
            await bus.drain();
          }
          return seen - before;
        },
        teardown: () => bus.close(),
      };
    },
  };
}

export const batchIdle = {
  id: 'batch',
  number: '5a',
  title: '`publishBatch` of 1,000 against 1,000 single publishes, idle synchronous subscriber',
  unit: 'msg/s',
  sizes: { full: { batches: 1_000 }, small: { batches: 20 } },
  contenders: [
    idle('publishBatch', "bus.publishBatch('orders.created', payloads)", true),
    idle('publish ×1000', "bus.publish('orders.created', payload) ×1000", false),
  ],
};

export const batchBusy = {
  id: 'batch-busy',
  number: '5b',
  title: '`publishBatch` of 1,000 against 1,000 single publishes, busy asynchronous subscriber',
  unit: 'msg/s',
  note: 'An async handler at concurrency 1 keeps the subscription busy, so messages queue in the ' +
    'WebAssembly core; each batch is followed by `await bus.drain()`.',
  sizes: { full: { batches: 50 }, small: { batches: 2 } },
  contenders: [
    busy('publishBatch + drain', "bus.publishBatch('jobs', payloads); await bus.drain()", true),
    busy('publish ×1000 + drain', "bus.publish('jobs', payload) ×1000; await bus.drain()", false),
  ],
};
