// Compiled with `tsc --noEmit --strict` against the built package's declarations: the public API
// must type-check as its users write it, and misuse must not.
import {
  Batcher, Bus, EdgebusError, IdempotenceFilter, ManualClock, ShardedBus, checkPattern, checkTopic, connect, init,
} from 'edgebus';
import type {
  BusStats, CloseSummary, DeadLetter, ErrorEvent, JobStatus, Message, OutboxEntry, OutboxStore, RequestStats, ShardSetup, ShardedBusStats,
  Subscription,
} from 'edgebus';

interface Order {
  id: number;
  region: string;
}

declare const console: { log(...args: unknown[]): void };
// The DOM's and Node's AbortController, as far as these tests use it (the lib is es2022 only).
declare class AbortController {
  readonly signal: {
    readonly aborted: boolean;
    readonly reason?: unknown;
    addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
    removeEventListener(type: 'abort', listener: () => void): void;
  };
  abort(reason?: unknown): void;
}

async function main(): Promise<void> {
  await init();
  const clock = new ManualClock(0);
  const bus = new Bus({
    dedupe: { maxIds: 1000, maxAgeMs: 60_000 },
    maxQueue: 100,
    overflow: 'dropOldest',
    clock,
    onError: (error: unknown, message: Message | Message[], sub: Subscription) => {
      console.log(error, message, sub.pattern);
    },
  });
  const sub: Subscription = bus.subscribe<Order>('orders.*.created', (order, msg) => {
    const region: string = order.region;
    const topic: string = msg.topic;
    void region;
    void topic;
  });
  bus.subscribe<Order>('orders.>', async (order) => {
    await Promise.resolve(order.id);
  }, { concurrency: 4, timeoutMs: 1000 });
  bus.subscribe<Order>('orders.>', (batch) => {
    const ids: number[] = batch.map((m) => m.payload.id);
    void ids;
  }, { batch: { maxSize: 10, maxWaitMs: 5 } });
  bus.subscribe<ErrorEvent>('$errors', (e) => console.log(e.subscription.pattern));
  const accepted: boolean = bus.publish<Order>('orders.eu.created', { id: 1, region: 'eu' }, { id: 'o-1', key: 'eu' });
  const n: number = bus.publishBatch('orders.eu.created', [{ id: 2, region: 'eu' }], { ids: ['o-2'] });
  const waited: boolean = await bus.publishAsync('orders.eu.created', { id: 3, region: 'eu' });
  const stats: BusStats = bus.stats();
  const p99: number = stats.latency.p99Ms;
  const subDelivered: number | undefined = sub.stats()?.delivered;
  void [accepted, n, waited, p99, subDelivered];
  sub.unsubscribe();
  await bus.drain();
  await bus.close();

  // Work queues.
  const jobs = new Bus({ clock, retention: { maxIds: 100, maxAgeMs: 60_000 } });
  const worker: Subscription = jobs.subscribe<Order>('jobs.>', async (order, msg) => {
    const attempt: number = msg.attempt;
    void [order.id, attempt];
  }, { group: 'billing', concurrency: 2, maxAttempts: 3, backoff: { initialMs: 100, maxMs: 1000 }, ackTimeoutMs: 5000 });
  const group: string | undefined = worker.group;
  jobs.subscribe<Order>('jobs.>', (claimed) => {
    const ids: number[] = claimed.map((m) => m.payload.id);
    void ids;
  }, { group: 'billing', batch: { maxSize: 10, maxWaitMs: 5 } });
  jobs.subscribe<DeadLetter<Order>>('$dead.billing', (letter) => {
    const why: string = letter.error.message;
    void [why, letter.attempts, letter.message.payload.id];
  });
  jobs.publish<Order>('jobs.eu', { id: 4, region: 'eu' }, { id: 'j-4', priority: 5, notBefore: clock.now() + 1000 });
  jobs.publishBatch<Order>('jobs.eu', [{ id: 5, region: 'eu' }], { priority: 1 });
  const status: JobStatus | undefined = jobs.status('j-4');
  const state: string | undefined = status?.state;
  const depth: number = jobs.stats().groups[0]?.depth ?? 0;
  const summary: CloseSummary = await jobs.close();
  void [group, state, depth, summary.remaining.length];
  // @ts-expect-error a group name is a string
  jobs.subscribe('jobs.>', () => {}, { group: 7 });
  // @ts-expect-error batch claim takes maxSize and maxWaitMs only
  jobs.subscribe('jobs.>', (claimed: Message[]) => void claimed, { group: 'g', batch: { maxBytes: 10 } });
  // @ts-expect-error priorities are numbers
  jobs.publish('jobs.eu', 1, { priority: 'high' });
  jobs.publish<Order>('jobs.eu', { id: 6, region: 'eu' }, { id: 'j-6', key: 'c-1', attempts: 2 });
  // @ts-expect-error attempts is a number
  jobs.publish('jobs.eu', 1, { attempts: '2' });

  const filter = new IdempotenceFilter({ maxIds: 10 });
  const first: boolean = filter.check('a');
  void first;
  const batcher = new Batcher<string>((items) => console.log(items.join()), { maxSize: 2 });
  batcher.add('x');
  await batcher.close();

  try {
    bus.publish('a..b', 1);
  } catch (e) {
    if (e instanceof EdgebusError && e.code === 'INVALID_TOPIC') console.log(e.message);
  }

  // @ts-expect-error an unknown overflow policy
  new Bus({ overflow: 'dropAll' });
  // @ts-expect-error handlers are functions
  bus.subscribe('a', 42);
  // @ts-expect-error ids are strings
  bus.publish('a', 1, { id: 7 });

  const remote = connect('https://edge.example.com', { token: async () => 'token', overflow: 'reject', reconnect: { initialMs: 50 } });
  const rs = remote.subscribe<{ n: number }>('orders.*', (order, msg) => console.log(order.n, msg.attempt), { group: 'g', ackTimeoutMs: 1000 });
  await rs.ready;
  const remoteAccepted: boolean = await remote.publishAsync('orders.eu', { n: 1 }, { id: 'o-1' });
  const { remaining } = await remote.close();
  void [remoteAccepted, remaining[0]?.id, remote.stats().reconnects];
  connect('https://edge.example.com', {
    token: 't',
    onError: (error, context) => { if (context?.op === 'ack' || context?.op === 'nack') console.log(error, context.subscription?.pattern); },
  });
  // @ts-expect-error a token is required
  connect('https://edge.example.com', {});
  const left: OutboxEntry[] = [];
  const store: OutboxStore = {
    load: () => left.slice(),
    put: async (entry) => { left.push(entry); },
    delete: (ids) => { left.splice(0, left.length, ...left.filter((e) => !ids.includes(e.id))); },
  };
  const kept = connect('https://edge.example.com', { token: 't', persist: store, onError: (e, ctx) => console.log(e, ctx?.outbox) });
  connect('https://edge.example.com', { token: 't', persist: 'indexeddb', persistName: 'my-app' });
  const counted: number = kept.stats().restored + kept.stats().persistFailed;
  void [counted, await kept.close({ discard: true })];
  // @ts-expect-error a store needs delete
  connect('https://edge.example.com', { token: 't', persist: { load: () => [], put: () => {} } });
  // @ts-expect-error 'disk' is not an outbox
  connect('https://edge.example.com', { token: 't', persist: 'disk' });
  // @ts-expect-error remote subscriptions take no concurrency
  remote.subscribe('a', () => {}, { concurrency: 2 });
  // Retained values and replay at the edge; recovery after reconnects is on by default.
  const watched = connect('https://edge.example.com', { token: 't', recover: true, onError: (_e, context) => console.log(context?.gap?.toSeq) });
  watched.publish('rooms.lobby.topic', 'Welcome!', { retain: true });
  await watched.publishAsync('rooms.lobby.topic', undefined, { retain: true });
  watched.subscribe('rooms.*.topic', (text, m) => console.log(text, m.seq), { replay: 'retained', onGap: (gap) => console.log(gap.topic, gap.fromSeq, gap.toSeq) });
  watched.subscribe('rooms.>', () => {}, { replay: { sinceSeq: { 'rooms.lobby.topic': 3 }, sinceMs: Date.now() - 60_000 } });
  const gapsHeard: number = watched.stats().gaps;
  void gapsHeard;
  // @ts-expect-error replay is 'retained' or an object
  watched.subscribe('a', () => {}, { replay: 'everything' });
  // @ts-expect-error retain is a boolean
  watched.publish('a', 1, { retain: 'yes' });
}

