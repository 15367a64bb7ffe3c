// The app's handlers: they import another module of the app, which the bundler bundles with them.
/* global self */
import { square } from './square.js';

export default function setup(bus, { shard, data }) {
  const results = new Int32Array(data.results);
  const seen = new Int32Array(data.seen);
  const gate = new Int32Array(data.gate);
  bus.subscribe('nums.*', (n) => {
    // Message 50 stops its worker once (the bus replaces it through the `worker` option).
    if (n === 50 && Atomics.compareExchange(gate, 0, 0, 1) === 0) self.close();
    Atomics.add(results, n, square(n) + 1);
    Atomics.add(seen, shard, 1);
  });
}
