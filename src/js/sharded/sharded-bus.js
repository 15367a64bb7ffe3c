// ShardedBus: the handlers run in workers (module Web Workers in browsers, worker_threads in Node),
// one edgebus `Bus` per worker, while the main thread keeps the guarantees of a single bus.
//
// Main thread: validation, idempotence (before routing), the shard of each message (the core's
// stable hash of its key, or of its topic), one bounded queue per shard, credits (at most
// `maxInFlight` messages sent and unacknowledged per worker), one postMessage per shard per flush,
// and crash recovery: unacknowledged messages are sent again, in order, to the replacement worker,
// except those the dead worker had marked finished in shared memory.
//
// `platform` is the runtime adapter the entry point hands over (`useShardPlatform`, see
// src/js/platforms/): { concurrency(), module(), isWorker(w), spawn(callbacks, own?) → { post,
// terminate, ref?, unref? }, port() and initSync for serveShard }, or { unsupported } where there are
// no threads.

import { EdgebusError, errorText, fail } from '../shared/errors.js';
import { raw } from '../shared/core.js';
import {
  DURATION, checkString, describe, functionOption, isArray, numberOption, overflowOption, parseDedupe, parsePublishOptions,
  parseRequestOptions, signalOption, snapshot,
  isAborted, abortReason, addAbortListener, removeAbortListener,
} from '../shared/validate.js';
import { IdempotenceFilter } from '../bus/filter.js';
import { Bus } from '../bus/bus.js';
import { printsAs } from '../shared/inspect.js';
import { Deque, Histogram, checkCloneable, checkTransfer, publicMessage, rebuildError } from './values.js';

const OPTIONS = ['workers', 'handlers', 'worker', 'data', 'maxInFlight', 'maxQueue', 'overflow', 'dedupe',
  'onError', 'maxRedeliveries', 'timeoutMs'];
const PUBLISH_OPTIONS = ['id', 'key', 'ttlMs', 'headers', 'transfer'];
const ASYNC_PUBLISH_OPTIONS = [...PUBLISH_OPTIONS, 'signal'];
const BATCH_OPTIONS = ['key', 'ttlMs', 'headers', 'ids'];
// Counts a worker's Int32Array marks and the structured-clone messages hold.
const MAX_COUNT = 2 ** 31 - 1;
const FLUSH_AT = 256; // messages queued for one worker that are sent without waiting for the microtask
// Same clock as Bus (epoch ms, high resolution); timeOrigin read once, it is a slow getter.
const origin = typeof performance !== 'undefined' && typeof performance.now === 'function' ? performance.timeOrigin : undefined;
const now = origin !== undefined ? () => origin + performance.now() : () => Date.now();

let platform = { unsupported: 'ShardedBus has no worker platform in this entry point' };

/** Hands the entry point's worker platform to ShardedBus (see src/js/platforms/). */
export function useShardPlatform(p) {
  platform = p;
}

/** The entry point's worker platform (for serveShard). */
export function shardPlatform() {
  return platform;
}

/** An integer count option (Infinity where `infinity`), at most 2^31 - 1. */
function countOption(o, name, min, infinity) {
  return numberOption(o, name, 'options', { integer: true, min, max: MAX_COUNT, infinity });
}

/** Publish options: the package's checks, and ShardedBus's own `transfer`. */
function parsePublish(options, batch, async = false) {
  const o = parsePublishOptions(options, batch ? BATCH_OPTIONS : async ? ASYNC_PUBLISH_OPTIONS : PUBLISH_OPTIONS);
  if (o.transfer !== undefined) o.transfer = checkTransfer(o.transfer);
  return o;
}

/** The handlers module as an absolute URL string the workers can import. */
function handlersUrl(h) {
  if (h === undefined) fail('INVALID_OPTION', 'option `handlers` is required: the URL of the module that subscribes the handlers in each worker');
  let href;
  try {
    if (typeof URL === 'function' && h instanceof URL) href = h.href;
  } catch (e) {
    fail('INVALID_OPTION', `option \`handlers\` could not be read: ${errorText(e)}`);
  }
  if (href !== undefined) return href;
  if (typeof h !== 'string' || h.length === 0) {
    fail('INVALID_OPTION', `option \`handlers\` must be a URL (or a URL string) of a module, got ${describe(h)}`);
  }
  // (A lone surrogate would become U+FFFD in the URL: another module's name.)
  checkString(h, 'INVALID_OPTION', 'option `handlers`');
  const path = platform.absolutePath !== undefined ? platform.absolutePath(h) : undefined;
  if (path !== undefined) return path;
  try {
    return new URL(h, platform.baseUrl()).href;
  } catch {
    fail('INVALID_OPTION', `option \`handlers\` ${describe(h)} is not a URL: pass an absolute URL, e.g. new URL('./handlers.mjs', import.meta.url)`);
  }
}

let compiled;
function compiledWasm() {
  if (compiled === undefined) compiled = platform.module();
  if (compiled === undefined) {
    fail('NOT_INITIALIZED', 'edgebus is not initialized: call `await init()` once before creating a ShardedBus in a browser');
  }
  return compiled;
}

