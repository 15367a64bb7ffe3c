// Bus: the JavaScript driver of the WebAssembly core.
//
// The core (Rust, compiled to wasm) owns routing, queues, per-key lanes, batching, dedupe, timers
// and statistics. This driver keeps what must stay in JavaScript: the handlers, the message
// envelopes (payloads never enter wasm), and the hot path. Publishing to subscriptions that are
// idle calls their handlers directly, with no boundary crossing at all; everything else (busy or
// async subscriptions, batches, TTL waits, overflow) goes through the core, which hands work back
// in one flat record array per round.

import { printsAs } from '../shared/inspect.js';
import { EdgebusError, errorText, fail, fromCore } from '../shared/errors.js';
import {
  raw, ready, OVERFLOW, ACCEPTED, DUPLICATE, MUST_WAIT, QUIET, REC_DELIVER, REC_BATCH, REC_TIMED_OUT, REC_IDLE,
  REC_ROOM, REC_RELEASE, REC_CLAIMED, REC_DEAD, REC_FAILED, REC_RETIRED, REC_REQUEST_ENDED, REC_NUMBERED, REC_GAPS, SUB_OPTION, SUB_OPTION_COUNT,
  ANSWER_REPLY, ANSWER_REPLY_LAST, ANSWER_FAILED, ANSWER_FAILED_LAST, ANSWER_DECLINED, ANSWER_DECLINED_LAST,
  ANSWER_COMPLETE_LAST, ANSWER_DECLINED_FAILED_LAST,
  KIND_REPLY, KIND_FAILURE, KIND_DECLINE,
} from '../shared/core.js';
import {
  COUNT, DURATION, EMPTY_OPTIONS, checkClock, checkHandler, checkString, describe, functionOption, numberOption, overflowOption,
  parseBackoff, parseBatch, parseDedupe, parseLogs, parseOnceOptions, parsePublishOptions, parseReplay, parseRequestOptions,
  signalOption, arraySnapshot, numberValue, wantsMessage,
  snapshot,
  isAborted, abortReason, addAbortListener, removeAbortListener,
} from '../shared/validate.js';
import { MessageStream } from './stream.js';
import { PendingRequest, REQUEST, RESPONSE, failedReplies, responderMessage } from './requests.js';
import { steadyClock, systemClock } from '../shared/clock.js';
import { wasmWords, writeAscii } from '../shared/memory.js';
import { checkPattern, checkTopic } from '../shared/topics.js';

// The longest delay a JavaScript host timer takes (longer ones fire at once, with a warning).
const MAX_TIMER_MS = 2 ** 31 - 1;
const NO_COMPLETIONS = new Uint32Array(0);
const NO_WORDS = NO_COMPLETIONS; // final words of a subscription that counted nothing
const NO_FLAGS = new Uint8Array(0);
const NO_NUMBERS = new Float64Array(0); // a subscription with every default option

const PUBLISH_OPTIONS = ['id', 'key', 'ttlMs', 'headers', 'priority', 'notBefore', 'attempts', 'retain'];
const BATCH_PUBLISH_OPTIONS = ['ids', 'key', 'ttlMs', 'headers', 'priority', 'notBefore'];

// The entry of a cached route (see _resolve) is one array: [route, publishes counted on it, its
// place in the bus's _dirty list while that count is not 0, handler…], the handlers only when the
// route is plain (all of them take only the payload). The direct path reads nothing else, so a
// publish to a plain route touches one object besides the bus. A subscription change makes an
// entry stale (STALE in the place of its _dirty index, no handlers): it stays in the cache, and
// its next publish asks the core for the route again by the topic's handle (see _reroute).
const PLAIN_ROUTE = 0;
const PLAIN_SENT = 1;
const PLAIN_DIRTY_AT = 2;
const PLAIN_FNS = 3;
const STALE = -2;
// Put in a plain route's array in place of the handler after the running one when the route is
// folded while _deliverPlain calls it (see _count): calling it returns STOPPED, which hands the
// rest of the publish to _deliverDirect. So the loop checks nothing per handler but the result.
const STOPPED = Object.freeze({});
const STOP = () => STOPPED;

/** The `k` final words of a retired subscription at `w[at…]`, copied (none: undefined). */
function finalWords(w, at, k) {
  if (k === 0) return undefined;
  const words = new Array(k);
  for (let i = 0; i < k; i++) words[i] = w[at + i];
  return words;
}

// UTF-8 length without allocating, as TextEncoder would encode the string: a surrogate pair is
// 4 bytes, a lone surrogate 3 (it becomes U+FFFD).
function utf8Length(s) {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) { n += 4; i++; }
    else n += 3;
  }
  return n;
}

/**
 * Bytes a payload counts for in a batch's maxBytes, unless the bus is given `sizeOf`. Never
 * throws: a payload that cannot be read (a revoked Proxy, a throwing getter or toJSON, a cycle)
 * counts as 0.
 */
function defaultSizeOf(p) {
  if (typeof p === 'string') return utf8Length(p);
  if (p === null || p === undefined) return 0;
  if (typeof p === 'object') {
    try {
      if (typeof p.byteLength === 'number' && p.byteLength >= 0) return p.byteLength;
      if (typeof p.size === 'number' && p.size >= 0 && typeof p.arrayBuffer === 'function') return p.size;
      const json = JSON.stringify(p);
      return json === undefined ? 0 : utf8Length(json);
    } catch {
      return 0;
    }
  }
  return 8;
}

/**
 * The bytes `sizeOf` gives a payload: a number ≥ 0 (a fraction counts as the next whole byte,
 * Infinity is over any limit); anything else is INVALID_OPTION, before anything is published.
 */
/** What a publish's `retain` asks of the core: 0 nothing, 1 keep it as the retained value, 2 clear it (`undefined` published). */
function retainCode(o, payload) {
  if (o.retain !== true) return 0;
  return payload === undefined ? 2 : 1;
}

function measure(sizeOf, payload) {
  const n = sizeOf(payload);
  if (typeof n !== 'number' || !(n >= 0)) {
    fail('INVALID_OPTION', `option \`sizeOf\` must return a number of bytes ≥ 0, got ${describe(n)}`);
  }
  return n;
}

const BUS_OPTIONS = ['dedupe', 'maxQueue', 'overflow', 'timeoutMs', 'onError', 'clock', 'sizeOf', 'retention', 'retain', 'history'];
const SUB_OPTIONS = ['concurrency', 'maxQueue', 'overflow', 'timeoutMs', 'batch', 'group', 'maxAttempts', 'backoff', 'ackTimeoutMs', 'signal',
  'replay', 'onGap'];
const ASYNC_PUBLISH_OPTIONS = [...PUBLISH_OPTIONS, 'signal'];
const GROUP_ONLY = ['maxAttempts', 'backoff', 'ackTimeoutMs'];
const CLAIM_OPTIONS = ['maxSize', 'maxWaitMs'];
const RESTORE_FIELDS = ['topic', 'seq', 'payload', 'publishedAt', 'retained', 'id', 'key', 'headers', 'ttlMs'];
const RESTORE_OPTIONS = ['id', 'key', 'headers', 'ttlMs'];
/**
 * The options of a request tracked by another core (_publishForeignRequest): a request id no
 * request of this core has (index 2^32 - 1, which its table never reaches), so that the core
 * takes the message as a request's.
 */
const FOREIGN_REQUEST_OPTIONS = Object.freeze({ request: (2 ** 32 - 1) * 2 ** 32 });

/** A gap as handlers see it, from the core's flat words at `i` (see _reportGaps). */
function gapOf(flat, i, s) {
  const gap = { topic: flat[i + 2], fromSeq: undefined, toSeq: flat[i + 4], pattern: s?._pattern, subscription: s?._id };
  if (flat[i + 3] >= 0) gap.fromSeq = flat[i + 3];
  return gap;
}

/** The core's code of the overflow option, or -1 when not given. */
function overflowCode(o, where) {
  const name = overflowOption(o, where);
  return name === undefined ? -1 : OVERFLOW[name];
}

/**
 * A subscription, and the bus's record of it: one object each (a separate record cost a second
 * object per subscription). The fields without an underscore are the bus's working state; what
 * most subscriptions never have (a group, batching, a timeout, final statistics) sits in `_rare`,
 * made when first needed, and is read through the accessors below.
 */
export class Subscription {
  constructor(bus, index, gen, id, pattern, handler, group, wants, batch, timeoutMs) {
    this._bus = bus;
    this.index = index;         // the core's slot and generation
    this.gen = gen;
    this._id = id;
    this._pattern = pattern;
    this.handler = handler;
    this.wants = wants;         // the handler takes the envelope too
    this._active = true;
    this.busy = false;          // the core has work for it: not on the direct path
    this.delivered = 0;         // direct deliveries and failures not yet told to the core
    this.failed = 0;
    this._rare = group === undefined && !batch && timeoutMs === undefined
      ? undefined
      : { group, batch, timeoutMs, final: undefined, leave: undefined };
  }
  /** Position in subscription order. */
  get id() { return this._id; }
  get pattern() { return this._pattern; }
  get active() { return this._active; }
  /** The queue group it belongs to (a work queue), or undefined. */
  get group() { return this._rare?.group; }
  get _group() { return this._rare?.group; }
  get batch() { return this._rare !== undefined && this._rare.batch; }
  get timeoutMs() { return this._rare?.timeoutMs; }
  /** Final statistics (while leaving: the last ones read). */
  get final() { return this._rare?.final; }
  set final(v) {
    if (this._rare === undefined) this._rare = { group: undefined, batch: false, timeoutMs: undefined, final: v, leave: undefined };
    else this._rare.final = v;
  }
  /** Called once when it leaves (its `signal`'s listener taken back). */
  get _leave() { return this._rare?.leave; }
  set _leave(f) {
    if (this._rare === undefined) this._rare = { group: undefined, batch: false, timeoutMs: undefined, final: undefined, leave: f };
    else this._rare.leave = f;
  }
  /** Stops every delivery not yet started. Returns false if already unsubscribed. */
  unsubscribe() { return this._bus._unsubscribe(this); }
  stats() { return this._bus._subStats(this); }
  /** Its public state (not the bus it belongs to). */
  toJSON() {
    const o = { pattern: this._pattern, id: this._id, active: this._active };
    if (this.group !== undefined) o.group = this.group;
    return o;
  }
}

