import { Bus } from 'edgebus';

const bus = new Bus();

// once: the first matching message, then it unsubscribes.
setTimeout(() => bus.publish('orders.eu.created', { id: 7, total: 120 }), 5);
const order = await bus.once('orders.*.created', { filter: (m) => m.payload.total > 100, timeoutMs: 1000 });
console.log(`first big order: ${order.payload.id} on ${order.topic}`);

// stream: for-await over a subscription whose queue (here 2 messages) bounds what waits.
const ticks = bus.stream('ticks', { maxQueue: 2 });
for (let i = 1; i <= 5; i++) bus.publish('ticks', i);
const seen = [];
for await (const m of ticks) {
  seen.push(m.payload);
  if (seen.length === 3) break; // leaving the loop unsubscribes
}
console.log(`ticks seen: ${seen.join(', ')}; dropped: ${bus.stats().dropped}`);

// AbortSignal: an aborted wait settles with ABORTED and leaves nothing behind.
const controller = new AbortController();
const waiting = bus.once('never.happens', { signal: controller.signal });
controller.abort();
await waiting.catch((e) => console.log(e.code));
console.log(`subscriptions left: ${bus.stats().subscriptions}`);