/** Parallel handlers over workers, with per-key order, credits, and crash recovery. */
export class ShardedBus {
  constructor(options) {
    printsAs(ShardedBus, 'ShardedBus');
    if (platform.unsupported !== undefined) fail('UNSUPPORTED', platform.unsupported);
    if (options === undefined) {
      fail('INVALID_OPTION', 'ShardedBus needs options with `handlers` (the URL of the handlers module) or `worker` (a function starting a worker that calls serveShard)');
    }
    // Read once: nothing below (nor later) looks at the caller's object again.
    const o = snapshot(options, OPTIONS, 'options');
    // The app's own workers (its bundler bundles their script, which calls serveShard), or the
    // package's default worker, which imports the handlers module by URL.
    this._worker = functionOption(o, 'worker', 'options');
    if (this._worker !== undefined) {
      if (o.handlers !== undefined) {
        fail('INVALID_OPTION', 'options `handlers` and `worker` exclude each other: the script the `worker` option starts imports the handlers and calls serveShard(setup)');
      }
      this._handlers = null;
      this._source = 'the worker script the `worker` option started';
    } else {
      this._handlers = handlersUrl(o.handlers);
      this._source = `the handlers module ${this._handlers}`;
    }
    const workers = countOption(o, 'workers', 1, false) ?? Math.max(1, platform.concurrency() - 1);
    if (workers > 1024) fail('INVALID_OPTION', `option \`workers\` must be at most 1024, got ${workers}`);
    this.workers = workers;
    this._maxInFlight = countOption(o, 'maxInFlight', 1, false) ?? 1024;
    this._maxQueue = countOption(o, 'maxQueue', 0, true) ?? 10000;
    this._overflow = overflowOption(o, 'options') ?? 'dropOldest';
    this._maxRedeliveries = countOption(o, 'maxRedeliveries', 0, true) ?? 3;
    this._onError = functionOption(o, 'onError', 'options');
    this._timeoutMs = numberOption(o, 'timeoutMs', 'options', DURATION);
    this._busOptions = o.timeoutMs === undefined ? {} : { timeoutMs: o.timeoutMs };
    this._filter = undefined;
    const dedupe = parseDedupe(o.dedupe, 'dedupe');
    if (dedupe !== undefined) this._filter = new IdempotenceFilter(dedupe);
    // A copy, taken now: every worker (a replacement too) starts from the data of this call.
    this._data = undefined;
    if (o.data !== undefined) {
      try {
        this._data = structuredClone(o.data);
      } catch (e) {
        fail('DATA_CLONE', `option \`data\` cannot be sent to the workers (structured clone): ${errorText(e)}`);
      }
    }
    // Main-thread subscribers of `$errors`.
    this._system = new Bus({ maxQueue: Infinity });
    this._shardCache = new Map();
    this._published = 0;
    this._duplicates = 0;
    this._abandoned = 0;
    this._waiters = new Deque();
    this._idleWaiters = [];
    this._flushQueued = false;
    this._closing = false;
    this._stopped = false;
    this._fatal = undefined;
    this._tag = 0;
    this._readyWaiters = [];
    // Requests sent to a worker, by the tag of their message (a redelivered one gets a new tag).
    this._requests = new Map();
    this._requestCounts = { sent: 0, replies: 0, failed: 0, timedOut: 0, noResponders: 0, cancelled: 0, late: 0, pending: 0 };
    this._referenced = false;
    this._watchdog = undefined;
    if (this._timeoutMs !== undefined && Number.isFinite(this._timeoutMs)) {
      // How long a worker may show no progress while a handler runs: past timeoutMs, the worker's
      // own timer reports HANDLER_TIMEOUT; past this, the worker is blocked and is replaced.
      this._stuckMs = this._timeoutMs + Math.min(Math.max(200, this._timeoutMs), 5000);
    }
    compiledWasm(); // compiled (or refused) before any worker starts
    this._shards = [];
    for (let i = 0; i < workers; i++) {
      this._shards.push({
        index: i, worker: undefined, ready: false, everReady: false, startFailures: 0,
        queue: new Deque(), sent: new Map(), freeSlots: [], marks: null,
        done: 0, failed: 0, dropped: 0, expired: 0, restarts: 0, redelivered: 0, timedOut: 0,
        latency: new Histogram(), running: 0, runs: 0, runningTags: new Map(), startedTags: new Set(), progressAt: 0,
      });
    }
    this._readyPromise = undefined;
    // A worker that cannot even be started (the `worker` option throws or returns something else,
    // the default worker script cannot be found) is the constructor's error.
    this._starting = true;
    try {
      for (const s of this._shards) this._spawn(s);
    } catch (e) {
      this._closing = true;
      this._stopWorkers();
      throw e;
    }
    this._starting = false;
  }

  /** Resolves once every worker has loaded the handlers module (rejects if it cannot). */
  get ready() {
    if (this._readyPromise === undefined) {
      this._readyPromise = new Promise((resolve, reject) => {
        if (this._fatal !== undefined) reject(this._fatal);
        else if (this._shards.every((s) => s.ready)) resolve();
        else this._readyWaiters.push({ resolve, reject });
      });
    }
    return this._readyPromise;
  }

  get closed() { return this._closing; }

  /** Its public state: workers, and whether it is closed. */
  toJSON() { return { workers: this.workers, closed: this._closing }; }

  // ----- workers -----------------------------------------------------------------------------

  _spawn(s) {
    s.ready = false;
    const slots = this._maxInFlight;
    s.freeSlots = [];
    for (let i = slots - 1; i >= 0; i--) s.freeSlots.push(i);
    // Per slot: the tag of the message finished there, and how many handlers run on its message;
    // then three cells for the watchdog (see worker.js).
    s.marks = platform.sharedMemory() ? new Int32Array(new SharedArrayBuffer(4 * (2 * slots + 3))) : null;
    s.running = 0;
    s.runs = 0;
    s.runningTags = new Map();
    s.startedTags = new Set();
    s.progressAt = now();
    let w;
    const incarnation = {};
    s.incarnation = incarnation;
    try {
      w = platform.spawn({
        message: (m) => { if (s.incarnation === incarnation) this._onWorkerMessage(s, m); },
        death: (reason) => { if (s.incarnation === incarnation) this._onDeath(s, reason); },
      }, this._worker === undefined ? undefined : this._startOwn(s));
    } catch (e) {
      const err = e instanceof EdgebusError ? e
        : new EdgebusError('WORKER_FAILED', `could not start worker ${s.index}: ${errorText(e)}`, { cause: e });
      if (this._starting) throw err;
      this._fatalError(err);
      return;
    }
    s.worker = w;
    const send = (module) => {
      if (s.incarnation !== incarnation) return;
      w.post({
        type: 'init', module, lock: w.lock ?? null, handlers: this._handlers, shard: s.index, workers: this.workers,
        data: this._data, marks: s.marks === null ? null : s.marks.buffer, span: slots, busOptions: this._busOptions,
        beatMs: this._stuckMs === undefined ? undefined : this._watchEvery(),
      });
    };
    let mod;
    try {
      mod = compiledWasm();
    } catch (e) {
      this._fatalError(new EdgebusError('WORKER_FAILED', `could not compile the WebAssembly module for the workers: ${e && e.message}`));
      return;
    }
    if (mod !== null && typeof mod.then === 'function') {
      mod.then(send, (e) => this._fatalError(new EdgebusError('WORKER_FAILED', `could not compile the WebAssembly module for the workers: ${e && e.message}`)));
    } else {
      send(mod);
    }
    this._reference();
  }

