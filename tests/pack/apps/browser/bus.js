// A page with a Bus: wildcard delivery, a duplicate dropped, an async handler drained. The result
// (or the error) lands in document.body.dataset for the runner to read.
import { Bus, EdgebusError } from 'edgebus';
import { start } from './start.js';

try {
  await start();
  const bus = new Bus({ dedupe: true });
  const got = [];
  bus.subscribe('orders.*.created', (order) => got.push(`created ${order.id}`));
  bus.subscribe('orders.>', async (order, msg) => {
    await new Promise((r) => setTimeout(r, 1));
    got.push(`${msg.topic} ${order.id}`);
  });
  bus.publish('orders.eu.created', { id: 1 }, { id: 'o-1' });
  bus.publish('orders.eu.created', { id: 1 }, { id: 'o-1' });
  await bus.publishAsync('orders.eu.shipped', { id: 1 });
  await bus.drain();
  let code;
  try {
    bus.publish('orders..bad', {});
  } catch (e) {
    code = e instanceof EdgebusError ? e.code : String(e);
  }
  const { delivered, duplicates } = bus.stats();
  await bus.close();
  document.body.dataset.result = JSON.stringify({ got, delivered, duplicates, code });
} catch (e) {
  document.body.dataset.error = String(e?.stack ?? e);
}
