import { Bus } from 'edgebus';

const bus = new Bus({ dedupe: { maxIds: 10_000, maxAgeMs: 60_000 } });

bus.subscribe('orders.*.created', (order, msg) => {
  console.log(`${msg.topic}: order ${order.id}`);
});

// Async handler: up to 4 at once, but messages with the same key one at a time, in order.
bus.subscribe('orders.>', async () => {
  await new Promise((r) => setTimeout(r, 10));
}, { concurrency: 4, maxQueue: 1000, overflow: 'wait' });

bus.publish('orders.eu.created', { id: 1 }, { id: 'order-1', key: 'customer-7' });
bus.publish('orders.eu.created', { id: 1 }, { id: 'order-1' }); // duplicate id: dropped, counted
await bus.publishAsync('orders.eu.shipped', { id: 1 });          // waits for room if a queue is full

await bus.drain();
console.log(bus.stats().delivered); // 3: two for order 1, one for the shipment
await bus.close();