  /** Calls the `worker` option for shard `s`: the worker it returns, checked. */
  _startOwn(s) {
    let w;
    try {
      w = this._worker();
    } catch (e) {
      throw new EdgebusError('WORKER_FAILED', `option \`worker\` threw when starting worker ${s.index}: ${errorText(e)}`, { cause: e });
    }
    if (!platform.isWorker(w)) {
      try { if (w !== null && typeof w === 'object' && typeof w.terminate === 'function') w.terminate(); } catch { /* not ours to keep */ }
      const what = w !== null && typeof w === 'object' && typeof w.then === 'function'
        ? 'a promise (the function must return the Worker itself, not be async)' : describe(w);
      fail('INVALID_OPTION', `option \`worker\` must return a ${platform.workerKind}, got ${what}`);
    }
    return w;
  }

  _onWorkerMessage(s, m) {
    s.progressAt = now();
    if (m.type === 'acks') {
      if (m.ended !== undefined) {
        for (let i = 0; i < m.ended.length; i++) {
          const n = (s.runningTags.get(m.ended[i]) ?? 1) - 1;
          if (n > 0) s.runningTags.set(m.ended[i], n);
          else s.runningTags.delete(m.ended[i]);
        }
        s.running = s.runningTags.size;
      }
      this._onAcks(s, m);
    } else if (m.type === 'run') {
      s.startedTags.add(m.tag);
      s.runningTags.set(m.tag, (s.runningTags.get(m.tag) ?? 0) + 1);
      s.running = s.runningTags.size;
    } else if (m.type === 'ready') {
      s.ready = true;
      s.everReady = true;
      s.startFailures = 0;
      if (this._shards.every((x) => x.ready)) {
        for (const w of this._readyWaiters.splice(0)) w.resolve();
      }
      this._flush();
    } else if (m.type === 'reply') {
      this._onReply(s, m);
    } else if (m.type === 'fatal') {
      const e = rebuildError(m.error, s.index);
      this._fatalError(new EdgebusError('WORKER_FAILED',
        `${this._source} failed in worker ${s.index}: ${e.message}`, { cause: e }));
    }
  }

  /** A worker's outcome of a request: its reply, or the error its bus ended it with. */
  _onReply(s, m) {
    const rec = this._requests.get(m.tag);
    if (rec === undefined) return;
    this._requests.delete(m.tag);
    if (rec.req.done) {
      this._requestCounts.late++;
      return;
    }
    if (m.ok) {
      this._endRequest(rec, undefined, m.value);
      return;
    }
    const e = rebuildError(m.error, s.index);
    if (m.error.cause !== undefined) e.cause = rebuildError(m.error.cause, s.index);
    this._endRequest(rec, e);
  }

  /**
   * Ends the request `rec` carries: with `err`, or with its reply `value`. Every end is counted
   * here, once: a reply, TIMEOUT, ABORTED (cancelled), NO_RESPONDERS, or failed (any other error:
   * the handler's, or the message given up), so `sent` is their sum with `pending`.
   */
  _endRequest(rec, err, value) {
    const req = rec.req;
    if (req.done) return;
    req.done = true;
    const c = this._requestCounts;
    c.pending--;
    if (err === undefined) c.replies++;
    else if (err.code === 'TIMEOUT') c.timedOut++;
    else if (err.code === 'ABORTED') c.cancelled++;
    else if (err.code === 'NO_RESPONDERS') c.noResponders++;
    else c.failed++;
    this._reference();
    if (req.timer !== undefined) clearTimeout(req.timer);
    if (req.onAbort !== undefined) removeAbortListener(req.signal, req.onAbort);
    if (err !== undefined) req.reject(err);
    else req.resolve(value);
  }

  /** A message the main thread gives up with `err` (crash, stop, clone error): counted, its request failed, reported. */
  _lost(s, rec, err) {
    s.failed++;
    this._failRequest(rec, err);
    this._report(err, rec, s.index, undefined);
  }

  /** A request whose message the main thread gave up (crash, timeout, drop, stop): it fails with `err`. */
  _failRequest(rec, err) {
    if (rec.req === undefined) return;
    this._requests.delete(rec.tag);
    this._endRequest(rec, err);
  }

  _onAcks(s, m) {
    const t = now();
    if (m.replies !== undefined) for (let i = 0; i < m.replies.length; i++) this._onReply(s, m.replies[i]);
    const errs = m.errors;
    for (let i = 0; i < errs.length; i++) {
      const rec = s.sent.get(errs[i].tag);
      if (rec === undefined) continue;
      s.failed++;
      this._report(rebuildError(errs[i].error, s.index), rec, s.index, errs[i].subscription);
    }
    if (m.swept !== undefined) {
      // Finished without every delivery: a worker subscription's own overflow, TTL or unsubscribe.
      for (let i = 0; i < m.swept.length; i++) if (s.sent.has(m.swept[i])) s.dropped++;
    }
    const tags = m.tags;
    for (let i = 0; i < tags.length; i++) {
      const rec = s.sent.get(tags[i]);
      if (rec === undefined) continue;
      s.sent.delete(tags[i]);
      s.startedTags.delete(tags[i]);
      s.freeSlots.push(rec.slot);
      s.done++;
      s.latency.record(t - rec.publishedAt);
    }
    this._flush();
    this._afterProgress();
  }