export class Bus {
  constructor(options) {
    printsAs(Bus, 'Bus');
    printsAs(Subscription, 'Subscription');
    ready();
    const o = options === undefined ? EMPTY_OPTIONS : snapshot(options, BUS_OPTIONS, 'options');
    const dedupe = parseDedupe(o.dedupe, 'dedupe');
    const dedupeIds = dedupe === undefined ? 0 : dedupe.maxIds;
    const dedupeAge = dedupe === undefined ? 0 : dedupe.maxAgeMs ?? 0;
    const maxQueue = numberOption(o, 'maxQueue', 'options', COUNT);
    const overflow = overflowCode(o, 'options');
    const timeoutMs = numberOption(o, 'timeoutMs', 'options', DURATION);
    let retentionIds = 10000;
    let retentionAge = 3600000;
    if (o.retention !== undefined) {
      const r = snapshot(o.retention, ['maxIds', 'maxAgeMs'], 'retention');
      retentionIds = numberOption(r, 'maxIds', 'retention', { integer: true, min: 0, max: 2 ** 32 - 1 }) ?? retentionIds;
      retentionAge = numberOption(r, 'maxAgeMs', 'retention', DURATION) ?? retentionAge;
    }
    const logs = parseLogs(o.retain, o.history);
    if (logs.patterns !== undefined) for (const p of logs.patterns) checkPattern(p);
    this._onError = functionOption(o, 'onError', 'options');
    this._defaultTimeout = timeoutMs;
    this._sizeOf = functionOption(o, 'sizeOf', 'options') ?? defaultSizeOf;
    const clock = checkClock(o.clock, 'clock') ?? systemClock;
    this._clock = clock === systemClock ? clock : steadyClock(clock);
    this._setTimer = clock.setTimeout ? clock.setTimeout.bind(clock) : globalThis.setTimeout.bind(globalThis);
    this._clearTimer = clock.clearTimeout ? clock.clearTimeout.bind(clock) : globalThis.clearTimeout.bind(globalThis);
    try {
      this._core = new raw.WasmBroker(
        dedupeIds, dedupeAge, maxQueue ?? 10000, overflow, timeoutMs ?? 0,
        retentionIds, retentionAge, Math.floor(Math.random() * 2 ** 53), logs.numbers, logs.patterns?.join(' '),
      );
    } catch (e) {
      throw fromCore(e);
    }
    this._dedupe = dedupeIds > 0;
    this._dedupeAged = dedupeAge > 0 && dedupeAge !== Infinity; // ids expire: checks need the time
    // Short ASCII topics are resolved through buffers the core lends (no string crossing).
    [this._topicPtr, this._topicRoom] = this._core.topic_scratch();
    this._subs = [];            // by core slot index
    // Topic → the entry of its cached route (see PLAIN_ROUTE). A Map, not an object: looking up
    // a topic not in it (every topic unique) stays a hash probe, where an object's keyed lookup
    // of a fresh string goes through the runtime (several hundred ns).
    this._routes = new Map();
    // The entry published to last, ahead of the Map (one comparison for a topic published over
    // and over); dropped with the Map's entry. Its direct publishes are counted in _lastSent
    // (a field of the bus costs less to bump than an element of the entry) until _flushLast.
    this._lastTopic = undefined;
    this._lastEntry = undefined;
    this._lastSent = 0;
    this._entryOf = [];              // topic handle → its entry in the cache above
    this._topicsGen = 0;        // generation of the core's topic table the cached handles belong to
    this._leaving = new Map();  // unsubscribed, waiting for their final stats from the core
    this._coreWaiting = false;  // the core was told a publisher waits for room
    this._room = false;         // the core reported room since the last admission attempt
    this._leftWaiting = [];     // publishAsync calls a close() found waiting for good
    this._depth = 0;            // > 0 while handlers run
    this._needPump = false;
    this._pumpQueued = false;
    this._completions = [];
    this._recs = new Uint32Array(64); // the records of the pump being run (see _pump)
    this._reasons = [];         // error messages of failed completions, in order
    this._inflight = [];        // by delivery index: { dg, s, item, final } of a running promise
    this._inflightCount = 0;
    this._slots = [];
    this._freeSlots = [];
    this._busy = 0;             // subscriptions the core has work for
    this._rounds = 0;           // pump rounds that reported completions or ran records (see _startsNow)
    this._published = 0;        // published directly, not yet told to the core
    this._dirty = [];           // plain routes with publishes counted on them, see _fold
    // The plain route _deliverPlain calls the handlers of, while _at (the index in it of the
    // handler it is at) is not 0; kept after (not stored for each publish: see _deliverPlain).
    this._running = undefined;
    this._at = 0;
    this._stopped = undefined;  // the handler STOP stands in for (see _count)
    this._waiters = [];         // publishAsync calls waiting for room
    this._admitting = false;
    this._idleWaiters = [];
    this._timer = undefined;
    this._timerAt = Infinity;
    this._timerHolds = true;    // the armed timer is ref'd (see _afterPump)
    this._requests = new Map(); // request id → its PendingRequest, until it ends
    this._gapHandlers = new Map(); // subscription index → its onGap
    this._waits = new Set();    // once() calls and streams: each ended by close() (called with CLOSED)
    this._closing = false;
    this._closed = false;
  }

  get closed() { return this._closing; }

  /** Its public state: active subscriptions, and whether it is closed. */
  toJSON() {
    let subscriptions = 0;
    for (const s of this._subs) if (s !== undefined && s._active) subscriptions++;
    return { subscriptions, closed: this._closing };
  }

  // ----- subscribing ---------------------------------------------------------------------

  subscribe(pattern, handler, options) {
    if (this._closing) fail('CLOSED', 'bus is closed');
    if (options === undefined && typeof handler === 'function') {
      // Every default (the usual call): a short ASCII pattern (nothing for JavaScript to check)
      // goes through the topic buffer and the answer `[n, index, gen, id low, id high, stale
      // topic handle…]` is read in the core's memory; no option to read, no object to cross.
      const n = writeAscii(pattern, this._topicPtr, this._topicRoom);
      if (n >= 0) {
        const wants = wantsMessage(handler);
        // 0: refused (the error is kept in the core until taken).
        const at = this._core.subscribe_scratch(n) >>> 2;
        if (at === 0) throw fromCore(this._core.take_error());
        const w = wasmWords();
        const rec = new Subscription(this, w[at + 1], w[at + 2], w[at + 3] + w[at + 4] * 4294967296, pattern,
          handler, undefined, wants, false, this._defaultTimeout);
        this._subs[rec.index] = rec;
        this._dropRoutes(w, at + 5, at + 1 + w[at]);
        return rec;
      }
    }
    checkString(pattern, 'INVALID_PATTERN', 'pattern');
    checkHandler(handler);
    const wants = wantsMessage(handler);
    const o = options === undefined ? EMPTY_OPTIONS : snapshot(options, SUB_OPTIONS, 'options');
    const signal = signalOption(o.signal);
    if (signal !== undefined && isAborted(signal)) {
      throw new EdgebusError('ABORTED', 'the subscription\'s signal was aborted before it subscribed', { cause: abortReason(signal) });
    }
    const concurrency = numberOption(o, 'concurrency', 'options', { integer: true, min: 1, max: 2 ** 32 - 1 }) ?? 1;
    const maxQueue = numberOption(o, 'maxQueue', 'options', COUNT);
    const overflow = overflowCode(o, 'options');
    const group = o.group;
    if (group !== undefined) {
      if (typeof group !== 'string') fail('INVALID_OPTION', `option \`group\` must be a string, got ${describe(group)}`);
      if (o.timeoutMs !== undefined) {
        fail('INVALID_OPTION', 'option `timeoutMs` does not apply to a queue group member: use `ackTimeoutMs`');
      }
      if (o.batch !== undefined && o.batch !== false && o.batch !== true) o.batch = snapshot(o.batch, CLAIM_OPTIONS, 'batch');
    } else {
      for (const k of GROUP_ONLY) {
        if (o[k] !== undefined) fail('INVALID_OPTION', `option \`${k}\` applies only with \`group\` (a work queue)`);
      }
    }
    const maxAttempts = numberOption(o, 'maxAttempts', 'options', { integer: true, min: 1, max: 1000 });
    const backoff = parseBackoff(o.backoff, 'backoff');
    const timeoutMs = numberOption(o, group === undefined ? 'timeoutMs' : 'ackTimeoutMs', 'options', DURATION);
    const batch = o.batch === undefined || o.batch === false ? undefined : parseBatch(o.batch, 'batch');
    const replay = o.replay === undefined ? undefined : parseReplay(o.replay);
    if (replay?.topics !== undefined) for (const t of replay.topics) checkTopic(t);
    const onGap = functionOption(o, 'onGap', 'options');
    if (onGap !== undefined && group !== undefined) {
      fail('INVALID_OPTION', 'option `onGap` hears of the gaps of a replay, which a work queue does not take');
    }
    // Numbers in the core's order, copied from the snapshot above (nothing the caller holds;
    // NaN: not given); none at all when no option was given.
    let args = NO_NUMBERS;
    if (o !== EMPTY_OPTIONS) {
      args = new Float64Array(SUB_OPTION_COUNT).fill(NaN);
      const put = (name, value) => { if (value !== undefined) args[SUB_OPTION[name]] = value; };
      put('concurrency', concurrency);
      put('maxQueue', maxQueue);
      if (overflow !== -1) put('overflow', overflow);
      put('timeoutMs', timeoutMs);
      put('maxAttempts', maxAttempts);
      if (backoff !== undefined) {
        put('backoff', 1);
        put('backoff.initialMs', backoff.initialMs);
        put('backoff.maxMs', backoff.maxMs);
      }
      if (batch !== undefined) {
        put('batch', 1);
        put('batch.maxSize', batch.maxSize);
        put('batch.maxBytes', batch.maxBytes);
        put('batch.maxWaitMs', batch.maxWaitMs);
        put('batch.maxAttempts', batch.maxAttempts);
        put('batch.backoff.initialMs', batch.backoff?.initialMs);
        put('batch.backoff.maxMs', batch.backoff?.maxMs);
      }
      if (replay !== undefined) {
        put('replay', replay.kind);
        put('replay.n', replay.n);
        put('replay.sinceMs', replay.sinceMs);
        put('replay.now', this._clock.now());
      }
    }
    let ids;
    try {
      ids = this._core.subscribe(pattern, args, group, replay?.topics, replay?.seqs === undefined ? undefined : new Float64Array(replay.seqs));
    } catch (e) {
      throw fromCore(e);
    }
    const rec = new Subscription(this, ids[0], ids[1], ids[2], pattern, handler, group,
      wants, batch !== undefined, timeoutMs ?? this._defaultTimeout);
    this._subs[rec.index] = rec;
    this._dropRoutes(ids, 3);
    if (onGap !== undefined) this._gapHandlers.set(rec.index, onGap);
    if (signal !== undefined) {
      const onAbort = () => rec.unsubscribe();
      addAbortListener(signal, onAbort);
      rec._leave = () => removeAbortListener(signal, onAbort);
    }
    // Messages waiting in the group go to the new member at once.
    if (group !== undefined) this._pump();
    if (replay !== undefined) {
      // Replayed messages wait in its queue: handed to its handler once subscribe has returned
      // (a pump on the next microtask), so the handler can use the subscription, and before
      // anything published later, which goes behind them (it counts as busy meanwhile).
      const st = this._core.subscription_stats(rec.index, rec.gen);
      if (st.queued + st.inFlight > 0 && !rec.busy) {
        rec.busy = true;
        this._busy++;
      }
      this._schedulePump();
    }
    return rec;
  }

