// Scenario 4: dedupe. A stream of ids, half of them repeats of ids still inside the window, checked
// by edgebus's exact IdempotenceFilter and by lru-cache used as a seen-id window (`has`, then `set`),
// both evicting the oldest recorded id first.
import { IdempotenceFilter } from 'edgebus';
import { LRUCache } from 'lru-cache';
import { rng } from './common.js';

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

const streams = new Map();
function stream(ids, window) {
  const key = `${ids}/${window}`;
  if (!streams.has(key)) streams.set(key, idStream(ids, window));
  return streams.get(key);
}

export const dedupe = {
  id: 'dedupe',
  number: '4',
  title: 'Dedupe: ids with half repeats, window 100,000 ids',
  unit: 'checks/s',
  note: 'Each call checks the whole stream on a new, empty window (1,000,000 ids at full size); ' +
    'the count checked against every contender is the number of duplicates found (half the stream).',
  rounds: { full: 5 },
  sizes: { full: { ids: 1_000_000, window: 100_000 }, small: { ids: 20_000, window: 2_000 } },
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
  ],
};