  _onDeath(s, reason, timedOut) {
    s.incarnation = undefined;
    if (this._stopped) return;
    const w = s.worker;
    s.worker = undefined;
    try { w.terminate(); } catch { /* already gone */ }
    if (!s.everReady) {
      if (++s.startFailures > 2) {
        this._fatalError(new EdgebusError('WORKER_FAILED', `worker ${s.index} died while loading ${this._source}: ${reason}`));
        return;
      }
    }
    s.restarts++;
    // Unacknowledged messages, in send order: finished ones are done; the rest go again, first.
    const again = [];
    const marks = s.marks;
    const span = this._maxInFlight;
    const t = now();
    for (const rec of s.sent.values()) {
      if (marks !== null && Atomics.load(marks, rec.slot) === rec.tag) {
        s.done++;
        s.latency.record(t - rec.publishedAt);
        continue;
      }
      if (timedOut !== undefined && timedOut.has(rec.tag)) {
        this._timedOut(s, rec, reason, again);
        continue;
      }
      // Running on the dead worker? Shared memory says (a handler of it had started and not
      // settled: one subscription done and another still waiting is not running); without it, the
      // `run` notices say it started when the watchdog stopped the worker (long after they were
      // sent); after a crash, assume it was.
      const running = marks !== null ? Atomics.load(marks, span + rec.slot) > 0
        : timedOut === undefined || s.startedTags.has(rec.tag);
      if (running) rec.attempts++;
      if (rec.req !== undefined) this._requests.delete(rec.tag);
      if (rec.attempts > this._maxRedeliveries) {
        this._lost(s, rec, new EdgebusError('WORKER_CRASHED',
          `message on \`${rec.topic}\` was being handled by worker ${s.index} each of the ${rec.attempts} times it died (last: ${reason}); not redelivered`));
        continue;
      }
      if (rec.transfer !== undefined) {
        this._lost(s, rec, new EdgebusError('WORKER_CRASHED',
          `message on \`${rec.topic}\` had moved its ArrayBuffers (transfer) to worker ${s.index}, which died (${reason}); it cannot be redelivered`));
        continue;
      }
      s.redelivered++;
      again.push(rec);
    }
    s.sent.clear();
    if (again.length > 0) s.queue.unshiftAll(again);
    this._spawn(s);
    this._afterProgress();
  }

  /** The message a blocked worker was running: reported as HANDLER_TIMEOUT, sent again while it may be. */
  _timedOut(s, rec, reason, again) {
    rec.attempts++;
    s.timedOut++;
    let fate;
    let redeliver = false;
    if (rec.attempts > this._maxRedeliveries) {
      fate = `not redelivered: it timed out ${rec.attempts} times (maxRedeliveries ${this._maxRedeliveries})`;
    } else if (rec.transfer !== undefined) {
      fate = 'not redelivered: its ArrayBuffers (transfer) went with the stopped worker';
    } else {
      fate = `redelivered (attempt ${rec.attempts + 1} of at most ${this._maxRedeliveries + 1})`;
      redeliver = true;
    }
    const err = new EdgebusError('HANDLER_TIMEOUT',
      `handler on \`${rec.topic}\` in worker ${s.index} did not return within timeoutMs (${this._timeoutMs} ms): ${reason}; the worker was replaced and the message ${fate}`);
    err.shard = s.index;
    err.redelivered = redeliver;
    if (rec.req !== undefined) this._requests.delete(rec.tag);
    if (redeliver) {
      s.redelivered++;
      again.push(rec);
    } else {
      s.failed++;
      this._failRequest(rec, err);
    }
    this._report(err, rec, s.index, undefined);
  }

  // ----- the watchdog of blocked workers (only with timeoutMs) ---------------------------------

  /** How often the watchdog looks, and workers running handlers show their event loop is free. */
  _watchEvery() {
    return Math.max(5, Math.min(this._stuckMs / 4, 1000));
  }

  _armWatchdog() {
    if (this._stuckMs === undefined || this._watchdog !== undefined || this._stopped) return;
    if (!this._shards.some((s) => s.sent.size > 0)) return;
    const every = this._watchEvery();
    this._watchdog = setTimeout(() => {
      this._watchdog = undefined;
      this._checkStuck();
      this._armWatchdog();
    }, every);
    // The workers keep Node running while they have work; this timer alone does not.
    if (typeof this._watchdog === 'object' && typeof this._watchdog.unref === 'function') this._watchdog.unref();
  }

  _checkStuck() {
    if (this._stopped) return;
    const t = now();
    for (const s of this._shards) {
      if (s.worker === undefined || !s.ready || s.sent.size === 0) continue;
      const marks = s.marks;
      const span = this._maxInFlight;
      if (marks !== null) {
        // Running first, then the progress: the worker writes them in the other order.
        s.running = Atomics.load(marks, 2 * span + 1);
        const runs = Atomics.load(marks, 2 * span);
        if (runs !== s.runs) {
          s.runs = runs;
          s.progressAt = t;
        }
      }
      if (s.running > 0 && t - s.progressAt > this._stuckMs) {
        // No handler started and no heartbeat since: the worker's event loop is blocked, its own
        // timers cannot fire. The message whose handler is inside its synchronous call timed out;
        // when the loop is in code after an await (or without shared memory), every message with
        // a handler running is counted as timed out: one of them blocks the worker.
        const timedOut = new Set();
        const current = marks !== null ? Atomics.load(marks, 2 * span + 2) : 0;
        if (current !== 0 && s.sent.has(current)) {
          timedOut.add(current);
        } else {
          for (const rec of s.sent.values()) {
            if (marks !== null ? Atomics.load(marks, span + rec.slot) > 0 : s.runningTags.has(rec.tag)) timedOut.add(rec.tag);
          }
        }
        this._onDeath(s, `it was blocked for more than ${Math.round(t - s.progressAt)} ms`, timedOut);
      }
    }
  }