async function sharded(): Promise<void> {
  const bus = new ShardedBus<{ scale: number }>({
    handlers: 'file:///app/handlers.mjs',
    workers: 2,
    maxInFlight: 256,
    maxQueue: 10_000,
    overflow: 'wait',
    dedupe: true,
    data: { scale: 2 },
    onError: (error, message, info) => console.log(error, message.topic, info.shard, info.subscription?.pattern),
  });
  await bus.ready;
  bus.subscribe('$errors', (e) => console.log(e.shard, e.message.id));
  const ok: boolean = bus.publish('images.resize', new ArrayBuffer(8), { key: 'user-1', transfer: [] });
  const n: number = bus.publishBatch('images.resize', [1, 2], { key: 'user-1' });
  const waited: boolean = await bus.publishAsync('images.resize', { w: 1 }, { id: 'i-1' });
  await bus.drain();
  const stats: ShardedBusStats = bus.stats();
  const p99: number = stats.perShard[0].latency.p99Ms;
  const restarts: number = stats.perShard[0].restarts;
  void [ok, n, waited, p99, restarts];
  await bus.close();
  const abandoned: number = bus.terminate();
  void abandoned;

  const setup: ShardSetup<{ scale: number }> = (worker, { shard, data }) => {
    worker.subscribe<{ w: number }>('images.*', (img, msg) => console.log(img.w * data.scale, msg.key, shard));
  };
  void setup;

  const squared: number = await bus.request<number, number>('math.square', 3, { key: 'k', timeoutMs: 100 });
  const pendingRequests: number = bus.stats().requests.pending;
  void [squared, pendingRequests];
  // @ts-expect-error handlers is required
  new ShardedBus({ workers: 2 });
  // @ts-expect-error transfer takes ArrayBuffers
  bus.publish('a', 1, { transfer: [1] });
}