  _unsubscribe(rec) {
    if (!rec._active) return false;
    rec._active = false;
    this._gapHandlers.delete(rec.index);
    const leave = rec._leave;
    if (leave !== undefined) {
      rec._leave = undefined;
      leave();
    }
    // Its direct deliveries reach the core before it hands out its final statistics: those
    // counted on it go with the call; those counted on cached routes (_dirty) are counted in it
    // when its stale routes (the cached ones it was on) are dropped, then go with `retire`.
    this._flushLast();
    const more = this._dirty.length > 0;
    // `[n, state, pending, k, final word × k, stale topic handle…]` in the core's memory. The
    // core reports the final statistics when the last delivery settles (REC_RETIRED; until
    // then stats() asks the core), or at once when nothing is running (state 2, or 3 with
    // `retire`): then its final words are kept as they are (none when it counted nothing), and
    // made into statistics only if stats() asks.
    this._rounds++; // (see _startsNow: what the subscription held is let go)
    let at = this._core.unsubscribe(rec.index, rec.gen, rec.delivered, rec.failed, more) >>> 2;
    rec.delivered = 0;
    rec.failed = 0;
    let w = wasmWords();
    const state = w[at + 1];
    let pending = w[at + 2] === 1;
    const k = w[at + 3];
    let words = finalWords(w, at + 4, k);
    this._dropRoutes(w, at + 4 + k, at + 1 + w[at]);
    if (state === 3) {
      // `[n, pending, k, final word × k]`.
      at = this._core.retire(rec.index, rec.gen, rec.delivered, rec.failed) >>> 2;
      w = wasmWords();
      pending = w[at + 1] === 1;
      words = finalWords(w, at + 3, w[at + 2]);
    } else if (rec.delivered > 0 || rec.failed > 0) {
      this._core.record_direct(rec.index, rec.gen, rec.delivered, rec.failed);
    }
    rec.delivered = 0;
    rec.failed = 0;
    if (state >= 2) {
      if (words !== undefined) rec.final = words;
    } else {
      this._leaving.set(rec.index * 4294967296 + rec.gen, rec);
    }
    if (rec.busy) { rec.busy = false; this._busy--; }
    // Nothing for a round to hand out: no need to run one.
    if (pending || this._completions.length > 0 || this._waiters.length > 0 || this._idleWaiters.length > 0) {
      this._pump();
    }
    return true;
  }

  /** Whether a subscription that left has its final statistics (it is no longer leaving). */
  _retired(rec) {
    return !rec._active && this._leaving.get(rec.index * 4294967296 + rec.gen) !== rec;
  }

  _subStats(rec) {
    if (!rec._active) {
      if (!this._retired(rec)) {
        const st = this._core.subscription_stats(rec.index, rec.gen);
        if (st !== undefined) rec.final = st;
        else this._takeRetired(); // retired by a pass whose records are not read yet
      } else if (rec.final === undefined || Array.isArray(rec.final)) {
        // It retired at unsubscribe: its statistics are made from its final words when asked.
        rec.final = this._core.final_stats(rec._id, rec._pattern, rec._group, rec.final ?? NO_WORDS);
      }
      return rec.final;
    }
    this._flushCounters();
    return this._core.subscription_stats(rec.index, rec.gen);
  }

  /**
   * Counts, for a subscription that left, a message it was not handed (`cancelled`) or a
   * failure of a handler that unsubscribed itself (`failed`). The core counts them; once it
   * reported the final statistics, the copy kept here follows.
   */
  _countLeft(s, cancelled, failed) {
    if (cancelled > 0) this._core.record_cancelled(s.index, s.gen, cancelled);
    if (failed > 0) this._core.record_direct(s.index, s.gen, 0, failed);
    if (this._retired(s)) {
      const final = this._subStats(s);
      final.cancelled += cancelled;
      final.failed += failed;
    }
  }

  // ----- publishing ----------------------------------------------------------------------

  _resolve(topic) {
    // `r[at…end)`: [handle index, handle gen, known, (sub index, sub gen)…], in the core's
    // memory for a short ASCII topic, else in an array of its own.
    let r;
    let at = 0;
    let end;
    try {
      const n = writeAscii(topic, this._topicPtr, this._topicRoom);
      if (n >= 0) {
        const words = this._core.resolve_scratch(n);
        at = this._core.route_ptr() >>> 2;
        end = at + words;
        r = wasmWords();
      } else {
        checkString(topic, 'INVALID_TOPIC', 'topic');
        r = this._core.resolve(topic);
        end = r.length;
      }
    } catch (e) {
      throw fromCore(e);
    }
    const gen = r[at + 1];
    if (gen !== this._topicsGen) {
      // The core started a new topic table: every cached handle is stale.
      this._clearRoutes();
      this._topicsGen = gen;
    }
    return this._cache(r, at, end, topic, undefined);
  }

  /**
   * The route of a stale cache entry, asked again of the core by the topic's handle (no topic
   * to write or look up); its entry is filled in anew. The topic is resolved instead when the
   * core's table started anew since (the handle is no longer the topic's).
   */
  _reroute(entry, topic) {
    const old = entry[PLAIN_ROUTE];
    const words = this._core.reroute(old.handle, old.gen);
    if (words === 0) return this._resolve(topic);
    const at = this._core.route_ptr() >>> 2;
    return this._cache(wasmWords(), at, at + words, topic, entry);
  }

  /**
   * The route of the core's answer `r[at…end)` (see _resolve), cached when the topic is known:
   * in `entry` when given (a stale one), else in a new entry.
   */
  _cache(r, at, end, topic, entry) {
    const handle = r[at];
    const gen = r[at + 1];
    const subs = [];
    let batch = false;
    let queued = false;
    for (let i = at + 3; i < end; i += 2) {
      const s = this._subs[r[i]];
      if (s !== undefined && s.gen === r[i + 1]) {
        subs.push(s);
        if (s.batch) batch = true;
      } else {
        // A queue group: its members claim from the core, never directly.
        queued = true;
      }
    }
    // `batch`: sizes are needed; `tracked`: the core numbers and keeps its messages (a retained
    // value or history: sizes are needed too); `queued`: it always goes through the core.
    // `refused`, `refusedKeyed`: the `_rounds` count at which the core last said a message
    // (without a key, with one) would not start at once (see _direct).
    const tracked = (r[at + 2] & 2) !== 0;
    const route = { handle, gen, topic, subs, batch, tracked, queued: queued || batch, refused: -1, refusedKeyed: -1 };
    // Cached from the topic's second publish on (the core says when it knows the topic): a
    // topic published once is not worth an entry.
    if ((r[at + 2] & 1) === 1) {
      if (entry === undefined) {
        entry = [route, 0, -1];
        this._routes.set(topic, entry);
        this._entryOf[handle] = entry;
      } else {
        // Stale: counted nothing since (folded when it went stale), handlers none.
        entry[PLAIN_ROUTE] = route;
        entry[PLAIN_DIRTY_AT] = -1;
      }
      // Handlers that take only the payload are called from the entry (see _deliverPlain).
      let plain = !route.queued && !tracked && subs.length > 0;
      for (let i = 0; plain && i < subs.length; i++) plain = !subs[i].wants;
      if (plain) for (let i = 0; i < subs.length; i++) entry.push(subs[i].handler);
    }
    return route;
  }

  _clearRoutes() {
    this._fold(); // (with _lastSent)
    this._routes.clear();
    this._entryOf = [];
    this._lastTopic = undefined;
    this._lastEntry = undefined;
    if (this._at === 0) this._running = undefined;
  }

  /**
   * Drops the cached routes of the topic handles `handles[from…]`: those the core says a
   * subscription change made stale (the core finds them; the rest of the cache stays).
   */
  _dropRoutes(handles, from, end = handles.length) {
    this._flushLast();
    for (let i = from; i < end; i++) {
      const entry = this._entryOf[handles[i]];
      // Not cached, or stale already (and folded then).
      if (entry === undefined || entry[PLAIN_DIRTY_AT] === STALE) continue;
      // Its counts go to its subscriptions now: nothing publishes on it any more.
      if (entry[PLAIN_SENT] > 0) this._foldOne(entry);
      if (entry === this._runningPlain()) {
        // _deliverPlain goes on with its route and handlers: it leaves the cache instead.
        const topic = entry[PLAIN_ROUTE].topic;
        this._routes.delete(topic);
        this._entryOf[handles[i]] = undefined;
        if (topic === this._lastTopic) {
          this._lastTopic = undefined;
          this._lastEntry = undefined;
        }
      } else {
        entry[PLAIN_DIRTY_AT] = STALE;
        if (entry.length > PLAIN_FNS) entry.length = PLAIN_FNS;
        if (entry === this._running) this._running = undefined; // (kept from an earlier publish)
      }
    }
  }

  /** The cached route of a topic (validated on first use). */
  _route(topic) {
    return this._routeOf(this._routes.get(topic), topic);
  }

  /** The route of `topic` from its cache entry: resolved when there is none, asked again when stale. */
  _routeOf(entry, topic) {
    if (entry === undefined) return this._resolve(topic);
    return entry[PLAIN_DIRTY_AT] === STALE ? this._reroute(entry, topic) : entry[PLAIN_ROUTE];
  }

  /**
   * Whether a message on `route` (with a key or not) may be handed to its handlers right here:
   * at once when every subscription is idle; while one is busy, the core says whether the
   * message would start now anyway (a free slot of its concurrency, nothing waiting).
   */
  _direct(route, keyed) {
    if (route.queued || this._depth !== 0) return false;
    if (this._busy === 0) return true;
    const subs = route.subs;
    for (let i = 0; i < subs.length; i++) {
      if (subs[i].busy) return this._startsNow(route, keyed);
    }
    return true;
  }

  /**
   * The core's answer to whether a message on `route` starts at once. A refusal is remembered
   * until the next pump round that reported completions or ran records: only such a round can
   * free a slot or empty a queue (a publish through the core only adds work), so a stream of
   * publishes to a subscription whose slots are all taken asks the core once. (A refusal
   * remembered too long costs the direct path, never correctness: the core's own path then
   * takes the message.) A refusal without a key holds for a message with one too.
   */
  _startsNow(route, keyed) {
    const round = this._rounds;
    if (route.refused === round || (keyed && route.refusedKeyed === round)) return false;
    if (this._core.starts_now(route.handle, route.gen, keyed)) return true;
    if (keyed) route.refusedKeyed = round;
    else route.refused = round;
    return false;
  }

  /** Publishes; returns false when the idempotence filter dropped it as a duplicate. */
  publish(topic, payload, options) {
    // The hot path: a known topic with a plain route, no options, idle subscriptions. (Only
    // strings are keys.) The topic published to last is compared first (its entry is undefined
    // with it), then the cache is looked up.
    let entry = this._lastEntry;
    if (topic !== this._lastTopic) {
      entry = this._routes.get(topic);
      if (entry !== undefined) this._lookedUp(topic, entry);
    }
    if (entry !== undefined && this._plain(entry, options)) {
      if (entry === this._lastEntry) this._lastSent++;
      else this._countOn(entry, 1);
      return this._deliverPlain(entry, topic, payload);
    }
    return this._publishSlowly(entry, topic, payload, options);
  }

  /**
   * The cache had `entry` for `topic`, not the last topic. Published to twice in a row (by
   * _deliverPlain), it becomes the last topic's: compared first, its publishes counted on the
   * bus. Not done for every topic: two stores of objects per publish, and comparing strings
   * with the last topic, cost more than they save when topics vary (the last topic is dropped
   * then).
   */
  _lookedUp(topic, entry) {
    if (entry === this._running) {
      this._flushLast();
      this._lastTopic = topic;
      this._lastEntry = entry;
    } else if (this._lastTopic !== undefined) {
      this._flushLast();
      this._lastTopic = undefined;
      this._lastEntry = undefined;
    }
  }

