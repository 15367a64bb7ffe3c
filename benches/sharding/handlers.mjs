// ShardedBus handlers of the sharding benchmark: the same work function as every other contender.
import './work.js';

let sink = 0;

export default function setup(bus) {
  bus.subscribe('work', (p) => { sink ^= globalThis.benchWork(p.iters); });
  // The request benchmark (requests.mjs): the result is the reply.
  bus.subscribe('work.reply', (p) => globalThis.benchWork(p.iters));
}

export function result() { return sink; }
