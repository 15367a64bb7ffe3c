// Imported by the handlers module: proves the handlers' own imports are bundled into the worker.
export function describe(job, msg, shard) {
  return { n: job.n, key: msg.key, shard, by: 'describe' };
}
