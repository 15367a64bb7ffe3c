// The benchmark's CPU-bound handler body, shared as-is by every contender: loaded as an ES module
// (ShardedBus handlers, the page), by importScripts (workerpool's browser worker) and by require
// (workerpool's Node worker). `iters` is calibrated so that one call takes about 50 µs.
function benchWork(iters) {
  let x = 0x9e3779b9 ^ iters;
  for (let i = 0; i < iters; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
  }
  return x;
}
globalThis.benchWork = benchWork;
if (typeof module === 'object' && module !== null && typeof module.exports === 'object') module.exports = benchWork;