  /** Whether a publish to the cached `entry` with `options` takes the direct path of its handlers. */
  _plain(entry, options) {
    // A plain route is never queued (see _resolve).
    return options === undefined && entry.length > PLAIN_FNS && this._depth === 0 && !this._closing &&
      (this._busy === 0 || this._direct(entry[PLAIN_ROUTE], false));
  }

  /** Moves the publishes counted in _lastSent onto their entry (see _fold). */
  _flushLast() {
    const sent = this._lastSent;
    if (sent === 0) return;
    this._lastSent = 0;
    this._countOn(this._lastEntry, sent);
  }

  /** Counts `sent` direct publishes on a plain route, listing it in _dirty with its first. */
  _countOn(plain, sent) {
    if (plain[PLAIN_SENT] === 0) plain[PLAIN_DIRTY_AT] = this._dirty.push(plain) - 1;
    plain[PLAIN_SENT] += sent;
  }

  _publishSlowly(entry, topic, payload, options) {
    if (this._closing) fail('CLOSED', 'bus is closed');
    // `publish` found no cached route, or a stale one: resolved at once (no second lookup).
    const route = this._routeOf(entry, topic);
    const o = parsePublishOptions(options, PUBLISH_OPTIONS);
    return this._publish(route, topic, payload, o, false) !== DUPLICATE;
  }

  /**
   * For a driver whose requests are tracked by another core (an edge hub's tracker): publishes
   * the message of such a request to the subscriptions `topic` matches, as `publish` does, and
   * tells the core it carries a request (the logs neither number nor keep it). Returns false when
   * the idempotence filter dropped it.
   */
  _publishForeignRequest(topic, payload) {
    if (this._closing) fail('CLOSED', 'bus is closed');
    return this._publish(this._route(topic), topic, payload, FOREIGN_REQUEST_OPTIONS, false) !== DUPLICATE;
  }

  /** One message, direct or through the core. Returns the core's verdict. */
  _publish(route, topic, payload, o, wait) {
    if (o.notBefore === undefined && this._direct(route, o.key !== undefined)) {
      // A tracked topic's message is numbered and kept by the core first (measured before its
      // id is recorded: a sizeOf that throws leaves the id free for the publish's retry); a
      // request's is not.
      const logged = (route.tracked || o.retain !== undefined) && o.request === undefined;
      const size = logged ? measure(this._sizeOf, payload) : 0;
      if (o.id !== undefined && this._dedupe && !this._checkId(o.id)) {
        return DUPLICATE;
      }
      const env = logged ? this._logDirect(route, topic, payload, o, size) : undefined;
      this._deliverDirect(route, topic, payload, o, 0, env);
      return ACCEPTED;
    }
    const env = this._envelope(topic, payload, o);
    const size = route.batch || route.tracked || o.retain === true ? measure(this._sizeOf, payload) : 0;
    // sizeOf (or an onError before) may have resolved topics enough to start a new table.
    if (route.gen !== this._topicsGen) route = this._route(topic);
    const slot = this._slot(env);
    let r;
    let quiet = false;
    try {
      r = this._core.publish(
        route.handle, route.gen, slot, o.id, o.key, o.ttlMs ?? 0,
        size, o.priority ?? 0, o.notBefore ?? -1, o.attempts ?? 0, env.publishedAt, wait,
        retainCode(o, payload), o.request ?? -1,
      );
      if (r >= QUIET) {
        r -= QUIET;
        // Nothing for a pump to hand out (the message waits in a queue): none is run, unless
        // one is owed or a waiting publish needs its round.
        quiet = !wait && !this._needPump;
      }
    } catch (e) {
      throw fromCore(e);
    } finally {
      // A retained value that came or went changes whether its topic's messages are tracked.
      if (o.retain !== undefined) this._dropRoutes(this._core.take_invalidated(), 0);
      if (!quiet) this._pump();
    }
    return r;
  }

  /**
   * Has the core number and keep a message on `route` that is about to be delivered directly
   * (a tracked topic's, or one published with `retain`); returns its envelope, with `seq`.
   */
  _logDirect(route, topic, payload, o, size = measure(this._sizeOf, payload)) {
    const env = this._envelope(topic, payload, o);
    // sizeOf may have resolved topics enough to start a new table.
    const handle = route.gen === this._topicsGen ? route : this._route(topic);
    const slot = this._slot(env);
    let r;
    try {
      r = this._core.log_direct(handle.handle, handle.gen, slot, o.id, o.key, o.ttlMs ?? 0, size,
        retainCode(o, payload), env.publishedAt);
    } catch (e) {
      throw fromCore(e);
    }
    // Its number × 4, + 2: cached routes went stale (a retained value came or went), + 1: slots
    // of messages no longer kept wait to be freed (by a pump, after the deliveries).
    const seq = Math.floor(r / 4);
    if (seq > 0) env.seq = seq;
    if ((r & 2) !== 0) this._dropRoutes(this._core.take_invalidated(), 0);
    if ((r & 1) !== 0) this._needPump = true;
    return env;
  }

  /** Records `id` in the bus's window (the core's); false for a duplicate. */
  _checkId(id) {
    const now = this._dedupeAged ? this._clock.now() : 0;
    const n = writeAscii(id, this._topicPtr, this._topicRoom);
    if (n < 0) return this._core.check_id(id, now);
    const r = this._core.check_id_scratch(n, now);
    if (r === 2) fail('INVALID_ARGUMENT', `id ${describe(id)} could not be read`);
    return r === 1;
  }

  _envelope(topic, payload, o) {
    return this._stamped(topic, payload, o, this._clock.now());
  }

  /** A message's envelope, published at `publishedAt`. */
  _stamped(topic, payload, o, publishedAt) {
    const env = { topic, payload, publishedAt, attempt: 1 };
    if (o.id !== undefined) env.id = o.id;
    if (o.key !== undefined) env.key = o.key;
    if (o.headers !== undefined) env.headers = o.headers;
    if (o.ttlMs !== undefined) env.ttlMs = o.ttlMs;
    return env;
  }

  _slot(env) {
    const slot = this._freeSlots.length > 0 ? this._freeSlots.pop() : this._slots.length;
    this._slots[slot] = env;
    return slot;
  }

  /**
   * The direct path of a plain route (its handlers take only the payload): calls them from the
   * route's array, and counts the publish once, on that array; _fold adds it to the
   * subscriptions' counters before anything reads or changes them. A fold while a handler runs
   * (it subscribed, unsubscribed, read stats) hands the rest of the publish to _deliverDirect,
   * which counts one by one.
   */
  _deliverPlain(plain, topic, payload) {
    const n = plain.length;
    let env;
    // No try/finally here (it costs on every publish): a handler's throw is caught below, and
    // the steps that may throw otherwise (_plainFailed, _plainResult) call _plainEscaped
    // before they rethrow. Stores of constants only where it can (publish found _depth 0; a
    // store of an object, or a field read and written back, is a cost per publish that shows).
    if (this._running !== plain) this._running = plain;
    this._depth = 1;
    for (let i = PLAIN_FNS; i < n; i++) {
      this._at = i;
      let r;
      try {
        r = plain[i](payload);
      } catch (err) {
        env = this._plainFailed(plain, i, err, env, topic, payload);
        continue;
      }
      if (r !== undefined) {
        if (r === STOPPED) {
          // The route was folded while handler i - 1 ran: the rest is counted one by one.
          plain[i] = this._unstop();
          this._at = 0;
          this._depth = 0;
          return this._deliverDirect(plain[PLAIN_ROUTE], topic, payload, EMPTY_OPTIONS, i - PLAIN_FNS, env);
        }
        env = this._plainResult(plain, i, r, env, topic, payload);
      }
    }
    this._at = 0;
    this._depth = 0;
    if (this._needPump) this._pump();
    return true;
  }

  /** The plain route _deliverPlain is calling the handlers of, if it is. */
  _runningPlain() {
    return this._at !== 0 ? this._running : undefined;
  }

  /** The handler STOP stood in for, forgotten. */
  _unstop() {
    const fn = this._stopped;
    this._stopped = undefined;
    return fn;
  }

  /**
   * A throw leaves _deliverPlain at its handler `_at`: the publish is counted for the handlers
   * up to it only (as _deliverDirect counts), and the bus is out of dispatch again.
   */
  _plainEscaped() {
    this._fold();
    if (this._stopped !== undefined) this._running[this._at + 1] = this._unstop();
    this._at = 0;
    this._depth = 0;
  }

  /** Handler `i` of _deliverPlain threw: counted and reported. Returns the envelope made. */
  _plainFailed(plain, i, err, env, topic, payload) {
    try {
      const s = plain[PLAIN_ROUTE].subs[i - PLAIN_FNS];
      if (s._active) s.failed++;
      else this._countLeft(s, 0, 1); // it unsubscribed itself, then threw
      if (env === undefined) env = this._envelope(topic, payload, EMPTY_OPTIONS);
      this._failed(err, env, s);
      return env;
    } catch (e) {
      this._plainEscaped();
      throw e;
    }
  }

  /** Handler `i` of _deliverPlain returned `r`: a promise is tracked. Returns the envelope made. */
  _plainResult(plain, i, r, env, topic, payload) {
    let thenable;
    try {
      thenable = r !== null && typeof r.then === 'function';
    } catch (err) {
      // A `then` that cannot be read fails the call as a throw would.
      return this._plainFailed(plain, i, err, env, topic, payload);
    }
    try {
      if (thenable) {
        if (env === undefined) env = this._envelope(topic, payload, EMPTY_OPTIONS);
        this._began(plain[PLAIN_ROUTE].subs[i - PLAIN_FNS], r, env, undefined);
      }
      return env;
    } catch (e) {
      this._plainEscaped();
      throw e;
    }
  }

  /**
   * Adds the publishes counted on plain routes (_deliverPlain) to the bus's and their
   * subscriptions' counters. While a route is being delivered, the handlers after the running
   * one have not had its current publish yet.
   */
  _fold() {
    this._flushLast();
    const dirty = this._dirty;
    if (dirty.length === 0) return;
    for (let d = 0; d < dirty.length; d++) this._count(dirty[d]);
    dirty.length = 0;
  }

  /** Folds one counted route and takes it off the list. */
  _foldOne(plain) {
    const dirty = this._dirty;
    const last = dirty.pop();
    if (last !== plain) {
      const at = plain[PLAIN_DIRTY_AT];
      dirty[at] = last;
      last[PLAIN_DIRTY_AT] = at;
    }
    this._count(plain);
  }

  /**
   * Adds one route's count to the bus's and its subscriptions' counters. The route being
   * delivered (if it is that one) has its handlers after the running one called from
   * _deliverDirect from now on, which counts them one by one.
   */
  _count(plain) {
    const sent = plain[PLAIN_SENT];
    plain[PLAIN_SENT] = 0;
    this._published += sent;
    const subs = plain[PLAIN_ROUTE].subs;
    let at = subs.length;
    if (plain === this._runningPlain() && this._stopped === undefined) {
      // It has counted its current publish: the handlers after the running one are called
      // from _deliverDirect, which counts them (the next one's call returns STOPPED).
      at = this._at - PLAIN_FNS;
      const next = this._at + 1;
      if (next < plain.length) {
        this._stopped = plain[next];
        plain[next] = STOP;
      }
    }
    for (let i = 0; i < subs.length; i++) subs[i].delivered += i <= at ? sent : sent - 1;
  }

