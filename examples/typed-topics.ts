import { Bus, type Req } from 'edgebus';

interface Order {
  id: number;
  region: string;
}
interface User {
  name: string;
}

const bus = new Bus<{
  'orders.{region}.created': Order;
  'users.signed-up': User;
  'math.double': Req<number, number>; // a request: its payload, then its reply
}>();

bus.subscribe('orders.*.created', (order) => console.log(order.region)); // order: Order, through `*`
bus.subscribe('math.double', (n) => n * 2);
bus.publish('orders.eu.created', { id: 1, region: 'eu' }); // checked: an Order
// @ts-expect-error: not a topic of the map
bus.publish('orders.eu.shipped', { id: 1, region: 'eu' });
const doubled: number = await bus.request('math.double', 21);
console.log(doubled);
