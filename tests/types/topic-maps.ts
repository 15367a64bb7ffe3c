// Typed topic maps: payloads inferred through `*` and `>`, publishes checked by literal topic,
// request replies typed; misuse is a compile error.
import { Bus } from 'edgebus';
import type { Message, Req } from 'edgebus';

interface Order {
  id: number;
  region: string;
}
interface User {
  name: string;
}

type Topics = {
  'orders.{region}.created': Order;
  'orders.{region}.cancelled': { id: number; reason: string };
  'users.signed-up': User;
  'math.double': Req<number, number>;
};

export async function typed(): Promise<void> {
  const bus = new Bus<Topics>();

  bus.subscribe('orders.*.created', (o) => {
    const id: number = o.id;
    const region: string = o.region;
    void [id, region];
  });
  bus.subscribe('users.signed-up', (u, m: Message<User>) => {
    const name: string = u.name;
    void [name, m.topic];
  });
  // `>` reaches both order entries: the payload is their union.
  bus.subscribe('orders.>', (o) => {
    const id: number = o.id;
    void id;
    // @ts-expect-error `reason` is only on cancelled orders
    void o.reason;
  });
  bus.subscribe('math.double', (n) => n * 2);

  bus.publish('orders.eu.created', { id: 1, region: 'eu' });
  // @ts-expect-error the payload of orders.{region}.created is an Order
  bus.publish('orders.eu.created', { id: 'x', region: 'eu' });
  // @ts-expect-error a topic the map does not have
  bus.publish('orders.eu.shipped', { id: 1 });
  // @ts-expect-error one token for {region}, not two
  bus.publish('orders.eu.west.created', { id: 1, region: 'eu' });
  bus.publishBatch('users.signed-up', [{ name: 'ann' }, { name: 'bo' }]);
  // @ts-expect-error every payload of a batch is checked
  bus.publishBatch('users.signed-up', [{ name: 'ann' }, { nom: 'bo' }]);
  await bus.publishAsync('users.signed-up', { name: 'cy' });

  const doubled: number = await bus.request('math.double', 21);
  // @ts-expect-error a request's payload is its entry's
  await bus.request('math.double', '21');
  // @ts-expect-error the reply is a number
  const wrong: string = await bus.request('math.double', 21);
  for await (const r of bus.requestMany('math.double', 2)) {
    const n: number = r;
    void n;
  }
  const first = await bus.once('orders.*.created');
  const region: string = first.payload.region;
  for await (const m of bus.stream('users.*')) {
    const name: string = m.payload.name;
    void name;
  }
  // A topic held in a string variable is not checked.
  const anyTopic: string = 'orders.eu.created';
  bus.publish(anyTopic, 'anything');
  void [doubled, wrong, region];
}

export function untyped(): void {
  // Without a map every call declares its own types, as before.
  const bus = new Bus();
  bus.subscribe<number>('a', (n) => n + 1);
  bus.subscribe('a', (n: number) => n + 1);
  bus.publish('anything', { x: 1 });
  bus.publish<number>('a', 1);
  void bus.request<number, number>('a', 1);
}

export function retainedAndReplay(): void {
  const bus = new Bus<{ 'rooms.{id}.temp': number; 'chat.{room}': { text: string } }>({
    retain: { maxTopics: 100 },
    history: { topics: ['chat.*'], maxMessages: 50, maxAgeMs: 120_000 },
  });
  bus.publish('rooms.a.temp', 21, { retain: true });
  bus.subscribe('rooms.*.temp', (t, m) => {
    const temp: number = t;
    const seq: number | undefined = m.seq;
    void [temp, seq];
  }, { replay: 'retained' });
  bus.subscribe('chat.>', (c) => c.text.length, { replay: { sinceSeq: { 'chat.a': 4 }, sinceMs: 0 }, onGap: (g) => g.toSeq });
  bus.subscribe('chat.*', () => {}, { replay: { last: 10 } });
  // @ts-expect-error: not a replay
  bus.subscribe('chat.*', () => {}, { replay: 'all' });
  // @ts-expect-error: history needs its topics
  void new Bus({ history: { maxMessages: 3 } });
  const temps: number[] = bus.retained('rooms.>').map((m) => m.payload);
  const { messages, gaps } = bus.replay('chat.*', { sinceSeq: 0 });
  const texts: string[] = messages.map((m) => m.payload.text);
  const last: number | undefined = bus.logOf('chat.a')?.lastSeq;
  const evicted: number = bus.stats().logs.evicted;
  bus.restore([{ topic: 'chat.a', seq: 3, payload: { text: 'hi' } }]);
  void [temps, gaps, texts, last, evicted, bus.clearRetained('rooms.a.temp')];
}
