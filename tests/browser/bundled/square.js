// Imported by the handlers: the app's bundler must bundle it into the shard worker.
export function square(n) {
  return n * n;
}
