// A TypeScript consumer of the package: named and default imports, handlers that return values
// (as arrow functions often do), the error class; compiled under the case's module settings, then
// run by Node. The same file is ESM or CommonJS depending on those settings.
import edgebus, { Bus, EdgebusError, init } from 'edgebus';
import type { Message, Subscription } from 'edgebus';

declare const console: { log(...args: unknown[]): void; error(...args: unknown[]): void };

interface Order {
  id: number;
}

async function main(): Promise<string> {
  await init();
  const bus = new Bus();
  const got: number[] = [];
  const sub: Subscription = bus.subscribe<Order>('orders.*', (order) => got.push(order.id));
  bus.subscribe<Order>('orders.>', (order, msg: Message<Order>) => got.push(order.id * 10 + msg.attempt));
  bus.subscribe<Order>('orders.>', async (order) => order.id);
  bus.publish<Order>('orders.eu', { id: 1 });
  let code = '';
  try {
    bus.publish('orders..eu', { id: 2 });
  } catch (e) {
    if (e instanceof EdgebusError) code = e.code;
  }
  await bus.drain();
  const viaDefault = new edgebus.Bus();
  await viaDefault.close();
  await bus.close();
  return JSON.stringify({ got, code, active: sub.active, sameClass: edgebus.Bus === Bus });
}

main().then((s) => console.log(s), (e: unknown) => {
  console.error(e);
  throw e;
});