  /**
   * Calls every subscription's handler now, in subscription order (from `from`: the rest of a
   * publish _deliverPlain began and counted, with its envelope if it made one).
   */
  _deliverDirect(route, topic, payload, o, from = 0, made = undefined) {
    if (from === 0) this._published++;
    const subs = route.subs;
    const n = subs.length;
    if (n === 0) {
      // Slots of messages the core no longer keeps are freed by a pump (see _logDirect).
      if (this._needPump) this._pump();
      return true;
    }
    let env = made;
    this._depth++;
    try {
      for (let i = from; i < n; i++) {
        const s = subs[i];
        if (!s._active) {
          // Unsubscribed by an earlier handler of this same publish.
          this._countLeft(s, 1, 0);
          continue;
        }
        s.delivered++;
        let r;
        let thenable;
        try {
          if (s.wants) {
            if (env === undefined) env = this._envelope(topic, payload, o);
            r = s.handler(payload, env);
          } else {
            r = s.handler(payload);
          }
          // (A `then` that cannot be read fails the call as a throw would.)
          thenable = r !== undefined && r !== null && typeof r.then === 'function';
        } catch (err) {
          if (s._active) s.failed++;
          else this._countLeft(s, 0, 1); // it unsubscribed itself, then threw
          this._failed(err, env ?? (env = this._envelope(topic, payload, o)), s);
          continue;
        }
        if (thenable) {
          this._began(s, r, env ?? (env = this._envelope(topic, payload, o)), o.key);
        }
      }
    } finally {
      this._depth--;
    }
    if (this._needPump) this._pump();
    return true;
  }

  /** A directly called handler returned a promise: the core tracks it from now on. */
  _began(s, promise, env, key) {
    if (!s._active) {
      // It unsubscribed itself while running: the core tracks it no more, but a failure
      // still counts and is reported.
      const lost = (err) => {
        this._countLeft(s, 0, 1);
        this._failed(err, env, s);
      };
      try {
        promise.then(undefined, lost);
      } catch (err) {
        lost(err); // a thenable whose then() throws: as a promise rejected with that
      }
      return;
    }
    // The delivery's index × 2^32 + its generation.
    const d = this._core.begin(s.index, s.gen, key, this._clock.now());
    if (!s.busy) { s.busy = true; this._busy++; }
    // Its timeout needs the timer armed, which a pump does.
    if (s.timeoutMs !== undefined && s.timeoutMs !== Infinity) this._needPump = true;
    this._track(Math.floor(d / 4294967296), d >>> 0, s, promise, env, true);
  }

  _track(di, dg, s, promise, item, final) {
    // By delivery index (no number key to box per message); the core reuses an index only
    // once its delivery ended, and a late result finds another entry there (or none).
    const f = { dg, s, item, final };
    this._inflight[di] = f;
    this._inflightCount++;
    try {
      promise.then(
        (value) => this._settled(f, di, true, value),
        (err) => this._settled(f, di, false, err),
      );
    } catch (err) {
      // A thenable whose then() throws fails as a promise rejected with that would (unless it
      // called back first: then its answer stands).
      this._settled(f, di, false, err);
    }
  }

  _settled(f, di, ok, err) {
    if (this._inflight[di] !== f) return; // timed out: its late result is ignored
    this._inflight[di] = undefined;
    this._inflightCount--;
    const dg = f.dg;
    if (ok) {
      this._completions.push(di, dg, 1);
      // (`err` is the value it resolved with.)
      if (Array.isArray(f.item) || f.item[RESPONSE] !== undefined) this._returned(f.item, f.s, err);
    } else {
      this._fail(di, dg, err);
    }
    if (!ok && f.final) this._failed(err, f.item, f.s);
    this._schedulePump();
  }

  _schedulePump() {
    if (this._pumpQueued) return;
    this._pumpQueued = true;
    queueMicrotask(() => {
      this._pumpQueued = false;
      this._pump();
    });
  }

  /**
   * Publishes `payload` on `topic` as a request; resolves with the first reply (a responder
   * handler's return value, or what it passes to `message.reply`). Rejects with NO_RESPONDERS at
   * once when no subscription matches, TIMEOUT (`timeoutMs`, default 5000), ABORTED (`signal`),
   * HANDLER_FAILED with the responder's error when every responder failed, CLOSED.
   */
  request(topic, payload, options) {
    let req;
    try {
      const o = parseRequestOptions(options, false);
      req = this._openRequest(topic, payload, o, false);
    } catch (e) {
      return Promise.reject(e);
    }
    return req.promise;
  }

  /**
   * Publishes `payload` on `topic` as a request and gathers replies from every subscription it
   * reaches: an async iterator of the replies, ending when every responder answered, after
   * `max` replies, or at `timeoutMs` (default 5000); it throws ABORTED, CLOSED, or the error
   * that kept the request from being made (NO_RESPONDERS…). Leaving the loop gives it up.
   */
  requestMany(topic, payload, options) {
    try {
      const o = parseRequestOptions(options, true);
      return this._openRequest(topic, payload, o, true).replies;
    } catch (e) {
      return failedReplies(e);
    }
  }

  _openRequest(topic, payload, o, many) {
    if (this._closing) fail('CLOSED', 'bus is closed');
    const signal = o.signal;
    if (signal !== undefined && isAborted(signal)) {
      throw new EdgebusError('ABORTED', 'the request was aborted before it was made', { cause: abortReason(signal) });
    }
    let route = this._route(topic);
    const now = this._clock.now();
    const deadline = o.timeoutMs === Infinity ? -1 : now + o.timeoutMs;
    let id;
    try {
      id = this._core.open_request(route.handle, route.gen, o.max ?? 2 ** 30, deadline);
    } catch (e) {
      throw fromCore(e);
    }
    const req = new PendingRequest(this, id, o, many);
    if (!many) {
      req.promise = new Promise((resolve, reject) => {
        req.resolve = resolve;
        req.reject = reject;
      });
    }
    const env = { topic, payload, publishedAt: now, attempt: 1 };
    if (o.key !== undefined) env.key = o.key;
    if (o.headers !== undefined) env.headers = o.headers;
    env[REQUEST] = req;
    this._requests.set(id, req);
    try {
      const size = route.batch ? measure(this._sizeOf, payload) : 0;
      if (route.gen !== this._topicsGen) route = this._route(topic);
      const slot = this._slot(env);
      try {
        this._core.publish(route.handle, route.gen, slot, undefined, o.key, 0, size, 0, -1, 0, now, false, 0, id);
      } catch (e) {
        throw fromCore(e);
      }
    } catch (e) {
      // Not published: the request ends here, and the caller gets the publish's error.
      this._requests.delete(id);
      this._core.cancel_request(req.ri, req.rg);
      req.done = true;
      this._pump();
      throw e;
    }
    if (signal !== undefined) {
      req.onAbort = () => this._giveUp(req, abortReason(signal));
      addAbortListener(signal, req.onAbort);
    }
    // Runs the deliveries, and arms the timer of the request's deadline.
    this._pump();
    return req;
  }

  /** Its requester gave `req` up (aborted it, or left its iterator). */
  _giveUp(req, reason) {
    if (req.done) return;
    this._core.cancel_request(req.ri, req.rg);
    if (reason === undefined && req.replies !== undefined) req._end(undefined);
    else req.aborted(reason);
  }

  /**
   * Subscription `s` answers `req`: a reply (`KIND_REPLY`, `value`), its final failure
   * (`KIND_FAILURE`, `value` the error) or a decline. Returns whether the core took it.
   */
  _answer(req, s, kind, value) {
    const v = this._core.answer(req.ri, req.rg, s.index * 4294967296 + s.gen, kind);
    if (v === ANSWER_REPLY || v === ANSWER_REPLY_LAST) req.reply(value, v === ANSWER_REPLY_LAST);
    else if (v === ANSWER_FAILED || v === ANSWER_FAILED_LAST) req.failed(value, s, v === ANSWER_FAILED_LAST);
    else if (v === ANSWER_COMPLETE_LAST) {
      // A gathering the core ended complete, with the replies it took before this answer.
      if (kind === KIND_FAILURE) req.failed(value, s, false);
      req._end(undefined);
    } else if (v === ANSWER_DECLINED_LAST || v === ANSWER_DECLINED_FAILED_LAST) req.declined(v === ANSWER_DECLINED_FAILED_LAST);
    else return v === ANSWER_DECLINED;
    return true;
  }

  /**
   * A delivery of `s` completed with `r` (returned, or resolved to) for `item`: a reply to the
   * request it carries, or, `undefined` (and for each message of a batch not answered), a
   * decline.
   */
  _returned(item, s, r) {
    if (Array.isArray(item)) {
      for (let j = 0; j < item.length; j++) this._returned(item[j], s, undefined);
      return;
    }
    const st = item[RESPONSE];
    if (st === undefined || st.answered) return;
    st.answered = true;
    if (r === undefined) this._answer(st.req, s, KIND_DECLINE, undefined);
    else this._answer(st.req, s, KIND_REPLY, r);
  }

  /** The core ended request `ri`/`rg` (its deadline, or the close). */
  _requestEnded(ri, rg, closed) {
    const req = this._requests.get(ri * 4294967296 + rg);
    if (req !== undefined) req.ended(closed);
  }

  /** Publishes several payloads on one topic; returns how many were accepted. */
  publishBatch(topic, payloads, options) {
    if (this._closing) fail('CLOSED', 'bus is closed');
    let route = this._route(topic);
    let list;
    try {
      if (!Array.isArray(payloads)) fail('INVALID_ARGUMENT', `payloads must be an array, got ${describe(payloads)}`);
      list = Array.from(payloads); // read once: handlers run before the last payload is read
    } catch (e) {
      if (e instanceof EdgebusError) throw e;
      throw new EdgebusError('INVALID_ARGUMENT', `payloads could not be read: ${errorText(e)}`, { cause: e });
    }
    const o = parsePublishOptions(options, BATCH_PUBLISH_OPTIONS);
    const ids = o.ids;
    const n = list.length;
    if (ids !== undefined && ids.length !== n) {
      fail('INVALID_OPTION', `option \`ids\` must be an array with one id per payload (${n})`);
    }
    let accepted = 0;
    let i = 0;
    // Straight to the handlers while every subscription stays idle (no crossing per message)…
    if ((ids === undefined || !this._dedupe) && o.notBefore === undefined && n > 0 && this._direct(route, o.key !== undefined)) {
      // …once the core has checked that the whole batch fits every subscription that refuses
      // rather than drops: a refused batch delivers nothing.
      try {
        this._core.check_room(route.handle, route.gen, n, 0);
      } catch (e) {
        throw fromCore(e);
      }
      while (i < n && this._direct(route, o.key !== undefined)) {
        const mo = ids === undefined || ids[i] === undefined ? o
          : { id: ids[i], key: o.key, ttlMs: o.ttlMs, headers: o.headers };
        const env = route.tracked ? this._logDirect(route, topic, list[i], mo) : undefined;
        this._deliverDirect(route, topic, list[i], mo, 0, env);
        accepted++;
        i++;
      }
    }
    if (i === n) return accepted;
    // …and the rest through the core in one call.
    const count = n - i;
    const slots = new Uint32Array(count);
    const sized = route.batch || route.tracked;
    const sizes = sized ? new Float64Array(count) : new Float64Array(0);
    for (let j = 0; j < count; j++) if (sized) sizes[j] = measure(this._sizeOf, list[i + j]);
    if (route.gen !== this._topicsGen) route = this._route(topic);
    const now = this._clock.now();
    let idList;
    let hasId;
    if (ids !== undefined) {
      idList = new Array(count);
      hasId = new Uint8Array(count);
      for (let j = 0; j < count; j++) {
        const id = ids[i + j];
        idList[j] = id === undefined ? '' : id;
        hasId[j] = id === undefined ? 0 : 1;
      }
    }
    for (let j = 0; j < count; j++) {
      const env = { topic, payload: list[i + j], publishedAt: now, attempt: 1 };
      if (ids !== undefined && ids[i + j] !== undefined) env.id = ids[i + j];
      if (o.key !== undefined) env.key = o.key;
      if (o.headers !== undefined) env.headers = o.headers;
      if (o.ttlMs !== undefined) env.ttlMs = o.ttlMs;
      slots[j] = this._slot(env);
    }
    let r;
    try {
      r = this._core.publish_batch(
        route.handle, route.gen, slots, idList, hasId ?? NO_FLAGS,
        o.key, o.ttlMs ?? 0, sizes, o.priority ?? 0, o.notBefore ?? -1, now, false,
      );
    } catch (e) {
      throw fromCore(e);
    } finally {
      this._pump();
    }
    return accepted + r;
  }

