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
  | 'PERSIST_FAILED'
  | 'MESSAGE_TOO_LARGE'
  | 'HANDLER_TIMEOUT'
  | 'HANDLER_FAILED'
  | 'NO_RESPONDERS'
  | 'TIMEOUT'
  | 'ABORTED'
  | 'NOT_INITIALIZED'
  | 'WASM_LOAD'
  | 'UNSUPPORTED'
  | 'DATA_CLONE'
  | 'WORKER_CRASHED'
  | 'WORKER_FAILED'
  | 'INTERNAL'
  // The remote client (connect()): its own conditions.
  | 'CONNECT_REFUSED'
  | 'UNAVAILABLE'
  | 'MESSAGES_MISSED'
  | 'MESSAGES_DROPPED'
  | 'BAD_JSON'
  // What an edge hub answers (passed on by the remote client and in HTTP error bodies).
  | 'BAD_REQUEST'
  | 'UNAUTHORIZED'
  | 'FORBIDDEN'
  | 'TOKEN_EXPIRED'
  | 'TOKEN_NOT_YET_VALID'
  | 'INVALID_CLAIMS'
  | 'ORIGIN_NOT_ALLOWED'
  | 'RATE_LIMITED'
  | 'REQUEST_TOO_LARGE'
  | 'PAYLOAD_TOO_DEEP'
  | 'BATCH_TOO_LARGE'
  | 'TOO_MANY_CONNECTIONS'
  | 'TOO_MANY_SUBSCRIPTIONS'
  | 'TOO_MANY_REQUESTS'
  | 'UNKNOWN_SUBSCRIPTION'
  | 'GROUP_IN_USE'
  | 'GROUP_SPANS_HUBS'
  | 'NOT_FOUND'
  | 'METHOD_NOT_ALLOWED';

/** Every error edgebus throws or reports: an `Error` with a stable `code`. */
export class EdgebusError extends Error {
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown });
  readonly name: 'EdgebusError';
  readonly code: ErrorCode;
}

/** What happens when a subscription's queue is full. */
export type Overflow = 'dropOldest' | 'dropNewest' | 'reject' | 'wait';

/**
 * A source of time in milliseconds, 0 or more (as `Date.now()` and `performance.now()`; a reading
 * below 0 counts as 0); with `setTimeout`/`clearTimeout` it also runs the bus's timers. After a
 * Bus's construction, a `now()` that throws or gives anything but a number is taken as its last
 * reading (said once on the console): a bus reads its clock in the middle of work it cannot leave
 * half done.
 */
export interface Clock {
  now(): number;
  setTimeout?(callback: () => void, ms: number): unknown;
  clearTimeout?(handle: unknown): void;
}

/** A virtual clock for deterministic tests: time moves only with {@link ManualClock.advance}. */
export class ManualClock implements Clock {
  /** Starts at `startMs` (default 0): a finite number ≥ 0, else INVALID_ARGUMENT. */
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
  /** Which try this delivery is: 1, or more when a work queue redelivers it. */
  readonly attempt: number;
  /**
   * Its number on its topic, when the topic is tracked (it has a retained value, or matches the
   * bus's `history.topics`): consecutive per topic, so a subscriber can tell what it missed.
   */
  readonly seq?: number;
  /**
   * On a message published by {@link Bus.request} or {@link Bus.requestMany}: answers it with
   * `value`, for a handler that answers from a callback while its delivery lasts (before the
   * promise it returned settles). True when the answer was taken; false when the request had
   * ended or this subscription had answered it already.
   */
  readonly reply?: (value: unknown) => boolean;
}

/**
 * A handler. It may return a Promise (any thenable): the delivery then lasts until it settles (a
 * rejection is a failure). Any other value it returns is ignored, so `(p) => list.push(p)` is a
 * handler. A handler declared with exactly one parameter receives only the payload; handlers
 * declaring none or two or more also receive the message.
 */
export type Handler<T = unknown> = (payload: T, message: Message<T>) => unknown;

/** A batch subscription's handler, called with up to `maxSize` messages at a time (returns as {@link Handler}). */
export type BatchHandler<T = unknown> = (messages: Message<T>[]) => unknown;

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
  /** Plain subscriptions have no group (see {@link GroupSubscribeOptions}). */
  group?: undefined;
  /**
   * Before live messages, the retained values (`'retained'`) or the history (see {@link Replay})
   * of the topics the pattern matches, oldest first: no gap and no duplicate between the two.
   */
  replay?: Replay;
  /** Hears of the numbers a replay asked for that are no longer held (also published on `$gap`). */
  onGap?: (gap: Gap) => void;
}

/**
 * Where a subscription's replay starts: the retained values; the last `last` messages of each
 * topic; the messages numbered above `sinceSeq` (one number for every topic, or one per topic,
 * with `sinceMs` for the topics not named); the messages published at or after `sinceMs` (bus
 * clock).
 */
export type Replay =
  | 'retained'
  | { last: number }
  | { sinceSeq: number | Record<string, number>; sinceMs?: number }
  | { sinceMs: number };

/** Numbers of a topic a replay asked for and the bus no longer holds (evicted, expired, never kept). */
export interface Gap {
  topic: string;
  /** The first number missed; undefined when only the last is known (a replay by time). */
  fromSeq?: number;
  /** The last number missed. */
  toSeq: number;
  /** The subscription's pattern (for `replay()`, the pattern asked). */
  pattern: string;
  /** The subscription's id (undefined for `replay()`). */
  subscription?: number;
}

/** What the bus holds for one topic ({@link Bus.logOf}). */
export interface LogInfo {
  topic: string;
  /** The oldest number in its history (`lastSeq + 1` when it holds none). */
  firstSeq: number;
  /** The number given last. */
  lastSeq: number;
  /** Its retained value's number, if it has one. */
  retainedSeq?: number;
  /** Messages in its history. */
  held: number;
}

