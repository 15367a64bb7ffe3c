// The package's API, the same from every entry point. Each entry (entries/) adds what differs by
// platform: how the WebAssembly core is loaded (`init`, `initSync`) and where ShardedBus gets its
// workers.

export { Bus, Subscription } from './bus/bus.js';
export { Batcher } from './bus/batcher.js';
export { IdempotenceFilter } from './bus/filter.js';
export { RequestTracker } from './bus/tracker.js';
export { ManualClock } from './shared/clock.js';
export { EdgebusError } from './shared/errors.js';
export { checkReplay } from './shared/validate.js';
export { checkPattern, checkTopic, matches, shardOf } from './shared/topics.js';
export { ShardedBus } from './sharded/sharded-bus.js';
export { serveShard } from './sharded/serve.js';
export { connect } from './remote/client.js';
