// Type declarations of the `edgebus` package (every entry point: Node ESM and CommonJS, web,
// bundler, workerd).

/** Stable error codes carried by {@link EdgebusError.code}. */
export type ErrorCode =
  | 'INVALID_TOPIC'
  | 'INVALID_PATTERN'
  | 'INVALID_OPTION'
  | 'INVALID_HANDLER'
  | 'INVALID_ARGUMENT'
  | 'QUEUE_FULL'
  | 'CLOSED'
  | 'MESSAGE_TOO_LARGE'
  | 'HANDLER_TIMEOUT'
  | 'NOT_INITIALIZED'
  | 'UNSUPPORTED'
  | 'DATA_CLONE'
  | 'WORKER_CRASHED'
  | 'WORKER_FAILED';

/** Every error edgebus throws or reports: an `Error` with a stable `code`. */
export class EdgebusError extends Error {
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown });
  readonly name: 'EdgebusError';
  readonly code: ErrorCode;
}

/** What happens when a subscription's queue is full. */
export type Overflow = 'dropOldest' | 'dropNewest' | 'reject' | 'wait';

/** A source of time in milliseconds; with `setTimeout`/`clearTimeout` it also runs the bus's timers. */
export interface Clock {
  now(): number;
  setTimeout?(callback: () => void, ms: number): unknown;
  clearTimeout?(handle: unknown): void;
}

/** A virtual clock for deterministic tests: time moves only with {@link ManualClock.advance}. */
export class ManualClock implements Clock {
  constructor(startMs?: number);
  now(): number;
  setTimeout(callback: () => void, ms: number): number;
  clearTimeout(handle: unknown): void;
  /** Moves time forward by `ms`, running every timer that falls due, in time order. */
  advance(ms: number): void;
}

/** A published message as handlers see it. */
export interface Message<T = unknown> {
  readonly topic: string;
  readonly payload: T;
  /** When it was published, on the bus clock (ms). */
  readonly publishedAt: number;
  readonly id?: string;
  readonly key?: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly ttlMs?: number;
}

/**
 * A handler. It may return a Promise: the delivery then lasts until it settles (a rejection is a
 * failure). A handler declared with exactly one parameter receives only the payload; handlers
 * declaring none or two or more also receive the message.
 */
export type Handler<T = unknown> = (payload: T, message: Message<T>) => void | PromiseLike<unknown>;

/** A batch subscription's handler, called with up to `maxSize` messages at a time. */
export type BatchHandler<T = unknown> = (messages: Message<T>[]) => void | PromiseLike<unknown>;

export interface BatchOptions {
  /** Most messages in one batch (default 100). */
  maxSize?: number;
  /** Most bytes in one batch (default 1 MiB); a single larger message throws MESSAGE_TOO_LARGE. */
  maxBytes?: number;
  /** Longest a message waits for its batch to fill (default 10 ms). */
  maxWaitMs?: number;
  /** Tries per batch before it is reported as failed (default 3). */
  maxAttempts?: number;
  /** Retry delays: initialMs (default 50), doubling up to maxMs (default 5000). */
  backoff?: { initialMs?: number; maxMs?: number };
}

export interface SubscribeOptions {
  /** Messages in the handler at once (default 1: strict FIFO). Messages sharing a key never overlap. */
  concurrency?: number;
  /** Most messages waiting for a slot (default: the bus's maxQueue). */
  maxQueue?: number;
  /** Overflow policy (default: the bus's). */
  overflow?: Overflow;
  /** A handler not settled after this long fails with HANDLER_TIMEOUT (default: the bus's; none). */
  timeoutMs?: number;
}

export interface BatchSubscribeOptions extends SubscribeOptions {
  /** Deliver arrays of messages, flushed on size, bytes or time. */
  batch: BatchOptions | true;
}

export interface PublishOptions {
  /** Message id, checked by the bus's idempotence filter. */
  id?: string;
  /** Ordering key: messages sharing a key never overlap in a subscription and keep their order. */
  key?: string;
  /** A message not started within this many ms is dropped and counted as expired. */
  ttlMs?: number;
  headers?: Record<string, string>;
}