/** A durable copy of a message, for {@link Bus.restore}. Without `payload`: only the numbering. */
export interface RestoreEntry {
  topic: string;
  seq: number;
  payload?: unknown;
  /** Bus-clock time it was published (default now). */
  publishedAt?: number;
  /** It is the topic's retained value. */
  retained?: boolean;
  id?: string;
  key?: string;
  headers?: Record<string, string>;
  ttlMs?: number;
}

/** What retained values and history hold and counted. */
export interface LogStats {
  /** Topics with a log (a retained value, a history, or only their numbering). */
  topics: number;
  retained: number;
  /** Messages held in histories. */
  history: number;
  /** Bytes of both, as `sizeOf` measures. */
  bytes: number;
  /** Retained values and history messages evicted by a bound or the age limit. */
  evicted: number;
  /** Retained values and history messages whose TTL ended. */
  expired: number;
  /** Messages replayed to new subscriptions (not counting `replay()`). */
  replayed: number;
  /** Gaps reported. */
  gaps: number;
}

export interface BatchSubscribeOptions extends SubscribeOptions {
  /** Deliver arrays of messages, flushed on size, bytes or time. */
  batch: BatchOptions | true;
}

/**
 * Joins the work queue named `group`: subscriptions sharing `group` and pattern are its members and
 * each message goes to exactly one member, round-robin among members with free capacity. A
 * handler that returns (or resolves) acknowledges; one that throws, rejects or misses
 * `ackTimeoutMs` is retried with exponential backoff plus jitter, up to `maxAttempts`, then the
 * message is published on `$dead.<group>` (see {@link DeadLetter}). `maxAttempts`, `backoff`,
 * `maxQueue` and `overflow` belong to the work queue: the first member sets them and later members must
 * agree (or leave them out).
 */
export interface GroupSubscribeOptions {
  /** The group's name: topic tokens, not starting with `$`. */
  group: string;
  /** Deliveries (or claimed batches) this member runs at once (default 1). */
  concurrency?: number;
  /** Most messages waiting in the group (default: the bus's maxQueue). */
  maxQueue?: number;
  /** Overflow policy of the group (default: the bus's). */
  overflow?: Overflow;
  /** Tries per message before it goes to `$dead.<group>` (default 5; 1 to 1000). */
  maxAttempts?: number;
  /** Retry delays: initialMs (default 100), doubling up to maxMs (default 30000); each jittered into [d/2, d]. */
  backoff?: { initialMs?: number; maxMs?: number };
  /** A delivery not settled after this many ms counts as failed and is redelivered; its late result is ignored. */
  ackTimeoutMs?: number;
}

/** Batch claim: up to `maxSize` messages per call, waiting up to `maxWaitMs` for a fuller batch. */
export interface ClaimOptions {
  /** Most messages per claim (default 100). */
  maxSize?: number;
  /** Longest to wait for a fuller batch when fewer are ready (default 10 ms; 0: hand out what there is). */
  maxWaitMs?: number;
}

export interface GroupBatchSubscribeOptions extends GroupSubscribeOptions {
  /** Claim several messages at once; they are acknowledged together, and a failed batch retries each message alone. */
  batch: ClaimOptions | true;
}

export interface PublishOptions {
  /** Message id, checked by the bus's idempotence filter. */
  id?: string;
  /** Ordering key: messages sharing a key never overlap in a subscription and keep their order. */
  key?: string;
  /** A message not started within this many ms is dropped and counted as expired. */
  ttlMs?: number;
  headers?: Record<string, string>;
  /** Work-queue priority: groups hand out higher priorities first, FIFO within one (integer ≥ 0, default 0). */
  priority?: number;
  /** Visible to nobody before this time on the bus clock (ms); earlier times deliver at once. */
  notBefore?: number;
  /**
   * Attempts already made elsewhere (integer 0–1000, default 0). A work queue counts from there:
   * the first delivery is attempt `attempts + 1`, `maxAttempts` bounds the total, and a message
   * arriving with `attempts >= maxAttempts` is a dead letter without a delivery. Other
   * subscriptions ignore it.
   */
  attempts?: number;
  /**
   * Keep it as its topic's retained value (a later subscription with `replay: 'retained'` gets
   * it first); with an `undefined` payload, clear that value (the message is still delivered).
   */
  retain?: boolean;
}

export interface PublishBatchOptions {
  key?: string;
  ttlMs?: number;
  headers?: Record<string, string>;
  priority?: number;
  notBefore?: number;
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
  /**
   * The clock (default: `performance.timeOrigin + performance.now()` and the global timers).
   * Read once at construction: a `now()` that throws or returns anything but a finite number is
   * refused with `INVALID_OPTION`.
   */
  clock?: Clock;
  /**
   * Bytes a payload counts for in a batch's maxBytes: a number ≥ 0 (a fraction counts as the next
   * whole byte; anything else makes the publish throw INVALID_OPTION). Default: UTF-8 bytes of a
   * string, `byteLength` of binary data, the JSON text's bytes of other objects.
   */
  sizeOf?: (payload: unknown) => number;
  /** How long finished work-queue ids stay answered by status() (default 10,000 ids per group, 1 hour). */
  retention?: { maxIds?: number; maxAgeMs?: number };
  /** Bounds of retained values (default 10,000 topics, 8 MiB as `sizeOf` measures); the least recently published go first. */
  retain?: { maxTopics?: number; maxBytes?: number };
  /**
   * Topics whose messages are kept for replay (patterns), and the bounds: messages per topic
   * (default 100), age in ms (none), topics (10,000), bytes (32 MiB); the oldest go first.
   */
  history?: { topics: string[]; maxMessages?: number; maxAgeMs?: number; maxTopics?: number; maxBytes?: number };
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
  /** Its work queue's name, for a work-queue member. */
  group?: string;
}

