// The ShardedBus handlers module of scenario 8: benches/sharding/handlers.mjs's handler (the same
// work function), which also counts the messages it handled in shared memory, so the page can check
// that every contender did the same work. Bundled into the workers by sharding-shard.js.
import '../../../benches/sharding/work.js';

let sink = 0;

export default function setup(bus, { data }) {
  const handled = new Int32Array(data.handled);
  bus.subscribe('work', (p) => {
    sink ^= globalThis.benchWork(p.iters);
    Atomics.add(handled, 0, 1);
  });
}

export function result() { return sink; }
