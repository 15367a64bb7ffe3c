// A page with a ShardedBus whose workers are the page's own module (shard.js, bundled by the
// toolchain under test), started by the `worker` factory. Handlers report what they ran on a
// BroadcastChannel; the result (or the error) lands in document.body.dataset.
import { ShardedBus } from 'edgebus';
import { start } from './start.js';

const COUNT = 12;

try {
  await start();
  const channel = new BroadcastChannel('edgebus-pack');
  const seen = [];
  const all = new Promise((resolve) => {
    channel.onmessage = (e) => {
      seen.push(e.data);
      if (seen.length === COUNT) resolve();
    };
  });
  const bus = new ShardedBus({
    workers: 2,
    worker: () => new Worker(new URL('./shard.js', import.meta.url), { type: 'module' }),
    data: { channel: 'edgebus-pack' },
  });
  await bus.ready;
  for (let i = 0; i < COUNT; i++) {
    await bus.publishAsync('jobs.resize', { n: i }, { key: `user-${i % 3}` });
  }
  await bus.drain();
  await Promise.race([all, new Promise((_, reject) => setTimeout(() => reject(new Error(`${seen.length} of ${COUNT} reports`)), 10_000))]);
  const { done, failed, perShard } = bus.stats();
  await bus.close();
  channel.close();
  document.body.dataset.result = JSON.stringify({ seen, done, failed, workers: perShard.length });
} catch (e) {
  document.body.dataset.error = String(e?.stack ?? e);
}
