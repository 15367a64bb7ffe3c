// The handlers of the worker-sharding demo. Every worker of the ShardedBus runs them (see
// sharding-shard.js): their default export is called with a bus to subscribe on.
// The handler burns CPU for `job.workMs`, then records in shared memory what it handled: per key,
// the sequence numbers in the order they ran, and which worker ran them.

/** Busy work for about `ms` milliseconds, standing for a real CPU-bound handler. */
function spin(ms) {
  const end = performance.now() + ms;
  let x = 0x9e3779b9;
  while (performance.now() < end) {
    for (let i = 0; i < 1000; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
    }
  }
  return x;
}

export default function setup(bus, { shard, data }) {
  const seen = new Int32Array(data.seen);   // per key: how many of its messages ran
  const order = new Int32Array(data.order); // per key, `stride` slots: sequence numbers as they ran
  const owner = new Int32Array(data.owner); // per key: 1 + the worker that ran it (-1: more than one)
  bus.subscribe('jobs.render', (job) => {
    spin(job.workMs);
    const k = job.keyIndex;
    const at = Atomics.load(seen, k);
    if (at < data.stride) Atomics.store(order, k * data.stride + at, job.seq);
    // The count is published after the slot, so the page never reads a slot not yet written.
    Atomics.store(seen, k, at + 1);
    const before = Atomics.compareExchange(owner, k, 0, shard + 1);
    if (before !== 0 && before !== shard + 1) Atomics.store(owner, k, -1);
  });
}