  _fatalError(err) {
    if (this._fatal !== undefined) return;
    this._fatal = err;
    this._closing = true;
    this._stopWorkers();
    for (const s of this._shards) {
      const recs = [...s.sent.values(), ...s.queue.drainAll()];
      s.sent.clear();
      if (recs.length === 0) continue;
      // Said from the point of view of this message's own worker, which is not always the one that failed.
      const e = new EdgebusError(err.code, `not handled by worker ${s.index}: the bus stopped (${err.message})`, { cause: err });
      e.shard = s.index;
      for (const rec of recs) this._lost(s, rec, e);
    }
    this._rejectWaiters(err);
    for (const w of this._readyWaiters.splice(0)) w.reject(err);
    this._afterProgress();
  }

  _stopWorkers() {
    this._stopped = true;
    if (this._watchdog !== undefined) {
      clearTimeout(this._watchdog);
      this._watchdog = undefined;
    }
    for (const s of this._shards) {
      s.incarnation = undefined;
      s.ready = false;
      if (s.worker !== undefined) {
        try { s.worker.terminate(); } catch { /* already gone */ }
        s.worker = undefined;
      }
    }
  }

  _rejectWaiters(err) {
    while (this._waiters.length > 0) this._waiters.shift().reject(err);
  }

  /** Node: workers keep the process alive only while they start or have work. */
  _reference() {
    // A request waits for its worker's reply, which may come after its message is acknowledged.
    const busy = this._hasWork() || this._requestCounts.pending > 0 ||
      this._shards.some((s) => s.worker !== undefined && !s.ready);
    if (busy === this._referenced) return;
    this._referenced = busy;
    for (const s of this._shards) {
      if (s.worker === undefined) continue;
      if (busy && s.worker.ref) s.worker.ref();
      else if (!busy && s.worker.unref) s.worker.unref();
    }
  }

  _hasWork() {
    if (this._waiters.length > 0) return true;
    for (const s of this._shards) if (s.queue.length > 0 || s.sent.size > 0) return true;
    return false;
  }

  _afterProgress() {
    if (this._waiters.length > 0) this._admitWaiters();
    this._reference();
    if (this._stuckMs !== undefined) this._armWatchdog();
    if (this._idleWaiters.length > 0 && !this._hasWork()) {
      for (const w of this._idleWaiters.splice(0)) w();
    }
  }

  // ----- errors --------------------------------------------------------------------------------

  _report(error, rec, shard, subscription) {
    const message = publicMessage(rec);
    const info = { shard, subscription };
    if (this._onError !== undefined) {
      try {
        this._onError(error, message, info);
      } catch (e) {
        console.error('edgebus: onError threw', e);
      }
    }
    // Someone listens on `$errors` (a subscription, a once(), a stream()): the system bus's route says.
    const listened = this._system._route('$errors').subs.length > 0;
    if (listened) {
      this._system.publish('$errors', { error, message, subscription, shard });
    } else if (this._onError === undefined) {
      console.error(`edgebus: handler failed in worker ${shard} on \`${rec.topic}\`:`, error);
    }
  }

  /** Only system topics (`$errors`) are subscribed to on the main thread. */
  _checkSystem(pattern) {
    if (typeof pattern === 'string' && !pattern.startsWith('$')) {
      fail('INVALID_PATTERN', `pattern ${describe(pattern)}: a ShardedBus runs message handlers in its workers (register them in the handlers module); on the main thread only system topics such as \`$errors\` can be subscribed`);
    }
  }

  /** `Bus.once` on a system topic (`$errors`) of the main thread. */
  once(pattern, options) {
    try {
      if (this._closing) fail('CLOSED', 'bus is closed');
      this._checkSystem(pattern);
    } catch (e) {
      return Promise.reject(e);
    }
    return this._system.once(pattern, options);
  }

  /** `Bus.stream` on a system topic (`$errors`) of the main thread. */
  stream(pattern, options) {
    if (this._closing) fail('CLOSED', 'bus is closed');
    this._checkSystem(pattern);
    return this._system.stream(pattern, options);
  }

  /** Main-thread subscriptions to system topics (`$errors`); handlers of messages live in the handlers module. */
  subscribe(pattern, handler, options) {
    if (this._closing) fail('CLOSED', 'bus is closed');
    this._checkSystem(pattern);
    return this._system.subscribe(pattern, handler, options);
  }

  // ----- publishing ----------------------------------------------------------------------------

  _shardOf(keyOrTopic) {
    if (this.workers === 1) return 0;
    let s = this._shardCache.get(keyOrTopic);
    if (s === undefined) {
      s = raw.shardOf(keyOrTopic, this.workers);
      // Remembers the first keys seen (topics, hot keys); a stream of unique keys is not cached.
      if (this._shardCache.size < 4096) this._shardCache.set(keyOrTopic, s);
    }
    return s;
  }

  _checkOpen() {
    if (this._fatal !== undefined) throw new EdgebusError('CLOSED', `bus is stopped: ${this._fatal.message}`);
    if (this._closing) fail('CLOSED', 'bus is closed');
  }

  _checkTopic(topic) {
    // The main-thread system bus validates topics with the core's rules (cached per topic).
    try {
      this._system._route(topic);
    } catch (e) {
      if (e instanceof EdgebusError) throw e;
      throw new EdgebusError('INVALID_TOPIC', String(e && e.message));
    }
  }

  /** Room in a shard for `n` more: credits not used plus the queue bound. */
  _room(s) {
    return this._maxInFlight - s.sent.size + this._maxQueue - s.queue.length;
  }

  _record(topic, payload, o, id) {
    const rec = {
      topic, payload, publishedAt: now(), id, key: o.key, headers: o.headers, ttlMs: o.ttlMs,
      transfer: undefined, attempts: 0, tag: 0, slot: 0, req: undefined,
    };
    return rec;
  }