export interface PublishBatchOptions {
  key?: string;
  ttlMs?: number;
  headers?: Record<string, string>;
  /** One id per payload (undefined for none). */
  ids?: (string | undefined)[];
}

export interface DedupeOptions {
  /** Most ids remembered (default 10,000). */
  maxIds?: number;
  /** How long an id is remembered, in ms (default: until evicted by count). */
  maxAgeMs?: number;
}

export interface BusOptions {
  /** Drop messages whose `id` was seen inside the window (off by default). */
  dedupe?: DedupeOptions | boolean;
  /** Default queue bound of subscriptions (10,000); `Infinity` for none. */
  maxQueue?: number;
  /** Default overflow policy ('dropOldest'). */
  overflow?: Overflow;
  /** Default handler timeout in ms (none). */
  timeoutMs?: number;
  /** Receives every final handler failure (with a batch, `message` is the array of messages). */
  onError?: (error: unknown, message: Message | Message[], subscription: Subscription) => void;
  /** The clock (default: `performance.timeOrigin + performance.now()` and the global timers). */
  clock?: Clock;
  /** Bytes a payload counts for in a batch's maxBytes. */
  sizeOf?: (payload: unknown) => number;
}

/** Publish→handler-start latency. */
export interface LatencySummary {
  count: number;
  p50Ms: number;
  p99Ms: number;
}

/** Counters and depths kept for the bus and for each subscription. */
export interface DeliveryCounts {
  /** Deliveries handed to handlers. */
  delivered: number;
  /** Messages dropped by overflow policies. */
  dropped: number;
  /** Messages whose TTL ended before they started. */
  expired: number;
  /** Deliveries whose handler failed (after any retries). */
  failed: number;
  /** Messages discarded by unsubscribing before they started. */
  cancelled: number;
  /** Messages waiting in queues. */
  queued: number;
  /** Deliveries started and not yet settled. */
  inFlight: number;
  latency: LatencySummary;
}

export interface SubscriptionStats extends DeliveryCounts {
  id: number;
  pattern: string;
}

export interface BusStats extends DeliveryCounts {
  /** Messages accepted by publish (duplicates excluded). */
  published: number;
  /** Messages dropped by the idempotence filter. */
  duplicates: number;
  subscriptions: number;
  perSubscription: SubscriptionStats[];
}

/** What `$errors` subscribers receive for each handler failure. */
export interface ErrorEvent {
  error: unknown;
  message?: Message;
  messages?: Message[];
  subscription: { id: number; pattern: string };
}

export class Subscription {
  private constructor();
  /** Position in subscription order. */
  readonly id: number;
  readonly pattern: string;
  readonly active: boolean;
  /** Stops every delivery not yet started. Returns false when already unsubscribed. */
  unsubscribe(): boolean;
  /** Its statistics (the final ones once unsubscribed). */
  stats(): SubscriptionStats | undefined;
}

export class Bus {
  constructor(options?: BusOptions);
  /** Whether close() was called. */
  readonly closed: boolean;
  subscribe<T = unknown>(pattern: string, handler: Handler<T>, options?: SubscribeOptions & { batch?: undefined | false }): Subscription;
  subscribe<T = unknown>(pattern: string, handler: BatchHandler<T>, options: BatchSubscribeOptions): Subscription;
  /** Delivers to idle synchronous handlers before returning. False when dropped as a duplicate. */
  publish<T = unknown>(topic: string, payload: T, options?: PublishOptions): boolean;
  /** Publishes many payloads on one topic in one call; returns how many were accepted. */
  publishBatch<T = unknown>(topic: string, payloads: readonly T[], options?: PublishBatchOptions): number;
  /** Like publish, but waits for room when a 'wait' subscription is full. */
  publishAsync<T = unknown>(topic: string, payload: T, options?: PublishOptions): Promise<boolean>;
  /** Delivers partial batches now. */
  flush(): void;
  /** Resolves when everything queued has been handled. */
  drain(): Promise<void>;
  /** Later publishes throw CLOSED; resolves after draining. */
  close(): Promise<void>;
  stats(): BusStats;
}

