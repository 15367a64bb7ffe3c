// The scenario registry of the benchmark page, in the order of ../shared/BENCH.md. Adding a
// scenario is adding its module here.
//
// A scenario: { id, number, title, unit | metrics, sizes: { full, small }, contenders, note?,
// rounds?, runFirst?, unavailable?(), details? }. A contender: { name, code, setup(size) → { run, work?,
// teardown? } }. For throughput, `run()` does `work` units and returns a count every contender must
// match (deliveries, duplicates), which proves they did the same work; with `metrics`, `run()`
// returns the measured values by metric key.
import { exactTopic, fanOut } from './emitters.js';
import { wildcardsRepeated, wildcardsUnique, wildcardsHierarchical } from './wildcards.js';
import { dedupe } from './dedupe.js';
import { batchIdle, batchBusy } from './batch.js';
import { asyncLatency } from './async-latency.js';
import { memory } from './memory.js';
import { sharding } from './sharding.js';

export const scenarios = [
  exactTopic,
  fanOut,
  wildcardsRepeated,
  wildcardsUnique,
  wildcardsHierarchical,
  dedupe,
  batchIdle,
  batchBusy,
  asyncLatency,
  memory,
  sharding,
];