  /**
   * Publishes, waiting for room when a `wait` subscription is full. Resolves to false for a
   * duplicate. Calls waiting for room are admitted in call order. The options are read once,
   * here; a call registers as waiting before the core is asked, so room that appears in the
   * very pass after a "must wait" admits it.
   */
  publishAsync(topic, payload, options) {
    let w;
    try {
      if (this._closing) fail('CLOSED', 'bus is closed');
      this._route(topic);
      const o = parsePublishOptions(options, ASYNC_PUBLISH_OPTIONS);
      const signal = o.signal;
      if (signal !== undefined && isAborted(signal)) {
        throw new EdgebusError('ABORTED', 'the publish was aborted before it was made', { cause: abortReason(signal) });
      }
      w = { topic, payload, o, done: false, ok: false, value: undefined, resolve: undefined, reject: undefined, leave: undefined };
      this._waiters.push(w);
      this._admitWaiters();
      if (!w.done && signal !== undefined) {
        // Given up while it waits for room: it leaves the queue of waiting publishes.
        const onAbort = () => {
          const at = this._waiters.indexOf(w);
          if (at < 0 || w.done) return;
          this._waiters.splice(at, 1);
          this._settleWaiter(w, false, new EdgebusError('ABORTED', 'the publish was aborted while it waited for room', { cause: abortReason(signal) }));
          if (this._waiters.length === 0 && this._coreWaiting) {
            this._coreWaiting = false;
            this._core.set_waiting(false);
          }
          this._resolveIdle();
        };
        addAbortListener(signal, onAbort);
        w.leave = () => removeAbortListener(signal, onAbort);
      }
    } catch (e) {
      return Promise.reject(e);
    }
    if (w.done) return w.ok ? Promise.resolve(w.value) : Promise.reject(w.value);
    return new Promise((resolve, reject) => {
      w.resolve = resolve;
      w.reject = reject;
    });
  }

  _settleWaiter(w, ok, value) {
    w.done = true;
    w.ok = ok;
    w.value = value;
    if (w.leave !== undefined) {
      const leave = w.leave;
      w.leave = undefined;
      leave();
    }
    if (ok) { if (w.resolve !== undefined) w.resolve(value); }
    else if (w.reject !== undefined) w.reject(value);
  }

  _admitWaiters() {
    // Admitting publishes pumps, and a pump admits waiters: one admission loop at a time.
    if (this._admitting) return;
    this._admitting = true;
    try {
      this._admitLoop();
    } finally {
      this._admitting = false;
    }
    this._resolveIdle();
  }

  _admitLoop() {
    while (this._waiters.length > 0) {
      const w = this._waiters[0];
      let r;
      this._room = false;
      try {
        r = this._publish(this._route(w.topic), w.topic, w.payload, w.o, true);
      } catch (e) {
        this._waiters.shift();
        this._settleWaiter(w, false, fromCore(e));
        continue;
      }
      if (r === MUST_WAIT) {
        // The core now reports room (it marks itself waiting when it answers "must wait").
        this._coreWaiting = true;
        // Room made by the pass that ran right after the answer: try again now.
        if (this._room) continue;
        return;
      }
      this._waiters.shift();
      this._settleWaiter(w, true, r !== DUPLICATE);
    }
    if (this._coreWaiting) {
      this._coreWaiting = false;
      this._core.set_waiting(false);
    }
  }

  // ----- running the core's work -------------------------------------------------------------

  _pump() {
    if (this._depth > 0) {
      this._needPump = true;
      return;
    }
    this._needPump = false;
    const core = this._core;
    for (;;) {
      let comps = NO_COMPLETIONS;
      let reasons;
      if (this._completions.length > 0) {
        comps = new Uint32Array(this._completions); // (from a plain array: no iterator)
        this._completions.length = 0;
        if (this._reasons.length > 0) reasons = this._reasons.splice(0);
      }
      const n = core.pump(this._clock.now(), comps, reasons);
      if (n !== 0 || comps.length !== 0) this._rounds++;
      if (n === 0) {
        if (this._completions.length === 0) break;
        continue;
      }
      // The records are in the core's memory: copied into one reused array first (handlers
      // may grow that memory, which detaches views of it).
      let recs = this._recs;
      if (recs.length < n) recs = this._recs = new Uint32Array(Math.max(n, 2 * recs.length));
      const words = wasmWords();
      const at = core.records_ptr() >>> 2;
      for (let i = 0; i < n; i++) recs[i] = words[at + i];
      this._run(recs, n);
    }
    this._afterPump();
  }

  _run(recs, n) {
    let room = false;
    this._depth++;
    try {
      for (let i = 0; i < n;) {
        switch (recs[i]) {
          case REC_DELIVER: {
            const s = this._sub(recs[i + 3], recs[i + 4]);
            this._deliver(s, recs[i + 1], recs[i + 2], this._slots[recs[i + 5]]);
            i += 7;
            break;
          }
          case REC_BATCH: {
            const s = this._sub(recs[i + 3], recs[i + 4]);
            const n = recs[i + 7];
            const items = new Array(n);
            for (let j = 0; j < n; j++) items[j] = this._slots[recs[i + 8 + j]];
            this._deliverBatch(s, recs[i + 1], recs[i + 2], items, recs[i + 6] === 1, recs[i + 5]);
            i += 8 + n;
            break;
          }
          case REC_CLAIMED: {
            const s = this._sub(recs[i + 3], recs[i + 4]);
            const final = recs[i + 5] === 1;
            const n = recs[i + 6];
            const items = new Array(n);
            for (let j = 0; j < n; j++) {
              const env = this._slots[recs[i + 7 + 2 * j]];
              const attempt = recs[i + 8 + 2 * j];
              items[j] = attempt === env.attempt ? env : { ...env, attempt };
            }
            if (s !== undefined && s.batch) this._deliverBatch(s, recs[i + 1], recs[i + 2], items, final);
            else this._deliver(s, recs[i + 1], recs[i + 2], items[0], final);
            i += 7 + 2 * n;
            break;
          }
          case REC_DEAD:
            this._publishDead();
            i += 1;
            break;
          case REC_FAILED:
            this._reportFailed();
            i += 1;
            break;
          case REC_TIMED_OUT: {
            const f = this._inflight[recs[i + 1]];
            if (f !== undefined && f.dg === recs[i + 2]) {
              this._inflight[recs[i + 1]] = undefined;
              this._inflightCount--;
              if (recs[i + 5] === 1 || f.final) {
                const s = f.s;
                this._failed(new EdgebusError('HANDLER_TIMEOUT', this._core.timeout_message(s.index, s.gen)), f.item, s);
              }
            }
            i += 6;
            break;
          }
          case REC_IDLE: {
            const s = this._sub(recs[i + 1], recs[i + 2]);
            if (s !== undefined && s.busy) { s.busy = false; this._busy--; }
            i += 3;
            break;
          }
          case REC_ROOM:
            room = true;
            this._room = true;
            i += 1;
            break;
          case REC_RETIRED:
            this._takeRetired();
            i += 1;
            break;
          case REC_REQUEST_ENDED:
            this._requestEnded(recs[i + 1], recs[i + 2], recs[i + 3] === 1);
            i += 4;
            break;
          case REC_NUMBERED: {
            const env = this._slots[recs[i + 1]];
            if (env !== undefined) env.seq = recs[i + 2] + recs[i + 3] * 4294967296;
            i += 4;
            break;
          }
          case REC_GAPS:
            this._reportGaps(this._core.take_gaps());
            i += 1;
            break;
          case REC_RELEASE:
            this._slots[recs[i + 1]] = undefined;
            this._freeSlots.push(recs[i + 1]);
            i += 2;
            break;
          default:
            throw new EdgebusError('INTERNAL', `unknown core record ${recs[i]} at ${i}`);
        }
      }
    } finally {
      this._depth--;
    }
    if (room) this._admitWaiters();
  }

  /** Final statistics of subscriptions whose last delivery settled after they left. */
  _takeRetired() {
    for (;;) {
      const t = this._core.take_retired();
      if (t === undefined) return;
      const k = t[0] * 4294967296 + t[1];
      const rec = this._leaving.get(k);
      if (rec === undefined) continue;
      this._leaving.delete(k);
      rec.final = t[2];
    }
  }

  _sub(index, gen) {
    const s = this._subs[index];
    return s !== undefined && s.gen === gen ? s : undefined;
  }

  /** A failed delivery, with its error's message for the core (a dead letter carries it). */
  _fail(di, dg, err) {
    this._completions.push(di, dg, 0);
    this._reasons.push(errorText(err));
  }

  _deliver(s, di, dg, env, final = true) {
    if (s === undefined || !s._active) {
      this._core.abandon(di, dg, this._clock.now());
      return;
    }
    if (!s.busy) { s.busy = true; this._busy++; }
    const req = env[REQUEST];
    if (req !== undefined) env = responderMessage(this, env, req, s);
    let r;
    let thenable;
    try {
      r = s.wants ? s.handler(env.payload, env) : s.handler(env.payload);
      // (A `then` that cannot be read fails the call as a throw would.)
      thenable = r !== undefined && r !== null && typeof r.then === 'function';
    } catch (err) {
      this._fail(di, dg, err);
      if (final) this._failed(err, env, s);
      return;
    }
    if (thenable) {
      this._track(di, dg, s, r, env, final);
    } else {
      this._completions.push(di, dg, 1);
      if (req !== undefined) this._returned(env, s, r);
    }
  }

  _deliverBatch(s, di, dg, items, final) {
    if (s === undefined || !s._active) {
      this._core.abandon(di, dg, this._clock.now());
      return;
    }
    for (let j = 0; j < items.length; j++) {
      const req = items[j][REQUEST];
      if (req !== undefined) items[j] = responderMessage(this, items[j], req, s);
    }
    let r;
    let thenable;
    try {
      r = s.handler(items);
      thenable = r !== undefined && r !== null && typeof r.then === 'function';
    } catch (err) {
      this._fail(di, dg, err);
      if (final) this._failed(err, items, s);
      return;
    }
    if (thenable) {
      this._track(di, dg, s, r, items, final);
    } else {
      this._completions.push(di, dg, 1);
      this._returned(items, s, undefined);
    }
  }

