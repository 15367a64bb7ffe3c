// The scenario registry of the benchmark page, in the order of ../shared/BENCH.md. Adding a
// scenario is adding its module to portable.js (any runtime) or here (browser only).
//
// A scenario: { id, number, title, unit | metrics, sizes: { full, small }, contenders, note?,
// rounds?, runFirst?, unavailable?(), details? }. A contender: { name, code, setup(size) → { run, work?,
// teardown? } }. For throughput, `run()` does `work` units and returns a count every contender must
// match (deliveries, duplicates), which proves they did the same work; with `metrics`, `run()`
// returns the measured values by metric key.
import { afterSharding, beforeSharding } from './portable.js';
import { sharding } from './sharding.js';

export const scenarios = [...beforeSharding, sharding, ...afterSharding];