/** Statistics of one work queue. */
export interface GroupStats {
  name: string;
  pattern: string;
  members: number;
  /** Messages waiting: pending, and failed ones waiting for a retry. */
  depth: number;
  /** Of depth, failed messages waiting for a retry. */
  retrying: number;
  /** Messages claimed by a member and not settled. */
  inFlight: number;
  published: number;
  done: number;
  /** Failed attempts scheduled for a retry. */
  retried: number;
  /** Messages that failed every attempt (published on `$dead.<group>`). */
  dead: number;
  expired: number;
  dropped: number;
  /** Finished ids still answered by status(). */
  remembered: number;
}

/** Where a work-queue message stands. */
export type JobState = 'pending' | 'delayed' | 'in-flight' | 'failed' | 'done' | 'dead' | 'expired' | 'dropped';

export interface JobStatus {
  state: JobState;
  /** Handler calls so far. */
  attempts: number;
  /** The group holding it (undefined while it is delayed). */
  group?: string;
}

/** The payload published on `$dead.<group>` when a work-queue message fails its last attempt. */
export interface DeadLetter<T = unknown> {
  group: string;
  /** The topic it was published on. */
  topic: string;
  attempts: number;
  /** The last error: HANDLER_FAILED (with the handler's error message) or HANDLER_TIMEOUT. */
  error: { code: 'HANDLER_FAILED' | 'HANDLER_TIMEOUT'; message: string };
  message: Message<T>;
}

/** What close() could not deliver; nothing is dropped silently. */
export interface CloseSummary {
  remaining: {
    message: Message;
    /** Its work queue's name; undefined for a delayed message not routed yet. */
    group?: string;
    /** 'delayed', 'pending' (its group has no member left) or 'failed' (waiting for a retry). */
    state: JobState;
    attempts: number;
  }[];
}

export interface BusStats extends DeliveryCounts {
  /** Messages accepted by publish (duplicates excluded). */
  published: number;
  /** Messages dropped by the idempotence filter. */
  duplicates: number;
  subscriptions: number;
  perSubscription: SubscriptionStats[];
  /** Messages published with a notBefore still in the future. */
  delayed: number;
  /** Work queues, in creation order. */
  groups: GroupStats[];
  /** Requests and their replies. */
  requests: RequestStats;
  /** Retained values and history. */
  logs: LogStats;
}

/** What requests counted. */
export interface RequestStats {
  /** Requests published (refused ones excluded). */
  sent: number;
  /** Replies taken. */
  replies: number;
  /** Responders' final failures taken as answers. */
  failed: number;
  /** Answers of handlers that completed without a reply. */
  declined: number;
  /** Requests that reached their timeout. */
  timedOut: number;
  /** Requests refused because no subscription matched, or ended because every one declined. */
  noResponders: number;
  /** Requests given up (aborted, a requestMany loop left early, not published) or ended by close(). */
  cancelled: number;
  /** Answers that came after their request ended, or a second one from one subscription: ignored. */
  late: number;
  /** Requests waiting for answers. */
  pending: number;
}