/** Exact duplicate filter over a window of ids. */
export class IdempotenceFilter {
  constructor(options?: DedupeOptions & { clock?: Clock });
  readonly maxIds: number;
  readonly maxAgeMs: number;
  /** Records `id`; true when it was not in the window. */
  check(id: string): boolean;
  /** Whether `id` is in the window, without recording it. */
  has(id: string): boolean;
  /** Ids in the window. */
  readonly size: number;
  clear(): void;
}

export interface BatcherOptions<T = unknown> extends BatchOptions {
  sizeOf?: (item: T) => number;
  clock?: Clock;
  /** Receives a batch that failed maxAttempts times. */
  onError?: (error: unknown, items: T[]) => void;
}

/** Groups items and calls the handler with arrays, on size, bytes or time. */
export class Batcher<T = unknown> {
  constructor(handler: (items: T[]) => void | PromiseLike<unknown>, options?: BatcherOptions<T>);
  add(item: T): void;
  flush(): void;
  drain(): Promise<void>;
  close(): Promise<void>;
  stats(): SubscriptionStats | undefined;
}

/**
 * Loads the WebAssembly module. Needed once in browsers (the `web` entry), before anything else:
 * `await init()`. Elsewhere (Node, workerd, bundler entry) it resolves at once.
 */
export function init(input?: string | ArrayBuffer | ArrayBufferView | object): Promise<void>;

/** Initializes synchronously from a compiled module (web entry; for example in a Worker). */
export function initSync(module: ArrayBuffer | ArrayBufferView | object): void;

declare const edgebus: {
  Bus: typeof Bus;
  Batcher: typeof Batcher;
  IdempotenceFilter: typeof IdempotenceFilter;
  ManualClock: typeof ManualClock;
  EdgebusError: typeof EdgebusError;
  Subscription: typeof Subscription;
  init: typeof init;
  initSync: typeof initSync;
};
export default edgebus;

/**
 * The shard, in `0..shards-1`, of a message key (or of its topic when it has no key): a stable
 * hash computed by the core, the same in every runtime and natively (`edgebus::shard_of`).
 */
export function shardOf(keyOrTopic: string, shards: number): number;

// ----- ShardedBus ---------------------------------------------------------------------------------

/** What a handlers module's setup function receives in each worker of a {@link ShardedBus}. */
export interface ShardContext<D = unknown> {
  /** This worker's shard, in `0..workers-1`. */
  shard: number;
  workers: number;
  /** The `data` option of the ShardedBus (structured-cloned; SharedArrayBuffers are shared). */
  data: D;
}

/** The bus a handlers module subscribes on, inside a worker: `Bus#subscribe`, same options. */
export interface ShardSubscriber {
  readonly shard: number;
  readonly workers: number;
  subscribe<T = unknown>(pattern: string, handler: Handler<T>, options?: SubscribeOptions & { batch?: undefined | false }): ShardSubscription;
  subscribe<T = unknown>(pattern: string, handler: BatchHandler<T>, options: BatchSubscribeOptions): ShardSubscription;
}

export interface ShardSubscription {
  readonly id: number;
  readonly pattern: string;
  readonly active: boolean;
  unsubscribe(): boolean;
  stats(): SubscriptionStats | undefined;
}

/** The default export (or `setup` export) of a handlers module. */
export type ShardSetup<D = unknown> = (bus: ShardSubscriber, context: ShardContext<D>) => void | PromiseLike<void>;

