// The handlers module of examples/sharded.mjs: every worker imports it and calls its default export
// with a bus to subscribe on (Bus#subscribe, same options) and { shard, workers, data }.
export default function setup(bus) {
  bus.subscribe('thumbnails.*', (job) => {
    if (job.image === 0) throw new Error('image 0 cannot be decoded');
    let x = job.image;
    for (let i = 0; i < 100_000; i++) x = (x * 31 + i) % 1_000_003; // stands for real work
    return x;
  });
}