  /**
   * Publishes the core's dead letters on `$dead.<group>`, as the core built them. A death no
   * delivery reported (its TTL ended before its retry) is reported here, as that member's.
   */
  _publishDead() {
    for (;;) {
      const d = this._core.take_dead();
      if (d === undefined) return;
      const [group, from, slot, attempts, code, message, ri, rg] = d;
      const topic = `$dead.${group}`;
      const payload = { group, topic: from, attempts, error: { code, message }, message: this._slots[slot] };
      if (ri >= 0) {
        const s = this._sub(ri, rg);
        if (s !== undefined) this._failed(new EdgebusError(code, message), s.batch ? [payload.message] : payload.message, s);
      }
      try {
        this._publish(this._route(topic), topic, payload, EMPTY_OPTIONS, false);
      } catch (e) {
        // A `$dead` subscriber that refuses it (a full `reject` queue): counted as dropped.
        this._core.record_dropped(1);
        console.error(`edgebus: could not publish a dead letter on ${topic}`, e);
      }
    }
  }

  /** Reports the final failures the core found without a final-attempt delivery. */
  _reportFailed() {
    for (;;) {
      const f = this._core.take_failed();
      if (f === undefined) return;
      const s = this._sub(f[0], f[1]);
      if (s === undefined) continue;
      const items = f.slice(5).map((slot) => this._slots[slot]);
      this._failed(new EdgebusError(f[3], f[4]), s.batch ? items : items[0], s);
    }
  }

  /** A final failure: onError, `$errors`, and (with neither) the console. */
  _failed(error, item, s) {
    // A final failure is the subscription's answer to the requests its messages carry.
    if (Array.isArray(item)) {
      for (let j = 0; j < item.length; j++) this._failedRequest(item[j], s, error);
    } else if (item !== undefined) {
      this._failedRequest(item, s, error);
    }
    const errorsRoute = this._route('$errors');
    if (this._onError !== undefined) {
      try {
        this._onError(error, item, s);
      } catch (e) {
        console.error('edgebus: onError threw', e);
      }
    } else if (errorsRoute.subs.length === 0 &&
        !(s._group !== undefined && this._route(`$dead.${s._group}`).subs.length > 0)) {
      console.error(`edgebus: handler of subscription #${s._id} (\`${s._pattern}\`) failed:`, error);
    }
    const topic = Array.isArray(item) ? item[0]?.topic : item?.topic;
    // Failures of `$errors` handlers are not republished there: that could loop forever.
    if (errorsRoute.subs.length > 0 && !(typeof topic === 'string' && topic.startsWith('$errors'))) {
      try {
        this._publish(errorsRoute, '$errors', {
          error,
          message: Array.isArray(item) ? undefined : item,
          messages: Array.isArray(item) ? item : undefined,
          subscription: { id: s._id, pattern: s._pattern },
        }, EMPTY_OPTIONS, false);
      } catch (e) {
        console.error('edgebus: could not publish on $errors', e);
      }
    }
  }

  /**
   * Gaps replays reported (`[sub index, sub gen, topic, from (-1: unknown), to]` flat): each to
   * its subscription's `onGap` and on `$gap`, and with neither to the console.
   */
  _reportGaps(flat) {
    const route = this._route('$gap');
    for (let i = 0; i < flat.length; i += 5) {
      const s = this._sub(flat[i], flat[i + 1]);
      const gap = gapOf(flat, i, s);
      const onGap = s === undefined ? undefined : this._gapHandlers.get(s.index);
      if (onGap !== undefined) {
        try {
          onGap(gap);
        } catch (e) {
          console.error('edgebus: onGap threw', e);
        }
      } else if (route.subs.length === 0) {
        console.warn(`edgebus: subscription #${gap.subscription} (\`${gap.pattern}\`) missed ${gap.topic} ${gap.fromSeq ?? '…'}–${gap.toSeq}: no longer held`);
      }
      if (route.subs.length > 0) {
        try {
          this._publish(route, '$gap', gap, EMPTY_OPTIONS, false);
        } catch (e) {
          console.error('edgebus: could not publish on $gap', e);
        }
      }
    }
  }

  // ----- retained values and history ------------------------------------------------------

  /** The retained values `pattern` matches (default every topic), by topic. */
  retained(pattern = '>') {
    checkString(pattern, 'INVALID_PATTERN', 'pattern');
    let flat;
    try {
      flat = this._core.retained(pattern, this._clock.now());
    } catch (e) {
      throw fromCore(e);
    }
    return this._numbered(flat);
  }

  /** Clears `topic`'s retained value; whether it had one. */
  clearRetained(topic) {
    if (this._closing) fail('CLOSED', 'bus is closed');
    checkString(topic, 'INVALID_TOPIC', 'topic');
    let had;
    try {
      had = this._core.clear_retained(topic, this._clock.now());
    } catch (e) {
      throw fromCore(e);
    }
    this._dropRoutes(this._core.take_invalidated(), 0);
    return had;
  }

  /**
   * What a new subscription on `pattern` with this `replay` would be given first, and the gaps
   * it would hear of, without subscribing: `{ messages, gaps }`. `options.maxMessages` and
   * `maxBytes` (as `sizeOf` measures) keep the newest messages that fit; the older ones are
   * reported as gaps.
   */
  replay(pattern, replay, options) {
    checkString(pattern, 'INVALID_PATTERN', 'pattern');
    const r = parseReplay(replay);
    // As subscribe checks them: a topic `sinceSeq` names must be one a message can be published on.
    if (r.topics !== undefined) for (const t of r.topics) checkTopic(t);
    const o = options === undefined ? EMPTY_OPTIONS : snapshot(options, ['maxMessages', 'maxBytes'], 'options');
    const maxMessages = numberOption(o, 'maxMessages', 'options', COUNT) ?? Infinity;
    const maxBytes = numberOption(o, 'maxBytes', 'options', { min: 0, infinity: true }) ?? Infinity;
    let out;
    try {
      out = this._core.replay(pattern, r.kind, r.n ?? NaN, r.sinceMs ?? NaN, r.topics,
        r.seqs === undefined ? undefined : new Float64Array(r.seqs), maxMessages, maxBytes, this._clock.now());
    } catch (e) {
      throw fromCore(e);
    }
    const gaps = [];
    for (let i = 0; i < out[1].length; i += 5) {
      const gap = gapOf(out[1], i, undefined);
      gap.pattern = pattern;
      gaps.push(gap);
    }
    return { messages: this._numbered(out[0]), gaps };
  }

  /**
   * What the core holds for `topic`: `{ topic, firstSeq, lastSeq, retainedSeq, held }` (history
   * is the numbers firstSeq…lastSeq when `held` > 0), or undefined.
   */
  logOf(topic) {
    // A log exists only for a topic the core accepted: the core's check of the topic is needed
    // only when it holds none (INVALID_TOPIC then, rather than undefined).
    checkString(topic, 'INVALID_TOPIC', 'topic');
    const l = this._core.log_of(topic, this._clock.now());
    if (l.length === 0) {
      checkTopic(topic);
      return undefined;
    }
    const info = { topic, firstSeq: l[0], lastSeq: l[1], retainedSeq: undefined, held: l[3] };
    if (l[2] >= 0) info.retainedSeq = l[2];
    return info;
  }

  /**
   * Puts durable copies back into the logs (a driver reloading what it stored):
   * `[{ topic, seq, payload, publishedAt, retained, id, key, headers, ttlMs }]`, in number
   * order per topic. An entry without `payload` carries only its topic's numbering on.
   */
  restore(entries) {
    if (this._closing) fail('CLOSED', 'bus is closed');
    const list = arraySnapshot(entries, 'entries');
    // Each entry's shape is read and checked here; the core checks the numbers (rising per
    // topic, from the log's latest) of all of them before it applies any.
    const checked = [];
    for (let i = 0; i < list.length; i++) {
      const e = snapshot(list[i], RESTORE_FIELDS, `entries[${i}]`);
      checkString(e.topic, 'INVALID_ARGUMENT', `entries[${i}].topic`);
      const seq = numberValue(e.seq, `entries[${i}].seq`, { integer: true, min: 1, max: 2 ** 50 });
      const at = e.publishedAt === undefined ? undefined : numberValue(e.publishedAt, `entries[${i}].publishedAt`, { min: 0 });
      if (e.retained !== undefined && typeof e.retained !== 'boolean') {
        fail('INVALID_OPTION', `option \`entries[${i}].retained\` must be a boolean, got ${describe(e.retained)}`);
      }
      const hasPayload = 'payload' in e;
      if (e.retained === true && (!hasPayload || e.payload === undefined)) {
        fail('INVALID_ARGUMENT', `entries[${i}]: a retained value needs a payload (publishing undefined with retain clears one)`);
      }
      const o = parsePublishOptions({ id: e.id, key: e.key, headers: e.headers, ttlMs: e.ttlMs }, RESTORE_OPTIONS);
      checked.push({ e, seq, at, o, hasPayload, size: hasPayload ? measure(this._sizeOf, e.payload) : 0 });
    }
    const now = this._clock.now();
    const core = this._core;
    // From the first copy handed over to the commit, no code of the caller's runs (no clock
    // read, no sizeOf): nothing can leave copies half handed over, or slip in copies of its own.
    for (const { e, seq, at, o, hasPayload, size } of checked) {
      // Not stamped after now: a copy from a later clock would outlive the age limit.
      const publishedAt = Math.min(at ?? now, now);
      let slot = -1;
      if (hasPayload) {
        const env = this._stamped(e.topic, e.payload, o, publishedAt);
        env.seq = seq;
        slot = this._slot(env);
      }
      core.restore_add(e.topic, slot, seq, publishedAt, e.retained === true, o.id, o.key, o.ttlMs ?? 0, size);
    }
    try {
      // A refused batch drops its copies: their slots come back with the next pump.
      core.restore_commit(checked.length, now);
    } catch (err) {
      throw fromCore(err);
    } finally {
      this._dropRoutes(core.take_invalidated(), 0);
      this._pump();
    }
  }

  /** The messages of `[slot, number]` pairs, each carrying its number. */
  _numbered(flat) {
    const out = [];
    for (let i = 0; i < flat.length; i += 2) {
      const env = this._slots[flat[i]];
      if (env === undefined) continue;
      if (flat[i + 1] > 0) env.seq = flat[i + 1];
      out.push(env);
    }
    return out;
  }

  _failedRequest(item, s, error) {
    const req = item[REQUEST];
    if (req === undefined) return;
    const st = item[RESPONSE];
    if (st !== undefined) st.answered = true;
    this._answer(req, s, KIND_FAILURE, error);
  }

