// serveShard(setup): the body of a shard worker the app starts itself (ShardedBus's `worker`
// option). The app's script imports its handlers statically and calls serveShard, so that the app's
// bundler bundles them (and whatever they import) into the worker; the worker then runs as the
// default one does, initialized from the WebAssembly.Module the main thread posts.

import { EdgebusError, fail } from '../shared/errors.js';
import { describe } from '../shared/validate.js';
import { matches } from '../shared/topics.js';
import { Bus } from '../bus/bus.js';
import { shardPlatform } from './sharded-bus.js';
import { runShardWorker } from './worker.js';

let served = false;

/** Runs this worker as a shard of the ShardedBus that started it, with the handlers `setup` subscribes. */
export function serveShard(setup) {
  const platform = shardPlatform();
  if (platform.unsupported !== undefined) fail('UNSUPPORTED', platform.unsupported);
  if (typeof setup !== 'function') {
    fail('INVALID_HANDLER', `serveShard(setup) needs the handlers' setup function (bus, context) that subscribes, got ${describe(setup)}`);
  }
  const port = platform.port();
  if (port === undefined) {
    fail('UNSUPPORTED', 'serveShard(setup) runs inside a shard worker: call it in the script the `worker` option of ShardedBus starts, not on the main thread');
  }
  if (served) fail('INVALID_HANDLER', 'serveShard was already called in this worker: a worker serves one setup function');
  served = true;
  runShardWorker({ initSync: platform.initSync, Bus, EdgebusError, matches }, port, () => setup);
}