export interface ShardedBusOptions<D = unknown> {
  /** URL of the handlers module each worker imports (an absolute path also works in Node). */
  handlers: string | { readonly href: string };
  /** Workers (default: hardware concurrency − 1, at least 1). */
  workers?: number;
  /** Given to the handlers module's setup as `context.data` (must be structured-cloneable). */
  data?: D;
  /** Messages sent to a worker and not yet finished, per worker (default 1024). */
  maxInFlight?: number;
  /** Messages waiting on the main thread per shard beyond maxInFlight (default 10,000; Infinity for none). */
  maxQueue?: number;
  /** What happens when a shard's queue is full (default 'dropOldest'). */
  overflow?: Overflow;
  /** Drop messages whose `id` was seen inside the window, on the main thread, before routing. */
  dedupe?: DedupeOptions | boolean;
  /** Handler timeout inside the workers (ms). */
  timeoutMs?: number;
  /** How many times a message that was running when its worker died is sent again (default 3). */
  maxRedeliveries?: number;
  /** Every failure: handler errors from workers, WORKER_CRASHED, WORKER_FAILED, late DATA_CLONE. */
  onError?: (error: unknown, message: Message, info: ShardErrorInfo) => void;
}

export interface ShardErrorInfo {
  shard: number;
  /** The worker subscription whose handler failed (undefined when the worker itself failed). */
  subscription?: { id: number; pattern: string };
}

/** What `$errors` subscribers of a ShardedBus receive. */
export interface ShardErrorEvent {
  error: unknown;
  message: Message;
  subscription?: { id: number; pattern: string };
  shard: number;
}

export interface ShardStats {
  shard: number;
  /** Waiting on the main thread for credits. */
  queued: number;
  /** Sent to the worker, not finished yet. */
  inFlight: number;
  /** Finished (every matching handler settled, successfully or not). */
  done: number;
  /** Handler failures, messages given up after crashes, and unsendable messages. */
  failed: number;
  /** Dropped by the overflow policy here, or finished in the worker without every delivery (a worker subscription's own overflow, TTL, unsubscribing). */
  dropped: number;
  /** Whose ttlMs ended before they were sent. */
  expired: number;
  /** Times the worker was replaced after dying. */
  restarts: number;
  /** Messages sent again to a replacement worker. */
  redelivered: number;
  /** Publish → finished, on the main thread's clock. */
  latency: LatencySummary;
}

export interface ShardedBusStats {
  workers: number;
  published: number;
  duplicates: number;
  /** publishAsync calls waiting for room. */
  waiting: number;
  /** Messages discarded by terminate(). */
  abandoned: number;
  queued: number;
  inFlight: number;
  done: number;
  failed: number;
  dropped: number;
  expired: number;
  restarts: number;
  redelivered: number;
  latency: LatencySummary;
  perShard: ShardStats[];
}

export interface ShardedPublishOptions extends PublishOptions {
  /** ArrayBuffers to move to the worker instead of copying (detached here after sending). */
  transfer?: ArrayBuffer[];
}

/**
 * Handlers in Web Workers (browsers) or worker_threads (Node): messages of one key (or, without a
 * key, of one topic) go to one worker and are handled in publish order. Not available in
 * Cloudflare Workers (UNSUPPORTED): shard across Durable Objects with the edge hub there.
 */
export class ShardedBus<D = unknown> {
  constructor(options: ShardedBusOptions<D>);
  readonly workers: number;
  /** Whether close() or terminate() was called (or the workers could not start). */
  readonly closed: boolean;
  /** Resolves once every worker has loaded the handlers module; rejects with WORKER_FAILED. */
  readonly ready: Promise<void>;
  /** Main-thread subscriptions to system topics only (`$errors`). */
  subscribe(pattern: string, handler: Handler<ShardErrorEvent>, options?: SubscribeOptions): Subscription;
  /** False when dropped as a duplicate or by dropNewest. Throws DATA_CLONE for uncloneable payloads. */
  publish<T = unknown>(topic: string, payload: T, options?: ShardedPublishOptions): boolean;
  publishBatch<T = unknown>(topic: string, payloads: readonly T[], options?: PublishBatchOptions): number;
  publishAsync<T = unknown>(topic: string, payload: T, options?: ShardedPublishOptions): Promise<boolean>;
  /** Resolves when everything published so far has been handled. */
  drain(): Promise<void>;
  /** Later publishes throw CLOSED; drains, then stops the workers. */
  close(): Promise<void>;
  /** Stops the workers at once; returns how many messages were abandoned (also in stats()). */
  terminate(): number;
  stats(): ShardedBusStats;
}
