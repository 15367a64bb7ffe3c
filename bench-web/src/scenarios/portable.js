// The scenarios that run in any runtime (no Web Workers, no bundler-only imports), in the order of
// ../shared/BENCH.md. The page lists them with worker sharding (index.js); the Node benchmark
// (benches/node/run.mjs) runs these.
import { exactTopic, fanOut } from './emitters.js';
import { wildcardsRepeated, wildcardsUnique, wildcardsHierarchical } from './wildcards.js';
import { dedupe, dedupePublish } from './dedupe.js';
import { batchIdle, batchBusy } from './batch.js';
import { asyncLatency } from './async-latency.js';
import { memory, memory100k } from './memory.js';
import { churnCycles, churnWhilePublishing } from './churn.js';

/** Before worker sharding (scenario 8). */
export const beforeSharding = [
  exactTopic,
  fanOut,
  wildcardsRepeated,
  wildcardsUnique,
  wildcardsHierarchical,
  dedupe,
  dedupePublish,
  batchIdle,
  batchBusy,
  asyncLatency,
  memory,
  memory100k,
];

/** After worker sharding. */
export const afterSharding = [churnCycles, churnWhilePublishing];

export const portableScenarios = [...beforeSharding, ...afterSharding];
