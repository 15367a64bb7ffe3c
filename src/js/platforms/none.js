// ShardedBus where there are no threads: the adapter of the workerd and bundler entries.

/** Runtimes without threads (Cloudflare Workers; the bundler entry): a clear error instead. */
export function noThreadsPlatform(reason) {
  return { unsupported: reason };
}
