// Scenario 4: dedupe. A stream of ids, half of them repeats of ids still inside the window, checked
// by edgebus's exact IdempotenceFilter, by lru-cache used as a seen-id window (`has`, then `set`) and
// by a plain `Set` with a ring buffer of the window's ids, all evicting the oldest recorded id first.
// 4b: the same stream as publishes with `{ id }` on a Bus with a dedupe window, against lru-cache in
// front of EventEmitter3.
import { Bus, IdempotenceFilter } from 'edgebus';
import EventEmitter from 'eventemitter3';
import { LRUCache } from 'lru-cache';
import { payload, rng } from './common.js';

/** `count` ids: every other one new, the rest repeats of one of the last `window / 2` new ids. */
function idStream(count, window) {
  const r = rng(3);
  const ids = new Array(count);
  let next = 0;
  for (let i = 0; i < count; i++) {
    if (i % 2 === 0 || next === 0) {
      ids[i] = `id-${next++}`;
    } else {
      const back = Math.floor(r() * Math.min(next, window / 2));
      ids[i] = `id-${next - 1 - back}`;
    }
  }
  return ids;
}

// Made once for the contenders of a scenario, and forgotten when it ends (`done`): a million id
// strings held for the rest of a run lengthen every later scenario's garbage collections.
const streams = new Map();
function stream(ids, window) {
  const key = `${ids}/${window}`;
  if (!streams.has(key)) streams.set(key, idStream(ids, window));
  return streams.get(key);
}
const forgetStreams = () => streams.clear();

export const dedupe = {
  id: 'dedupe',
  number: '4',
  title: 'Dedupe: ids with half repeats, window 100,000 ids',
  unit: 'checks/s',
  note: 'Each call checks the whole stream on a new, empty window (1,000,000 ids at full size); ' +
    'the count checked against every contender is the number of duplicates found (half the stream).',
  rounds: { full: 5 },
  sizes: { full: { ids: 1_000_000, window: 100_000 }, small: { ids: 20_000, window: 2_000 } },
  done: forgetStreams,
  contenders: [
    {
      name: 'edgebus',
      code: 'new IdempotenceFilter({ maxIds }).check(id)',
      setup({ ids, window }) {
        const list = stream(ids, window);
        return {
          work: list.length,
          run() {
            const filter = new IdempotenceFilter({ maxIds: window });
            let duplicates = 0;
            for (let i = 0; i < list.length; i++) if (!filter.check(list[i])) duplicates++;
            return duplicates;
          },
        };
      },
    },
    {
      name: 'lru-cache',
      code: 'new LRUCache({ max }); cache.has(id) || cache.set(id, true)',
      setup({ ids, window }) {
        const list = stream(ids, window);
        return {
          work: list.length,
          run() {
            const seen = new LRUCache({ max: window });
            let duplicates = 0;
            for (let i = 0; i < list.length; i++) {
              const id = list[i];
              if (seen.has(id)) duplicates++;
              else seen.set(id, true);
            }
            return duplicates;
          },
        };
      },
    },
    {
      name: 'Set + ring',
      code: 'seen.has(id) || (seen.delete(ring[i]), ring[i] = id, seen.add(id))',
      setup({ ids, window }) {
        const list = stream(ids, window);
        return {
          work: list.length,
          run() {
            const seen = new Set();
            const ring = new Array(window);
            let next = 0;
            let duplicates = 0;
            for (let i = 0; i < list.length; i++) {
              const id = list[i];
              if (seen.has(id)) {
                duplicates++;
                continue;
              }
              if (seen.size === window) seen.delete(ring[next]);
              ring[next] = id;
              next = next + 1 === window ? 0 : next + 1;
              seen.add(id);
            }
            return duplicates;
          },
        };
      },
    },
  ],
};

export const dedupePublish = {
  id: 'dedupe-publish',
  number: '4b',
  title: 'Dedupe on publish: the same ids published with `{ id }`, window 100,000 ids',
  unit: 'msg/s',
  note: 'Each call publishes the whole stream to one subscriber through a new, empty window; the ' +
    'count checked is the number of messages delivered (the distinct ids, half the stream).',
  rounds: { full: 5 },
  sizes: { full: { ids: 1_000_000, window: 100_000 }, small: { ids: 20_000, window: 2_000 } },
  done: forgetStreams,
  contenders: [
    {
      name: 'edgebus',
      code: "new Bus({ dedupe: { maxIds } }); bus.publish('orders.created', payload, { id })",
      setup({ ids, window }) {
        const list = stream(ids, window);
        return {
          work: list.length,
          run() {
            const bus = new Bus({ dedupe: { maxIds: window } });
            let seen = 0;
            bus.subscribe('orders.created', (p) => { seen += p.n; });
            for (let i = 0; i < list.length; i++) bus.publish('orders.created', payload, { id: list[i] });
            bus.close();
            return seen;
          },
        };
      },
    },
    {
      name: 'lru-cache + EventEmitter3',
      code: "cache.has(id) || (cache.set(id, true), ee.emit('orders.created', payload))",
      setup({ ids, window }) {
        const list = stream(ids, window);
        return {
          work: list.length,
          run() {
            const cache = new LRUCache({ max: window });
            const ee = new EventEmitter();
            let seen = 0;
            ee.on('orders.created', (p) => { seen += p.n; });
            for (let i = 0; i < list.length; i++) {
              const id = list[i];
              if (cache.has(id)) continue;
              cache.set(id, true);
              ee.emit('orders.created', payload);
            }
            return seen;
          },
        };
      },
    },
  ],
};