/** An `AbortSignal`: a genuine one at run time (a look-alike is INVALID_OPTION); declared by shape, so the types need no DOM or Node library. */
export interface AbortSignalLike {
  readonly aborted: boolean;
  readonly reason?: unknown;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

/** Options of {@link Bus.request}. */
export interface RequestOptions {
  /** How long to wait for a reply, in ms (default 5000; `Infinity`: as long as it takes). */
  timeoutMs?: number;
  /** Gives the request up (ABORTED) when it aborts. */
  signal?: AbortSignalLike;
  /** Ordering key of the request's message. */
  key?: string;
  /** Headers of the request's message (trace context…). */
  headers?: Record<string, string>;
}

/** Options of {@link Bus.requestMany}. */
export interface RequestManyOptions extends RequestOptions {
  /** Most replies to gather (default: one per subscription reached). */
  max?: number;
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
  /** Its work queue's name, if any. */
  readonly group: string | undefined;
  /** Stops every delivery not yet started. Returns false when already unsubscribed. */
  unsubscribe(): boolean;
  /** Its statistics (the final ones once unsubscribed). */
  stats(): SubscriptionStats | undefined;
}

/** Options of {@link Bus.once}. */
export interface OnceOptions<T = unknown> {
  /** Rejects with TIMEOUT when no message came within this many ms (default: waits for ever). */
  timeoutMs?: number;
  /** Only a message it returns true for resolves; a throw rejects with HANDLER_FAILED. */
  filter?: (message: Message<T>) => boolean;
  /** Rejects with ABORTED when it aborts. */
  signal?: AbortSignalLike;
}

/** Options of {@link Bus.stream}. */
export interface StreamOptions {
  /** Ends the loop with ABORTED when it aborts. */
  signal?: AbortSignalLike;
  /** Messages waiting for the loop at most (the bus's default otherwise). */
  maxQueue?: number;
  /** What a full stream does with one more message (the bus's default otherwise). */
  overflow?: Overflow;
}

/** The messages of a {@link Bus.stream}, for `for await`. */
export interface MessageStream<T = unknown> extends AsyncIterableIterator<Message<T>> {
  /** The subscription behind it: unsubscribing ends the loop. */
  readonly subscription: Subscription;
}

// ----- typed topic maps ------------------------------------------------------------------------

/**
 * The topic map of a `Bus` without one (the default): any topic, any payload, as declared at
 * each call.
 */
export interface AnyTopics {
  readonly ' anyTopics': true;
}

/**
 * A topic map entry for requests: its message carries `P`, and it is answered with `R` (what
 * `request` resolves to). Types only.
 */
export interface Req<P, R> {
  readonly ' payload': P;
  readonly ' reply': R;
}

/** The payload type of a topic map entry. */
export type PayloadOf<V> = V extends Req<infer P, unknown> ? P : V;
/** The reply type of a topic map entry (`unknown` for one that is not a {@link Req}). */
export type ReplyOf<V> = V extends Req<unknown, infer R> ? R : unknown;

type IsTyped<M> = M extends AnyTopics ? false : true;
type Tokens<S extends string> = S extends `${infer H}.${infer T}` ? [H, ...Tokens<T>] : [S];
/** A pattern's (or topic's) token against a map key's: `*`, a `{name}` placeholder, or the same text. */
type TokenCovers<P extends string, K extends string> =
  P extends '*' ? true : K extends `{${string}}` ? true : P extends K ? true : false;
type Covers<P extends string[], K extends string[]> =
  P extends ['>']
    ? K extends [string, ...string[]] ? true : false
    : P extends [infer PH extends string, ...infer PT extends string[]]
      ? K extends [infer KH extends string, ...infer KT extends string[]]
        ? TokenCovers<PH, KH> extends true ? Covers<PT, KT> : false
        : false
      : K extends [] ? true : false;
/**
 * The keys of topic map `M` that `pattern` (a topic, or a pattern with `*` and `>`) reaches. A
 * key token `{name}` stands for any one token: `'orders.{region}.created'` is reached by
 * `orders.eu.created`, `orders.*.created` and `orders.>`.
 */
export type TopicsMatching<M, P extends string> = {
  [K in keyof M & string]: Covers<Tokens<P>, Tokens<K>> extends true ? K : never;
}[keyof M & string];
/** What a subscription on `P` receives: the union of the payloads of the keys it reaches. */
export type PatternPayload<M, P extends string> = IsTyped<M> extends false
  ? unknown
  : [TopicsMatching<M, P>] extends [never] ? unknown : PayloadOf<M[TopicsMatching<M, P>]>;
/** What a publish on topic `T` must carry (`never` for a literal topic the map does not have). */
export type TopicPayload<M, T extends string> = IsTyped<M> extends false
  ? unknown
  : string extends T ? unknown : [TopicsMatching<M, T>] extends [never] ? never : PayloadOf<M[TopicsMatching<M, T>]>;
/** What a request on topic `T` resolves to. */
export type TopicReply<M, T extends string> = IsTyped<M> extends false
  ? unknown
  : [TopicsMatching<M, T>] extends [never] ? unknown : ReplyOf<M[TopicsMatching<M, T>]>;
/** The topic parameter of the untyped signatures: none for a typed bus, whose payloads are checked. */
type AnyTopic<M> = IsTyped<M> extends true ? never : string;

type PlainSubscribeOptions = (SubscribeOptions | GroupSubscribeOptions) & { batch?: undefined | false; signal?: AbortSignalLike };
type BatchSubscribeAnyOptions = (BatchSubscribeOptions | GroupBatchSubscribeOptions) & { signal?: AbortSignalLike };

/**
 * A bus. `new Bus<Topics>()` types it by a topic map, `{ 'orders.{region}.created': Order,
 * 'math.double': Req<number, number> }`: subscriptions infer their payload through `*` and `>`,
 * a publish on a literal topic must carry that topic's payload (a topic the map lacks is an
 * error), and a request resolves to its entry's reply type. Without one, each call declares its
 * own types.
 */
export class Bus<M extends object = AnyTopics> {
  constructor(options?: BusOptions);
  /** Whether close() was called. */
  readonly closed: boolean;
  /** `signal` (in any options) unsubscribes it when it aborts; an aborted one throws ABORTED. */
  subscribe<P extends string>(pattern: P, handler: Handler<PatternPayload<M, P>>, options?: PlainSubscribeOptions): Subscription;
  subscribe<P extends string>(pattern: P, handler: BatchHandler<PatternPayload<M, P>>, options: BatchSubscribeAnyOptions): Subscription;
  subscribe<T = unknown>(pattern: AnyTopic<M>, handler: Handler<T>, options?: PlainSubscribeOptions): Subscription;
  subscribe<T = unknown>(pattern: AnyTopic<M>, handler: BatchHandler<T>, options: BatchSubscribeAnyOptions): Subscription;
  /** Resolves with the first message on `pattern` (that `filter` accepts), then leaves. */
  once<P extends string>(pattern: P, options?: OnceOptions<PatternPayload<M, P>>): Promise<Message<PatternPayload<M, P>>>;
  once<T = unknown>(pattern: AnyTopic<M>, options?: OnceOptions<T>): Promise<Message<T>>;
  /**
   * The messages on `pattern` for `for await`, bounded by its subscription's queue (`maxQueue`,
   * `overflow`): a message is delivered when the loop takes it. Ends when the loop leaves, on
   * `unsubscribe()` and on close(); throws ABORTED when `signal` aborts.
   */
  stream<P extends string>(pattern: P, options?: StreamOptions): MessageStream<PatternPayload<M, P>>;
  stream<T = unknown>(pattern: AnyTopic<M>, options?: StreamOptions): MessageStream<T>;
  /** Delivers to idle synchronous handlers before returning. False when dropped as a duplicate. */
  publish<T extends string>(topic: T, payload: TopicPayload<M, T>, options?: PublishOptions): boolean;
  publish<T = unknown>(topic: AnyTopic<M>, payload: T, options?: PublishOptions): boolean;
  /** Publishes many payloads on one topic in one call; returns how many were accepted. */
  publishBatch<T extends string>(topic: T, payloads: readonly TopicPayload<M, T>[], options?: PublishBatchOptions): number;
  publishBatch<T = unknown>(topic: AnyTopic<M>, payloads: readonly T[], options?: PublishBatchOptions): number;
  /** Like publish, but waits for room when a 'wait' subscription is full (ABORTED when `signal` aborts first). */
  publishAsync<T extends string>(topic: T, payload: TopicPayload<M, T>, options?: PublishOptions & { signal?: AbortSignalLike }): Promise<boolean>;
  publishAsync<T = unknown>(topic: AnyTopic<M>, payload: T, options?: PublishOptions & { signal?: AbortSignalLike }): Promise<boolean>;
  /**
   * Publishes `payload` as a request and resolves with the first reply: a handler's return value
   * (or what its promise resolves to, or what it passes to `message.reply`); a handler that
   * completes with `undefined` declines. Rejects with NO_RESPONDERS (no subscription matches, or
   * every one declined), TIMEOUT, ABORTED, HANDLER_FAILED (the responder's error as `cause`) when
   * no reply came and a responder failed, or CLOSED.
   */
  request<T extends string>(topic: T, payload: TopicPayload<M, T>, options?: RequestOptions): Promise<TopicReply<M, T>>;
  request<R = unknown, T = unknown>(topic: AnyTopic<M>, payload: T, options?: RequestOptions): Promise<R>;
  /**
   * Publishes `payload` as a request and yields the replies of every subscription it reaches,
   * until each answered, `max` replies came, or the timeout passed (which ends the loop without
   * an error). Throws ABORTED, CLOSED, or the error that kept the request from being made.
   * Leaving the loop early gives the request up.
   */
  requestMany<T extends string>(topic: T, payload: TopicPayload<M, T>, options?: RequestManyOptions): AsyncIterableIterator<TopicReply<M, T>>;
  requestMany<R = unknown, T = unknown>(topic: AnyTopic<M>, payload: T, options?: RequestManyOptions): AsyncIterableIterator<R>;
  /** Delivers partial batches now. */
  flush(): void;
  /** Resolves when everything queued has been handled (ABORTED when `signal` aborts first). */
  drain(options?: { signal?: AbortSignalLike }): Promise<void>;
  /** Later publishes throw CLOSED; resolves after draining, with what could not be delivered. */
  close(): Promise<CloseSummary>;
  /** Where the work-queue message with this id stands (in `group`, if given); undefined when unknown. */
  status(id: string, group?: string): JobStatus | undefined;
  stats(): BusStats;
  /**
   * What retained values and history hold and counted: `stats().logs` alone, without gathering any
   * subscription's statistics (cheap enough to read after every publish).
   */
  logStats(): LogStats;
  /** The retained values `pattern` matches (default every topic), in publish order. */
  retained<P extends string = '>'>(pattern?: P): Message<PatternPayload<M, P>>[];
  /** Clears a topic's retained value; whether it had one. */
  clearRetained(topic: string): boolean;
  /** What a subscription with this replay would be given first, and its gaps, without subscribing; `maxMessages` and `maxBytes` keep the newest that fit (the older ones are reported as gaps). */
  replay<P extends string>(pattern: P, replay: Replay, options?: { maxMessages?: number; maxBytes?: number }): { messages: Message<PatternPayload<M, P>>[]; gaps: Gap[] };
  /** What the bus holds for `topic`, or undefined. */
  logOf(topic: string): LogInfo | undefined;
  /** Puts durable copies back (a driver reloading what it stored), in number order per topic; every entry is checked before any is applied (a refused call restores nothing). */
  restore(entries: readonly RestoreEntry[]): void;
}

/**
 * The core's request rules for a driver whose responders are elsewhere and are learnt of as
 * reports come in (the edge hub keeps its connections' requests in one): what each answer does
 * and when a request ends. `Bus` and `ShardedBus` need none.
 */
export class RequestTracker {
  constructor(options?: { clock?: Clock });
  /** Opens a request (max default 1, reports default 1, timeoutMs default 5000); returns its id. */
  open(options?: { max?: number; reports?: number; timeoutMs?: number }): number;
  /** Counts a request refused before it was opened because nothing could answer it. */
  refusedWithoutResponders(): void;
  /** A report came: `responders` more, `reports` more reports to wait for. */
  reached(id: number, reports: number, responders: number): 'pending' | 'replied' | 'failed' | 'noResponders' | 'gone';
  /** A responder's answer; what it did. */
  answer(id: number, responder: number, kind: 'reply' | 'failure' | 'decline'):
    'late' | 'reply' | 'replyLast' | 'failed' | 'failedLast' | 'declined' | 'declinedLast' | 'completeLast' | 'declinedFailedLast';
  /** Ends a request for its requester; false when it had ended. */
  cancel(id: number): boolean;
  /** Ends the requests whose deadline passed; their ids. */
  due(): number[];
  /** The earliest deadline of a pending request (clock ms). */
  nextDeadline(): number | undefined;
  readonly pending: number;
  stats(): RequestStats;
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
  /** Bytes an item counts for in maxBytes, as the bus's `sizeOf`. */
  sizeOf?: (item: T) => number;
  clock?: Clock;
  /** Receives a batch that failed maxAttempts times. */
  onError?: (error: unknown, items: T[]) => void;
}

/** Groups items and calls the handler with arrays, on size, bytes or time. */
export class Batcher<T = unknown> {
  /** `handler` may return a Promise (the batch is done when it settles); other values are ignored. */
  constructor(handler: (items: T[]) => unknown, options?: BatcherOptions<T>);
  add(item: T): void;
  flush(): void;
  drain(): Promise<void>;
  close(): Promise<void>;
  stats(): SubscriptionStats | undefined;
}

/**
 * Loads the WebAssembly module. Needed once in browsers (the `web` entry), before anything else:
 * `await init()`. Elsewhere (Node, workerd, bundler entry) it resolves at once. Rejects with
 * WASM_LOAD (the URL, the HTTP status and the content type) when the .wasm cannot be loaded.
 */
export function init(input?: string | ArrayBuffer | ArrayBufferView | object): Promise<void>;

/** Initializes synchronously from a compiled module (web entry; for example in a Worker). */
export function initSync(module: ArrayBuffer | ArrayBufferView | object): void;

declare const edgebus: {
  Bus: typeof Bus;
  Batcher: typeof Batcher;
  IdempotenceFilter: typeof IdempotenceFilter;
  RequestTracker: typeof RequestTracker;
  ManualClock: typeof ManualClock;
  EdgebusError: typeof EdgebusError;
  Subscription: typeof Subscription;
  init: typeof init;
  initSync: typeof initSync;
  connect: typeof connect;
  shardOf: typeof shardOf;
  matches: typeof matches;
  checkTopic: typeof checkTopic;
  checkPattern: typeof checkPattern;
  checkReplay: typeof checkReplay;
  ShardedBus: typeof ShardedBus;
  serveShard: typeof serveShard;
};
export default edgebus;

/**
 * The shard, in `0..shards-1`, of a message key (or of its topic when it has no key): a stable
 * hash computed by the core, the same in every runtime and natively (`edgebus::shard_of`).
 */
export function shardOf(keyOrTopic: string, shards: number): number;

/**
 * Whether `topic` matches `pattern`, by the core's own rules (`*` one token, `>` the rest, a pattern
 * starting with a wildcard never matches a `$` topic). Throws INVALID_PATTERN / INVALID_TOPIC.
 */
export function matches(pattern: string, topic: string): boolean;

/**
 * Throws INVALID_TOPIC, with the core's reason, unless `topic` is a topic one may publish on (the
 * core's rules, as `publish` applies them).
 */
export function checkTopic(topic: string): void;

/** Throws INVALID_PATTERN, with the core's reason, unless `pattern` is a valid subscription pattern. */
export function checkPattern(pattern: string): void;

/**
 * Checks a subscription's `replay` option as `subscribe` and `replay()` do (INVALID_OPTION naming
 * what is wrong) and returns a plain copy of it, read once (`sinceSeq` by topic: its own keys
 * only). For code that receives replays from elsewhere (an edge hub, from a client) and hands them
 * to a bus later. Topics named in `sinceSeq` are checked by the bus (INVALID_TOPIC), not here.
 */
export function checkReplay(replay: unknown): Replay;

// ----- the remote client (edge deployment) ------------------------------------------------------

/** Options of `connect`. */
export interface ConnectOptions {
  /**
   * A bearer token, or a function giving a fresh one for each (re)connection. Sent in an
   * `Authorization` header in Node and Workers; browsers, which cannot, put it in the URL.
   */
  token: string | (() => string | PromiseLike<string>);
  /** A topic prefix: the connection's home is the hub owning it (no hop for those topics). */
  hub?: string;
  /**
   * The WebSocket constructor (default: the global one: browsers, Node 22, Workers). In Node it is
   * called with `{ headers }` as second argument, as Node's own and the `ws` package's take it.
   */
  WebSocket?: new (url: string) => unknown;
  /** Publishes held while offline or waiting for the hub's acknowledgement (default 1000). */
  maxBuffer?: number;
  /** When the buffer is full (default 'dropOldest'; every drop is reported to onError and counted). */
  overflow?: Overflow;
  /** Reconnection backoff: initialMs × 2^attempt, capped at maxMs, jittered into [½, 1] (defaults 100 ms, 10 s). */
  reconnect?: { initialMs?: number; maxMs?: number };
  /** A handshake that takes longer is abandoned and retried (default 10,000 ms). */
  connectTimeoutMs?: number;
  /**
   * Message ids remembered per subscription to drop redeliveries (default 10,000), each as long as
   * the hubs remember a publish's id (their `DEDUPE_MAX_AGE_MS`, told on connecting), counted on
   * their clock: an id published again after that is a new message.
   */
  dedupe?: { maxIds?: number };
  /**
   * After a reconnect, plain subscriptions ask the hubs to replay what they missed (from the last
   * `seq` they received on each topic, and since they began for the others); default true.
   */
  recover?: boolean;
  /**
   * Where publishes not yet acknowledged are kept: 'memory' (the default: for this session only),
   * 'indexeddb' (browsers: they survive a page reload and the next `connect` with the same
   * `persistName` sends them, with their ids), or a store of your own ({@link OutboxStore}).
   * 'indexeddb' where there is no IndexedDB (Node, Workers) is refused INVALID_OPTION.
   */
  persist?: 'memory' | 'indexeddb' | OutboxStore;
  /** With `persist: 'indexeddb'`: the outbox's name on this origin (default: from the URL and `hub`). */
  persistName?: string;
  /**
   * Refusals from the hub, handler failures, drops; `op` is 'ack' or 'nack' for a refused
   * acknowledgement (FORBIDDEN, UNAVAILABLE); `outbox` names the store call that failed (PERSIST_FAILED);
   * `gap` with MESSAGES_MISSED for a subscription without `onGap`.
   */
  onError?: (error: EdgebusError | unknown, context?: { subscription?: RemoteSubscription; message?: Message; topic?: string; id?: string; op?: 'ack' | 'nack'; outbox?: 'load' | 'put' | 'delete'; ids?: string[]; gap?: Gap }) => void;
}

/** A publish in a persistent outbox: what `OutboxStore.put` gets and `load` gives back. */
export interface OutboxEntry<T = unknown> {
  id: string;
  topic: string;
  payload: T;
  key?: string;
  headers?: Record<string, string>;
  /** When it was published (ms since the epoch). */
  at: number;
}

/**
 * A persistent outbox for `connect({ persist })`. Calls come in order (a delete never before the
 * put it undoes); a call that throws or rejects is reported (PERSIST_FAILED) and counted in
 * `stats().persistFailed`, and the publish stays in memory and is sent anyway.
 */
export interface OutboxStore {
  /** What an earlier session left, oldest first; called once, at `connect`. */
  load(): OutboxEntry[] | PromiseLike<OutboxEntry[]>;
  /** A publish not yet acknowledged: it is sent once this settles. The same id may come again (another publish with it). */
  put(entry: OutboxEntry): void | PromiseLike<void>;
  /** Acknowledged, refused or dropped: every entry with one of these ids goes. */
  delete(ids: string[]): void | PromiseLike<void>;
  /** Optional: the client closed (called once, after the calls made before settled or its close's timeoutMs passed; no call comes after it); release what the store holds open. */
  close?(): void | PromiseLike<void>;
}

/** Options of a remote subscription: plain, or a member of a durable work queue. */
export interface RemoteSubscribeOptions {
  group?: string;
  maxAttempts?: number;
  ackTimeoutMs?: number;
  /** Plain subscriptions: before live messages, what the hubs' cores replay (as {@link SubscribeOptions.replay}). */
  replay?: Replay;
  /** The numbers a replay (this one, or a recovery after a reconnect) asked for that the hubs no longer hold. */
  onGap?: (gap: Gap) => void;
}

export interface RemoteSubscription {
  readonly id: number;
  readonly pattern: string;
  readonly group: string | undefined;
  readonly active: boolean;
  /** Resolves once every hub concerned has the subscription; rejects with the hub's refusal (FORBIDDEN…). */
  readonly ready: Promise<void>;
  unsubscribe(): boolean;
}

export interface RemoteStats {
  published: number;
  acknowledged: number;
  duplicates: number;
  delivered: number;
  redelivered: number;
  dropped: number;
  reconnects: number;
  errors: number;
  connected: boolean;
  buffered: number;
  unacknowledged: number;
  subscriptions: number;
  /** Requests made, and replies received. */
  requests: number;
  replies: number;
  /** Publishes an earlier session left in the persistent outbox, loaded at connect (those the bound dropped are in `dropped` too). */
  restored: number;
  /** Outbox store calls that threw or rejected (each reported PERSIST_FAILED). */
  persistFailed: number;
  /** Gaps the hubs reported to this client's replays. */
  gaps: number;
  /** Publishes sent again after a hub refused them for a while (RATE_LIMITED, UNAVAILABLE). */
  retried: number;
  /** Connection attempts that failed and were retried. */
  connectFailures: number;
  /** The last connection failure, if any. */
  lastError: EdgebusError | undefined;
  /** Messages a full `stream()` queue dropped (its overflow policy). */
  streamDropped: number;
}

/** A publish the hub never acknowledged (returned by close()). */
export interface RemotePublish<T = unknown> {
  topic: string;
  payload: T;
  id: string;
  key?: string;
}

/** A bus on an edgebus edge deployment, with the in-page Bus's API. */
export interface RemoteBus {
  readonly connected: boolean;
  readonly closed: boolean;
  /** Resolves on the first successful connection. */
  readonly ready: Promise<void>;
  /** A work-queue handler acknowledges by returning or resolving, refuses by throwing or rejecting. `signal` unsubscribes it. */
  subscribe<T = unknown>(pattern: string, handler: Handler<T>, options?: RemoteSubscribeOptions & { signal?: AbortSignalLike }): RemoteSubscription;
  /** The first message on `pattern` (that `filter` accepts), as {@link Bus.once}. */
  once<T = unknown>(pattern: string, options?: OnceOptions<T>): Promise<Message<T>>;
  /** The messages on `pattern` for `for await`, in a bounded queue (`overflow` other than 'wait'). */
  stream<T = unknown>(pattern: string, options?: StreamOptions): AsyncIterableIterator<Message<T>> & { readonly subscription: RemoteSubscription };
  /** Sends (or holds while offline); false when the overflow policy dropped it. */
  /** `retain`: the topic's retained value at the hubs (with an undefined payload: cleared). */
  publish<T = unknown>(topic: string, payload: T, options?: { id?: string; key?: string; headers?: Record<string, string>; retain?: boolean }): boolean;
  /** Resolves once the hub has it (stored, for work queues): false for a duplicate id. */
  publishAsync<T = unknown>(topic: string, payload: T, options?: { id?: string; key?: string; headers?: Record<string, string>; retain?: boolean; signal?: AbortSignalLike }): Promise<boolean>;
  /**
   * A request through the hub: resolves with the first reply of the subscriptions it reaches
   * anywhere in the deployment, by {@link Bus.request}'s rules (`timeoutMs` at most 300000).
   * Rejects also with FORBIDDEN (the token may not publish to the topic) and UNAVAILABLE (the
   * connection dropped while it waited).
   */
  request<R = unknown, T = unknown>(topic: string, payload: T, options?: RequestOptions): Promise<R>;
  /** The replies of every subscription a request reaches, as {@link Bus.requestMany} yields them. */
  requestMany<R = unknown, T = unknown>(topic: string, payload: T, options?: RequestManyOptions): AsyncIterableIterator<R>;
  /** Resolves when every publish so far is acknowledged; rejects with CLOSED when close() came first. */
  flush(): Promise<void>;
  /**
   * Waits (up to timeoutMs, default 5000) for acknowledgements, closes, and returns what was never
   * acknowledged. With a persistent outbox those stay in its store for the next session, unless
   * `discard` is true.
   */
  close(options?: { timeoutMs?: number; discard?: boolean }): Promise<{ remaining: RemotePublish[] }>;
  stats(): RemoteStats;
}

/** Connects to an edgebus edge deployment (`https://…`, `wss://…`, or a full `/connect` URL). */
export function connect(url: string, options: ConnectOptions): RemoteBus;
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

/**
 * The default export (or `setup` export) of a handlers module. It may return a Promise: the worker
 * is ready once it settles (a rejection is WORKER_FAILED); other values are ignored.
 */
export type ShardSetup<D = unknown> = (bus: ShardSubscriber, context: ShardContext<D>) => unknown;

/** A worker the `worker` option of ShardedBus returns: a module Web Worker, or a Node worker_threads Worker. */
export interface ShardWorker {
  postMessage(message: any, transfer?: any): void;
  terminate(): unknown;
}

export interface ShardedBusOptions<D = unknown> {
  /** URL of the handlers module each worker imports (an absolute path also works in Node). Exclusive with `worker`. */
  handlers?: string | { readonly href: string };
  /**
   * Starts one shard's worker (called once per shard, and for each replacement): a script of the app,
   * bundled by its bundler, that imports the handlers and calls {@link serveShard}. Exclusive with `handlers`.
   */
  worker?: () => ShardWorker;
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
  /**
   * Handler timeout inside the workers (ms). A worker blocked in a handler past it (plus a grace) is
   * replaced; its running messages are reported as HANDLER_TIMEOUT and sent again (maxRedeliveries).
   */
  timeoutMs?: number;
  /** How many times a message that was running when its worker died or was blocked is sent again (default 3). */
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
  /** Messages whose handler blocked the worker past timeoutMs (each time; the worker was replaced). */
  timedOut: number;
  /** Publish → finished, on the main thread's clock. */
  latency: LatencySummary;
}

export interface ShardedBusStats {
  /** Requests made on the main thread: `failed` counts HANDLER_FAILED / HANDLER_TIMEOUT replies. */
  requests: { sent: number; replies: number; failed: number; timedOut: number; noResponders: number; cancelled: number; late: number; pending: number };
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
  timedOut: number;
  latency: LatencySummary;
  perShard: ShardStats[];
}

export interface ShardedPublishOptions extends Omit<PublishOptions, 'attempts'> {
  /** ArrayBuffers to move to the worker instead of copying (detached here after sending). */
  transfer?: ArrayBuffer[];
}

/**
 * Handlers in Web Workers (browsers) or worker_threads (Node): messages of one key (or, without a
 * key, of one topic) go to one worker and are handled in publish order. Not available in
 * Cloudflare Workers (UNSUPPORTED): shard across Durable Objects with the edge hub there.
 */
/** Runs this worker (one the `worker` option of ShardedBus started) as a shard, with the handlers `setup` subscribes. */
export function serveShard<D = unknown>(setup: ShardSetup<D>): void;

/** Where a ShardedBus's workers get their handlers: one of `handlers` and `worker`, not both. */
export type ShardedBusSource =
  | { handlers: string | { readonly href: string }; worker?: undefined }
  | { worker: () => ShardWorker; handlers?: undefined };

export class ShardedBus<D = unknown> {
  constructor(options: ShardedBusOptions<D> & ShardedBusSource);
  readonly workers: number;
  /** Whether close() or terminate() was called (or the workers could not start). */
  readonly closed: boolean;
  /** Resolves once every worker has loaded the handlers module; rejects with WORKER_FAILED. */
  readonly ready: Promise<void>;
  /** Main-thread subscriptions to system topics only (`$errors`). */
  subscribe(pattern: string, handler: Handler<ShardErrorEvent>, options?: SubscribeOptions & { signal?: AbortSignalLike }): Subscription;
  /** {@link Bus.once} on a system topic (`$errors`). */
  once(pattern: string, options?: OnceOptions<ShardErrorEvent>): Promise<Message<ShardErrorEvent>>;
  /** {@link Bus.stream} on a system topic (`$errors`). */
  stream(pattern: string, options?: StreamOptions): MessageStream<ShardErrorEvent>;
  /** False when dropped as a duplicate or by dropNewest. Throws DATA_CLONE for uncloneable payloads. */
  publish<T = unknown>(topic: string, payload: T, options?: ShardedPublishOptions): boolean;
  publishBatch<T = unknown>(topic: string, payloads: readonly T[], options?: PublishBatchOptions): number;
  publishAsync<T = unknown>(topic: string, payload: T, options?: ShardedPublishOptions & { signal?: AbortSignalLike }): Promise<boolean>;
  /**
   * A request to the worker of its key (or topic): resolves with the first reply of the handlers
   * there (a handler's return value, or `message.reply`). Rejects as {@link Bus.request} does
   * (the worker's error as `cause` of HANDLER_FAILED), with WORKER_CRASHED when its worker died
   * more often than `maxRedeliveries` allows (it is redelivered like any message until then), and
   * QUEUE_FULL when its shard has no room.
   */
  request<R = unknown, T = unknown>(topic: string, payload: T, options?: RequestOptions & { transfer?: ArrayBuffer[] }): Promise<R>;
  /** Resolves when everything published so far has been handled (ABORTED when `signal` aborts first). */
  drain(options?: { signal?: AbortSignalLike }): Promise<void>;
  /** Later publishes throw CLOSED; drains, then stops the workers. */
  close(): Promise<void>;
  /** Stops the workers at once; returns how many messages were abandoned (also in stats()). */
  terminate(): number;
  stats(): ShardedBusStats;
}
