// Node, ESM (pkg/index.node.mjs): the CommonJS entry's instance, so that `import` and `require`
// give the very same classes.

import api from './index.node.cjs';

export const {
  Bus, Batcher, IdempotenceFilter, RequestTracker, ManualClock, EdgebusError, Subscription, shardOf, matches, checkTopic,
  checkPattern, checkReplay, ShardedBus, serveShard, connect, init, initSync,
} = api;
export default api;