function topics(input: string): boolean {
  checkTopic(input);
  checkPattern('orders.>');
  // @ts-expect-error checkTopic answers by throwing, not with a value
  const ok: boolean = checkTopic(input);
  return ok;
}

void main;
void sharded;
void topics;

async function requests(bus: Bus): Promise<void> {
  bus.subscribe<number>('math.double', (n) => n * 2);
  bus.subscribe<number>('math.later', (n, m) => {
    const taken: boolean | undefined = m.reply?.(n);
    void taken;
  });
  const doubled: number = await bus.request<number, number>('math.double', 21, { timeoutMs: 500, key: 'k', headers: { trace: 't' } });
  const ac = new AbortController();
  await bus.request('math.later', 1, { signal: ac.signal, timeoutMs: Infinity });
  for await (const quote of bus.requestMany<number>('quotes', 'EURUSD', { max: 3, timeoutMs: 200 })) {
    const q: number = quote;
    void q;
  }
  const r: RequestStats = bus.stats().requests;
  const n: number = r.sent + r.replies + r.timedOut + r.noResponders + r.late + r.pending;
  void [doubled, n];
  const first: Message<number> = await bus.once<number>('math.*', { timeoutMs: 100, filter: (m) => m.payload > 1, signal: ac.signal });
  const stream = bus.stream<number>('math.*', { maxQueue: 10, overflow: 'wait', signal: ac.signal });
  for await (const m of stream) {
    const n: number = m.payload;
    void n;
    stream.subscription.unsubscribe();
  }
  bus.subscribe('x', () => {}, { signal: ac.signal });
  await bus.publishAsync('x', 1, { signal: ac.signal });
  await bus.drain({ signal: ac.signal });
  void first;
  // @ts-expect-error a stream's payload type is the one given
  for await (const m of bus.stream<number>('x')) { const s: string = m.payload; void s; }
  // @ts-expect-error max belongs to requestMany
  await bus.request('math.double', 1, { max: 2 });
  // @ts-expect-error a signal is an AbortSignal
  await bus.request('math.double', 1, { signal: true });
}
void requests;