  /** Applies the overflow policy to a full shard; true when the message may be queued. */
  _makeRoom(s, n, sync) {
    if (this._room(s) >= n) return true;
    switch (this._overflow) {
      case 'dropNewest':
        return false;
      case 'dropOldest': {
        while (this._room(s) < n && s.queue.length > 0) {
          const rec = s.queue.shift();
          s.dropped++;
          this._failRequest(rec, new EdgebusError('QUEUE_FULL',
            `the request on \`${rec.topic}\` was dropped from the full queue of shard ${s.index} (overflow 'dropOldest')`));
        }
        return this._room(s) >= n;
      }
      case 'reject':
        fail('QUEUE_FULL', `queue of shard ${s.index} is full (${this._maxInFlight} in flight, maxQueue ${this._maxQueue}, overflow 'reject')`);
        break;
      default:
        if (sync) fail('QUEUE_FULL', `queue of shard ${s.index} is full (overflow 'wait'): use publishAsync to wait for room`);
        return false;
    }
    return false;
  }

  _accept(s, rec) {
    s.queue.push(rec);
    this._published++;
    // A long burst of publishes sends full batches as it goes, so workers start at once.
    if (s.queue.length >= FLUSH_AT && s.ready && s.sent.size < this._maxInFlight) this._flushShard(s, now());
    else this._scheduleFlush();
  }

  /** Publishes; false when dropped as a duplicate (or by `dropNewest`). */
  publish(topic, payload, options) {
    this._checkOpen();
    this._checkTopic(topic);
    const o = parsePublish(options, false);
    checkCloneable(payload, topic, platform.isProxy);
    // Again: reading the options and the payload runs the caller's getters, which may have closed
    // the bus (a message taken after close() stopped the workers would never be handled).
    this._checkOpen();
    return this._publish(topic, payload, o, true);
  }

  /** Publishes a checked message; `o` is a snapshot from parsePublish. */
  _publish(topic, payload, o, sync) {
    if (o.id !== undefined && this._filter !== undefined && this._filter.has(o.id)) {
      this._duplicates++;
      return false;
    }
    const s = this._shards[this._shardOf(o.key ?? topic)];
    if (!this._makeRoom(s, 1, sync)) {
      if (this._overflow === 'wait') return undefined;
      s.dropped++;
      return false;
    }
    if (o.id !== undefined && this._filter !== undefined) this._filter.check(o.id);
    const rec = this._record(topic, payload, o, o.id);
    if (o.transfer !== undefined && o.transfer.length > 0) rec.transfer = o.transfer;
    this._accept(s, rec);
    return true;
  }

  /** Publishes many payloads on one topic (one shard); returns how many were accepted. */
  publishBatch(topic, payloads, options) {
    this._checkOpen();
    this._checkTopic(topic);
    if (!isArray(payloads)) fail('INVALID_ARGUMENT', `payloads must be an array, got ${describe(payloads)}`);
    try {
      payloads = Array.from(payloads); // read once
    } catch (e) {
      fail('INVALID_ARGUMENT', `payloads could not be read: ${errorText(e)}`);
    }
    const o = parsePublish(options, true);
    const ids = o.ids;
    if (ids !== undefined && ids.length !== payloads.length) {
      fail('INVALID_OPTION', `option \`ids\` must be an array with one id per payload (${payloads.length})`);
    }
    for (const p of payloads) checkCloneable(p, topic, platform.isProxy);
    this._checkOpen(); // (the caller's getters run above may have closed it, as in publish)
    const fresh = [];
    const seen = new Set();
    for (let i = 0; i < payloads.length; i++) {
      const id = ids === undefined ? undefined : ids[i];
      if (id !== undefined && this._filter !== undefined && (this._filter.has(id) || seen.has(id))) continue;
      if (id !== undefined) seen.add(id);
      fresh.push(i);
    }
    const s = this._shards[this._shardOf(o.key ?? topic)];
    // All or nothing under 'reject' (and 'wait', which publishBatch cannot wait for): a refused
    // batch counts no duplicates either.
    const fits = this._makeRoom(s, fresh.length, true);
    this._duplicates += payloads.length - fresh.length;
    if (!fits) {
      const fit = Math.max(0, this._room(s));
      s.dropped += fresh.length - fit;
      // What does not fit is dropped: the newest under dropNewest, the oldest under dropOldest.
      if (this._overflow === 'dropOldest') fresh.splice(0, fresh.length - fit);
      else fresh.length = fit;
    }
    for (let j = 0; j < fresh.length; j++) {
      const i = fresh[j];
      const id = ids === undefined ? undefined : ids[i];
      if (id !== undefined && this._filter !== undefined) this._filter.check(id);
      const rec = this._record(topic, payloads[i], o, id);
      this._accept(s, rec);
    }
    return fresh.length;
  }

