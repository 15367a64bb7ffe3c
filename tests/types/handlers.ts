// Handlers as users write them: whatever a handler returns is ignored unless it is a promise, so
// expression-bodied arrows that return a value must type-check, in every place a handler is taken.
// Handlers of the wrong shape must not.
import { Batcher, Bus, ShardedBus, connect } from 'edgebus';
import type { BatchHandler, Handler, Message, ShardSetup } from 'edgebus';

declare const console: { log(...args: unknown[]): void };

interface Job {
  image: number;
}

export async function returningHandlers(): Promise<number[]> {
  const bus = new Bus();
  const seen: number[] = [];
  bus.subscribe<number>('numbers.*', (n) => seen.push(n));
  bus.subscribe<number>('numbers.>', (n, msg) => msg.topic.length + n);
  bus.subscribe<number>('numbers.>', async (n) => n * 2);
  bus.subscribe<number>('numbers.>', (n) => (n > 0 ? Promise.resolve('positive') : 'not'));
  bus.subscribe<number>('numbers.>', (batch) => batch.map((m) => m.payload), { batch: { maxSize: 10, maxWaitMs: 5 } });
  bus.subscribe<number>('numbers.>', (n) => n, { group: 'workers' });
  const typed: Handler<number> = (n) => seen.push(n);
  const typedBatch: BatchHandler<number> = (batch) => batch.length;
  bus.subscribe('numbers.>', typed);
  bus.subscribe('numbers.>', typedBatch, { batch: { maxSize: 2 } });

  const batcher = new Batcher<string>((items) => items.length);
  await batcher.close();

  const remote = connect('https://edge.example.com', { token: 't' });
  remote.subscribe<number>('numbers.*', (n) => seen.push(n));
  await remote.close();

  bus.publish('numbers.one', 1);
  await bus.close();
  return seen;
}

// The README's ShardedBus handlers module (examples/sharded-handlers.mjs), typed: its handler
// returns the result of its work.
export const readmeSetup: ShardSetup = (bus) => {
  bus.subscribe<Job>('thumbnails.*', (job) => {
    if (job.image === 0) throw new Error('image 0 cannot be decoded');
    let x = job.image;
    for (let i = 0; i < 100_000; i++) x = (x * 31 + i) % 1_000_003; // stands for real work
    return x;
  });
};

// A setup may be async, and may return what it subscribed.
export const asyncSetup: ShardSetup<{ prefix: string }> = async (bus, { data }) => {
  await Promise.resolve();
  return bus.subscribe<Job>(`${data.prefix}.*`, (job, msg: Message<Job>) => job.image + msg.attempt);
};

export function misuse(bus: Bus, sharded: ShardedBus): void {
  // @ts-expect-error the payload type is number, not string
  bus.subscribe<number>('a', (text: string) => text.length);
  // @ts-expect-error a batch subscription's handler receives an array of messages
  bus.subscribe<number>('a', (n: number) => n, { batch: { maxSize: 2 } });
  // @ts-expect-error a plain subscription's handler receives the payload, not an array
  bus.subscribe<number>('a', (batch: Message<number>[]) => batch.length);
  // @ts-expect-error a handler takes at most the payload and the message
  bus.subscribe<number>('a', (n: number, msg: Message<number>, extra: string) => [n, msg, extra]);
  // @ts-expect-error a Batcher's handler receives the items as an array
  new Batcher<string>((item: string) => item.length);
  // @ts-expect-error a setup receives the worker's bus first, not a number
  const wrongSetup: ShardSetup = (n: number) => n;
  // @ts-expect-error main-thread subscriptions of a ShardedBus receive error events
  sharded.subscribe('$errors', (e: number) => e);
  void wrongSetup;
  console.log('misuse is rejected at compile time');
}