  _afterPump() {
    const deadline = this._core.next_deadline();
    if (deadline < 0 && this._timer !== undefined) {
      // Nothing is due any more: a forgotten timer would keep a Node process alive.
      this._clearTimer(this._timer);
      this._timer = undefined;
      this._timerAt = Infinity;
    } else if (deadline >= 0 && deadline < this._timerAt) {
      if (this._timer !== undefined) this._clearTimer(this._timer);
      this._timerAt = deadline;
      // A longer delay fires at once in JS hosts (Node warns, then uses 1 ms): long waits
      // are armed in steps, each ending in a pump that arms the next.
      this._timer = this._setTimer(() => {
        this._timer = undefined;
        this._timerAt = Infinity;
        this._pump();
      }, Math.min(MAX_TIMER_MS, Math.max(0, deadline - this._clock.now())));
      this._timerHolds = true;
    }
    if (this._timer !== undefined) {
      // Node: a timer holds the process up only for work (a retry, a timeout, a delayed
      // message), not for a work queue without members whose waiting messages' TTLs end.
      const holds = this._core.timers_keep_alive();
      if (holds !== this._timerHolds) {
        this._timerHolds = holds;
        const t = this._timer;
        if (typeof t === 'object' && t !== null) {
          if (holds && typeof t.ref === 'function') t.ref();
          else if (!holds && typeof t.unref === 'function') t.unref();
        }
      }
    }
    if (this._waiters.length > 0) this._admitWaiters();
    this._resolveIdle();
  }

  /**
   * Resolves drain()'s waits when nothing is left to run. Not while waiting publishes are being
   * admitted: a pass between two admissions may find nothing running, with the next message
   * about to be published (the admission loop asks again when it ends).
   */
  _resolveIdle() {
    if (this._idleWaiters.length > 0 && !this._admitting && this._isIdle()) {
      const ws = this._idleWaiters;
      this._idleWaiters = [];
      for (const w of ws) w();
    }
  }

  _isIdle() {
    // Waiting publishes do not count: with the core idle, a wait that is left (after the
    // admission every pump ends with) can only be for a group with no member (see close()).
    return this._inflightCount === 0 && this._completions.length === 0 && this._core.is_idle();
  }

  // ----- lifecycle -----------------------------------------------------------------------

  /** Delivers partial batches now. */
  flush() {
    this._core.flush();
    this._pump();
  }

  /**
   * Resolves when everything queued (partial batches included) has been handled; rejects with
   * ABORTED when `signal` aborts first (the work goes on).
   */
  drain(options) {
    let signal;
    try {
      const o = options === undefined ? EMPTY_OPTIONS : snapshot(options, ['signal'], 'options');
      signal = signalOption(o.signal);
      if (signal !== undefined && isAborted(signal)) {
        throw new EdgebusError('ABORTED', 'drain() was aborted before it waited', { cause: abortReason(signal) });
      }
    } catch (e) {
      return Promise.reject(e);
    }
    this.flush();
    if (!this._admitting && this._isIdle()) return Promise.resolve();
    if (signal === undefined) return new Promise((resolve) => this._idleWaiters.push(resolve));
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        const at = this._idleWaiters.indexOf(done);
        if (at >= 0) this._idleWaiters.splice(at, 1);
        reject(new EdgebusError('ABORTED', 'drain() was aborted', { cause: abortReason(signal) }));
      };
      const done = () => {
        removeAbortListener(signal, onAbort);
        resolve();
      };
      addAbortListener(signal, onAbort);
      this._idleWaiters.push(done);
    });
  }

  /**
   * Resolves with the first message on `pattern` (that `filter` accepts), then leaves. Rejects
   * with TIMEOUT after `timeoutMs`, ABORTED when `signal` aborts, CLOSED when the bus closes.
   */
  once(pattern, options) {
    let o;
    try {
      if (this._closing) fail('CLOSED', 'bus is closed');
      o = parseOnceOptions(options);
      if (o.signal !== undefined && isAborted(o.signal)) {
        throw new EdgebusError('ABORTED', 'once() was aborted before it subscribed', { cause: abortReason(o.signal) });
      }
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise((resolve, reject) => {
      let sub;
      let cancelTimer;
      let onAbort;
      let done = false;
      const finish = (err, message) => {
        if (done) return;
        done = true;
        this._waits.delete(finish);
        if (cancelTimer !== undefined) cancelTimer();
        if (onAbort !== undefined) removeAbortListener(o.signal, onAbort);
        if (sub !== undefined) sub.unsubscribe();
        if (err !== undefined) reject(err);
        else resolve(message);
      };
      const filter = o.filter;
      try {
        sub = this.subscribe(pattern, (payload, message) => {
          if (done) return;
          if (filter !== undefined) {
            let ok;
            try {
              ok = filter(message);
            } catch (e) {
              finish(new EdgebusError('HANDLER_FAILED', `once() filter threw: ${errorText(e)}`, { cause: e }));
              return;
            }
            if (!ok) return;
          }
          finish(undefined, message);
        });
      } catch (e) {
        reject(e);
        return;
      }
      if (done) return; // (a filter cannot run during subscribe; kept for the order of events)
      this._waits.add(finish);
      if (o.timeoutMs !== Infinity) {
        cancelTimer = this._after(o.timeoutMs, () => {
          finish(new EdgebusError('TIMEOUT', `no message on \`${pattern}\` within ${o.timeoutMs} ms`));
        });
      }
      if (o.signal !== undefined) {
        onAbort = () => finish(new EdgebusError('ABORTED', 'once() was aborted', { cause: abortReason(o.signal) }));
        addAbortListener(o.signal, onAbort);
      }
    });
  }

  /**
   * The messages on `pattern` as an async iterator, bounded by its subscription's queue
   * (`maxQueue`, `overflow`; concurrency 1: a message is delivered when the loop takes it). It
   * ends when the loop leaves, `subscription.unsubscribe()`, or close(); `signal` makes it throw
   * ABORTED.
   */
  stream(pattern, options) {
    if (this._closing) fail('CLOSED', 'bus is closed');
    const o = options === undefined ? EMPTY_OPTIONS : snapshot(options, ['signal', 'maxQueue', 'overflow'], 'options');
    const signal = signalOption(o.signal);
    if (signal !== undefined && isAborted(signal)) {
      throw new EdgebusError('ABORTED', 'stream() was aborted before it subscribed', { cause: abortReason(signal) });
    }
    const sub = {};
    if (o.maxQueue !== undefined) sub.maxQueue = o.maxQueue;
    if (o.overflow !== undefined) sub.overflow = o.overflow;
    const stream = new MessageStream(this, signal);
    stream.subscription = this.subscribe(pattern, (payload, message) => stream._take(message), sub);
    stream.subscription._leave = () => stream._left();
    this._waits.add(stream._close);
    return stream;
  }

  /** Calls `fn` after `ms` on the bus clock (in steps for what a host timer cannot hold); returns a canceller. */
  _after(ms, fn) {
    const due = this._clock.now() + ms;
    let handle;
    const arm = () => {
      const left = due - this._clock.now();
      if (left <= 0) {
        handle = undefined;
        fn();
        return;
      }
      handle = this._setTimer(arm, Math.min(left, MAX_TIMER_MS));
    };
    arm();
    return () => {
      if (handle !== undefined) this._clearTimer(handle);
      handle = undefined;
    };
  }

  /**
   * Later publishes throw CLOSED; resolves after draining with what could not be delivered:
   * `{ remaining: [{ message, group, state, attempts }] }` — delayed messages not visible yet,
   * messages of queue groups whose members all left, failed work-queue messages still
   * waiting for a retry, and `publishAsync` calls still waiting for room in a group with no
   * member (state `waiting`; those calls reject with CLOSED). Nothing is dropped silently.
   */
  async close() {
    if (!this._closed) {
      this._closing = true;
      // once() calls reject with CLOSED; streams end (what they hold is still read).
      for (const end of [...this._waits]) end(new EdgebusError('CLOSED', 'bus closed'));
      // Publishes waiting for room get in as room appears; drained, what still waits, waits
      // for a group with no member: it never gets in.
      if (this._waiters.length > 0) await this.drain();
      const left = this._waiters.splice(0);
      const now = this._clock.now();
      for (const w of left) {
        let group;
        try {
          const route = this._route(w.topic);
          group = this._core.waiting_on(route.handle, route.gen);
        } catch {
          group = undefined;
        }
        const message = this._stamped(w.topic, w.payload, w.o, now);
        this._leftWaiting.push({ message, group: group ?? undefined, state: 'waiting', attempts: 0 });
        this._settleWaiter(w, false, new EdgebusError('CLOSED',
          `bus closed while this publish waited for room${group === undefined ? '' : ` in group \`${group}\`, which has no member`}; it is listed in close()'s remaining`));
      }
      if (this._coreWaiting) {
        this._coreWaiting = false;
        this._core.set_waiting(false);
      }
      this._core.close();
      await this.drain();
      this._closed = true;
      // Requests still waiting end with CLOSED: nothing left could answer them.
      if (this._requests.size > 0) {
        this._core.end_requests();
        this._pump();
      }
    }
    const rows = this._core.remaining();
    return {
      remaining: rows.map((r) => ({
        message: this._slots[r.slot], group: r.group ?? undefined, state: r.state, attempts: r.attempts,
      })).concat(this._leftWaiting.map((r) => ({ ...r }))),
    };
  }

  /**
   * Where the work-queue message with this id stands: `{ state, attempts, group }` with state
   * `pending`, `delayed`, `in-flight`, `failed` (waiting for a retry), `done`, `dead`,
   * `expired` or `dropped`; undefined when no group knows it.
   */
  status(id, group) {
    checkString(id, 'INVALID_ARGUMENT', 'id');
    if (group !== undefined) checkString(group, 'INVALID_ARGUMENT', 'group');
    const st = this._core.status(id, group, this._clock.now());
    if (st === undefined) return undefined;
    if (st.group === null) st.group = undefined;
    return st;
  }

  _flushCounters() {
    this._fold();
    if (this._published > 0) {
      this._core.record_published(this._published);
      this._published = 0;
    }
    for (const s of this._subs) {
      if (s !== undefined && (s.delivered > 0 || s.failed > 0)) {
        if (s._active) this._core.record_direct(s.index, s.gen, s.delivered, s.failed);
        s.delivered = 0;
        s.failed = 0;
      }
    }
  }

  /** Counters, queue depths and latency, for the bus and per subscription. */
  stats() {
    this._flushCounters();
    this._core.expire_logs(this._clock.now());
    return this._core.stats();
  }

  /**
   * What retained values and history hold and counted: `stats().logs` alone, without gathering
   * any subscription's statistics (cheap enough to read after every publish).
   */
  logStats() {
    const l = this._core.log_stats(this._clock.now());
    return { topics: l[0], retained: l[1], history: l[2], bytes: l[3], evicted: l[4], expired: l[5], replayed: l[6], gaps: l[7] };
  }

  /**
   * For a driver that mirrors retained values and history in storage (an edge hub): has the core
   * list, from now on, each topic whose log loses a message or its retained value (evicted,
   * expired, replaced, cleared) or is forgotten; `_takeLogChanges()` hands the list over. What
   * to trim is then the core's word, not inferred from counters.
   */
  _reportLogChanges() {
    this._core.report_log_changes(true);
  }

  /**
   * For a driver that waits for every delivery of a message to settle (a shard worker): how many
   * subscriptions a message published now on `topic` reaches, as the core routes it (each live
   * subscription; a work queue once, when it has a member).
   */
  _reach(topic) {
    const route = this._route(topic);
    try {
      return this._core.reach(route.handle, route.gen);
    } catch (e) {
      throw fromCore(e);
    }
  }

  /** The topics listed since the last call (see _reportLogChanges), oldest change first. */
  _takeLogChanges() {
    return this._core.take_log_changes();
  }
}