  /** Publishes, waiting for room under `overflow: 'wait'`; calls are admitted in call order. */
  publishAsync(topic, payload, options) {
    try {
      this._checkOpen();
      // Checked and snapshotted now: bad input is refused at once, and a waiting message keeps the
      // options of this call whatever the caller does with its object afterwards.
      this._checkTopic(topic);
      const o = parsePublish(options, false, true);
      checkCloneable(payload, topic, platform.isProxy);
      this._checkOpen(); // (the caller's getters run above may have closed it, as in publish)
      const signal = o.signal;
      if (signal !== undefined && isAborted(signal)) {
        throw new EdgebusError('ABORTED', 'the publish was aborted before it was made', { cause: abortReason(signal) });
      }
      if (this._waiters.length === 0) {
        const r = this._publish(topic, payload, o, false);
        if (r !== undefined) return Promise.resolve(r);
      }
      return new Promise((resolve, reject) => {
        const w = { topic, payload, options: o, resolve, reject, aborted: false };
        if (signal !== undefined) {
          // Given up while it waits for room: it leaves the waiting publishes (once it reaches
          // the head of their queue) and never gets in.
          const onAbort = () => {
            w.aborted = true;
            reject(new EdgebusError('ABORTED', 'the publish was aborted while it waited for room', { cause: abortReason(signal) }));
            this._admitWaiters();
            this._afterProgress();
          };
          addAbortListener(signal, onAbort);
          w.resolve = (v) => { removeAbortListener(signal, onAbort); resolve(v); };
          w.reject = (e) => { removeAbortListener(signal, onAbort); reject(e); };
        }
        this._waiters.push(w);
        this._reference();
      });
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * Publishes `payload` on `topic` as a request to the worker its key (or topic) maps to, and
   * resolves with the first reply of the handlers there (a handler's return value, or
   * `message.reply`). Rejects as `Bus.request` does (NO_RESPONDERS, TIMEOUT, ABORTED,
   * HANDLER_FAILED with the worker's error as `cause`), with WORKER_CRASHED when its worker died
   * more often than `maxRedeliveries` allows (a request is redelivered like any message), and
   * QUEUE_FULL when its shard has no room.
   */
  request(topic, payload, options) {
    let rec;
    try {
      this._checkOpen();
      this._checkTopic(topic);
      const o = parseRequestOptions(options, false, ['transfer']);
      if (o.transfer !== undefined) o.transfer = checkTransfer(o.transfer);
      if (o.signal !== undefined && isAborted(o.signal)) {
        throw new EdgebusError('ABORTED', 'the request was aborted before it was made', { cause: abortReason(o.signal) });
      }
      checkCloneable(payload, topic, platform.isProxy);
      this._checkOpen(); // (the caller's getters run above may have closed it, as in publish)
      const s = this._shards[this._shardOf(o.key ?? topic)];
      if (!this._makeRoom(s, 1, true)) {
        fail('QUEUE_FULL', `queue of shard ${s.index} is full (overflow '${this._overflow}'): the request was not made`);
      }
      rec = this._record(topic, payload, o, undefined);
      if (o.transfer !== undefined && o.transfer.length > 0) rec.transfer = o.transfer;
      const t = now();
      rec.req = {
        done: false, resolve: undefined, reject: undefined, timer: undefined, signal: o.signal, onAbort: undefined,
        deadline: o.timeoutMs === Infinity ? Infinity : t + o.timeoutMs,
      };
      const promise = new Promise((resolve, reject) => {
        rec.req.resolve = resolve;
        rec.req.reject = reject;
      });
      this._requestCounts.sent++;
      this._requestCounts.pending++;
      if (o.timeoutMs !== Infinity) {
        // The main thread's own deadline (the worker's bus has the same one): a worker that is
        // stopped or stuck cannot answer.
        rec.req.timer = setTimeout(() => {
          this._endRequest(rec, new EdgebusError('TIMEOUT', `no reply within ${o.timeoutMs} ms`));
        }, Math.min(o.timeoutMs, 2 ** 31 - 1));
      }
      if (o.signal !== undefined) {
        rec.req.onAbort = () => {
          this._endRequest(rec, new EdgebusError('ABORTED', 'the request was aborted', { cause: abortReason(o.signal) }));
        };
        addAbortListener(o.signal, rec.req.onAbort);
      }
      this._accept(s, rec);
      return promise;
    } catch (e) {
      return Promise.reject(e);
    }
  }

  _admitWaiters() {
    while (this._waiters.length > 0) {
      const w = this._waiters.a[this._waiters.h];
      if (w.aborted) {
        this._waiters.shift();
        continue;
      }
      let r;
      try {
        r = this._publish(w.topic, w.payload, w.options, false);
      } catch (e) {
        this._waiters.shift();
        w.reject(e);
        continue;
      }
      if (r === undefined) return;
      this._waiters.shift();
      w.resolve(r);
    }
  }

  // ----- sending -------------------------------------------------------------------------------

  _scheduleFlush() {
    if (this._flushQueued) return;
    this._flushQueued = true;
    queueMicrotask(() => {
      this._flushQueued = false;
      this._flush();
    });
  }

  /** One postMessage per shard: everything its credits allow, as columns (cheaper to clone). */
  _flush() {
    const t = now();
    for (let i = 0; i < this._shards.length; i++) this._flushShard(this._shards[i], t);
    this._afterProgress();
  }

  _flushShard(s, t) {
    if (!s.ready || s.queue.length === 0) return;
    const credits = this._maxInFlight - s.sent.size;
    if (credits <= 0) return;
    const recs = [];
    while (recs.length < credits && s.queue.length > 0) {
      const rec = s.queue.shift();
      if (rec.ttlMs !== undefined && rec.ttlMs - (t - rec.publishedAt) <= 0) {
        s.expired++;
        continue;
      }
      rec.tag = this._tag = (this._tag % 2147483647) + 1;
      rec.slot = s.freeSlots.pop();
      s.sent.set(rec.tag, rec);
      if (rec.req !== undefined) this._requests.set(rec.tag, rec);
      recs.push(rec);
    }
    if (recs.length > 0) {
      this._post(s, recs, t);
      if (this._stuckMs !== undefined) this._armWatchdog();
    }
  }

  /**
   * The wire form of messages: typed arrays and parallel arrays, optional columns left out; one
   * message alone (a request awaited before the next, a trickle of publishes) as one flat object,
   * which the structured clone copies three to four times faster than columns of one.
   */
  _encode(recs, t) {
    const n = recs.length;
    if (n === 1) return this._encodeOne(recs[0], t);
    const b = {
      type: 'batch', n, tags: new Int32Array(n), slots: new Int32Array(n), at: new Float64Array(n),
      topics: [], topic: new Int32Array(n), payloads: new Array(n),
      keys: undefined, ids: undefined, headers: undefined, ttls: undefined, requests: undefined,
    };
    let transfer;
    let lastTopic;
    let lastIndex = -1;
    for (let i = 0; i < n; i++) {
      const rec = recs[i];
      b.tags[i] = rec.tag;
      b.slots[i] = rec.slot;
      b.at[i] = rec.publishedAt;
      if (rec.topic !== lastTopic) {
        lastTopic = rec.topic;
        lastIndex = b.topics.indexOf(lastTopic);
        if (lastIndex < 0 || b.topics.length > 64) lastIndex = b.topics.push(lastTopic) - 1;
      }
      b.topic[i] = lastIndex;
      b.payloads[i] = rec.payload;
      if (rec.key !== undefined) (b.keys ??= new Array(n))[i] = rec.key;
      if (rec.id !== undefined) (b.ids ??= new Array(n))[i] = rec.id;
      if (rec.headers !== undefined) (b.headers ??= new Array(n))[i] = rec.headers;
      if (rec.ttlMs !== undefined) (b.ttls ??= new Array(n))[i] = rec.ttlMs - (t - rec.publishedAt);
      // A request: the time it has left (NaN for the other messages of the batch).
      if (rec.req !== undefined) (b.requests ??= new Float64Array(n).fill(NaN))[i] = Math.max(1, rec.req.deadline - t);
      if (rec.transfer !== undefined) (transfer ??= []).push(...rec.transfer);
    }
    return { batch: b, transfer };
  }

  /** One message: `{ type: 'one', tag, slot, at, topic, payload }` and its optional fields. */
  _encodeOne(rec, t) {
    const one = { type: 'one', tag: rec.tag, slot: rec.slot, at: rec.publishedAt, topic: rec.topic, payload: rec.payload };
    if (rec.key !== undefined) one.key = rec.key;
    if (rec.id !== undefined) one.id = rec.id;
    if (rec.headers !== undefined) one.headers = rec.headers;
    if (rec.ttlMs !== undefined) one.ttl = rec.ttlMs - (t - rec.publishedAt);
    if (rec.req !== undefined) one.request = Math.max(1, rec.req.deadline - t);
    return { batch: one, transfer: rec.transfer };
  }

  _post(s, recs, t) {
    const { batch, transfer } = this._encode(recs, t);
    try {
      s.worker.post(batch, transfer);
      return;
    } catch {
      // A payload changed after publish into something that cannot be cloned: find it, send the rest.
    }
    for (const rec of recs) {
      try {
        const one = this._encode([rec], t);
        s.worker.post(one.batch, one.transfer);
      } catch (e) {
        s.sent.delete(rec.tag);
        s.freeSlots.push(rec.slot);
        this._lost(s, rec, new EdgebusError('DATA_CLONE', `payload on \`${rec.topic}\` could not be sent to worker ${s.index}: ${e && e.message}`));
        // Its credit is free again, and no acknowledgement will come for it to flush the rest.
        this._scheduleFlush();
      }
    }
  }

  // ----- lifecycle -----------------------------------------------------------------------------

  /** Resolves when everything published so far has been handled (ABORTED when `signal` aborts first). */
  drain(options) {
    let signal;
    try {
      const o = options === undefined ? {} : snapshot(options, ['signal'], 'options');
      signal = signalOption(o.signal);
      if (signal !== undefined && isAborted(signal)) {
        throw new EdgebusError('ABORTED', 'drain() was aborted before it waited', { cause: abortReason(signal) });
      }
    } catch (e) {
      return Promise.reject(e);
    }
    this._flush();
    let waiter;
    const handled = this._hasWork() ? new Promise((resolve) => { waiter = resolve; this._idleWaiters.push(resolve); }) : Promise.resolve();
    // …and the main thread's `$errors` subscribers have seen the failures.
    const done = handled.then(() => this._system.drain());
    if (signal === undefined || waiter === undefined) return done;
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        const at = this._idleWaiters.indexOf(waiter);
        if (at >= 0) this._idleWaiters.splice(at, 1);
        reject(new EdgebusError('ABORTED', 'drain() was aborted', { cause: abortReason(signal) }));
      };
      addAbortListener(signal, onAbort);
      done.then((v) => { removeAbortListener(signal, onAbort); resolve(v); }, reject);
    });
  }

