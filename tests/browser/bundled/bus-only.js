// A bundled app using only Bus: no shard worker may be emitted for it.
/* global window */
import { init, Bus } from 'edgebus';

window.run = async () => {
  await init();
  const bus = new Bus();
  const got = [];
  bus.subscribe('orders.*', (order, msg) => got.push(`${msg.topic}:${order.id}`));
  bus.publish('orders.created', { id: 1 });
  bus.publish('orders.shipped', { id: 1 });
  await bus.drain();
  await bus.close();
  return got;
};
window.appReady = true;
