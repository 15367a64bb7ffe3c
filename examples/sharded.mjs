import { ShardedBus } from 'edgebus';

// Two workers; each imports the handlers module and subscribes on its own Bus.
const bus = new ShardedBus({
  workers: 2,
  handlers: new URL('./sharded-handlers.mjs', import.meta.url),
  maxInFlight: 256,   // credits: messages sent to a worker and not finished yet
  maxQueue: 10_000,   // then up to this many wait here, per worker
  overflow: 'wait',   // publishAsync waits for room (publish would throw QUEUE_FULL)
  dedupe: true,       // repeated ids are dropped here, before routing
  onError: (error, message, { shard }) => {
    console.log(`${message.id} failed in worker ${shard}: ${error.message}`);
  },
});

// One key's messages go to one worker and are handled in publish order.
for (let i = 1; i <= 6; i++) {
  await bus.publishAsync('thumbnails.create', { image: i }, { id: `img-${i}`, key: `user-${i % 2}` });
}
bus.publish('thumbnails.create', { image: 0 }, { id: 'img-0', key: 'user-0' }); // its handler throws
bus.publish('thumbnails.create', { image: 1 }, { id: 'img-1', key: 'user-1' }); // duplicate id: dropped

await bus.drain();
const { done, failed, duplicates, perShard } = bus.stats();
console.log(`done ${done}, failed ${failed}, duplicates ${duplicates}, workers ${perShard.length}`);

// A request: the worker's handler result comes back (by key, from that key's worker).
const result = await bus.request('thumbnails.create', { image: 7 }, { key: 'user-1', timeoutMs: 10_000 });
console.log(`image 7 → ${result}`);
await bus.close();