  /** Later publishes throw CLOSED; resolves after draining, then stops the workers. */
  async close() {
    if (this._stopped) return;
    this._closing = true;
    await this.drain();
    this._stopWorkers();
    await this._system.close();
  }

  /** Stops the workers at once. Returns how many messages were abandoned (also in stats). */
  terminate() {
    this._closing = true;
    let n = this._waiters.length;
    const stopped = new EdgebusError('CLOSED', 'bus was terminated before the request got its answer');
    for (const s of this._shards) {
      n += s.queue.length + s.sent.size;
      for (const rec of [...s.sent.values(), ...s.queue.drainAll()]) this._failRequest(rec, stopped);
      s.sent.clear();
    }
    this._abandoned += n;
    if (!this._stopped) this._stopWorkers();
    this._rejectWaiters(new EdgebusError('CLOSED', 'bus was terminated'));
    for (const w of this._readyWaiters.splice(0)) w.reject(new EdgebusError('CLOSED', 'bus was terminated'));
    this._afterProgress();
    return n;
  }

  stats() {
    const perShard = this._shards.map((s) => ({
      shard: s.index, queued: s.queue.length, inFlight: s.sent.size, done: s.done, failed: s.failed,
      dropped: s.dropped, expired: s.expired, restarts: s.restarts, redelivered: s.redelivered,
      timedOut: s.timedOut, latency: s.latency.summary(),
    }));
    const sum = (k) => perShard.reduce((a, s) => a + s[k], 0);
    const all = new Histogram();
    for (const s of this._shards) {
      for (let i = 0; i < all.counts.length; i++) all.counts[i] += s.latency.counts[i];
      all.count += s.latency.count;
    }
    return {
      workers: this.workers, published: this._published, duplicates: this._duplicates,
      waiting: this._waiters.length, abandoned: this._abandoned,
      queued: sum('queued'), inFlight: sum('inFlight'), done: sum('done'), failed: sum('failed'),
      dropped: sum('dropped'), expired: sum('expired'), restarts: sum('restarts'),
      redelivered: sum('redelivered'), timedOut: sum('timedOut'), latency: all.summary(), perShard,
      requests: { ...this._requestCounts },
    };
  }
}

