// The body of a ShardedBus worker (module Web Worker or Node worker_threads), shared by both worker
// entries (src/js/entries/shard-worker.*.js). The worker initializes edgebus from the
// WebAssembly.Module it is sent (no fetching, no compiling), runs an ordinary `Bus`, lets the
// handlers module register its subscriptions on it, and tells the main thread which messages are
// finished.
//
// A message is finished when each subscription its topic matches has settled its delivery (success,
// or a failure reported to onError). Deliveries that never start (a worker subscription's own
// overflow, TTL, or unsubscribing) are finished when the worker's bus goes idle.
//
// With shared memory, the worker also marks each message it finishes, and counts the handlers running
// on each, in an Int32Array the main thread reads after a crash: a finished message is never run
// again, even when its acknowledgement was still unsent when the worker died, and only a message
// with a handler running then counts the crash against its `maxRedeliveries` (one whose other
// subscription had already handled it, waiting for this one, was not running).
//
// With a `timeoutMs`, the main thread watches for a handler stuck in a loop (its timer can never fire
// in a blocked worker): while handlers run, the worker shows progress (each handler start, and a
// heartbeat from its event loop), in shared memory or, without it, in messages; the main thread
// replaces a worker that shows none for too long while a handler runs.

import { publicMessage } from './values.js';
import { errorText } from '../shared/errors.js';

// Every handler is called through one of these two functions, never directly. Their call of `fn`
// is kept megamorphic (it has called two different functions: see `unmono`), so V8 never inlines
// a handler there, and so never into the delivery code that calls them (this file's wrappers, the
// worker's Bus): a handler is compiled on its own. Inlined into that code, a handler's hot loop
// runs inside the `try` that catches handler failures, where V8 keeps the loop's variables in
// memory rather than in registers: the benchmark's ~50 µs xorshift loop ran twice as slow, in the
// processes where V8 happened to inline it.
function call1(fn, a) {
  return fn(a);
}

function call2(fn, a, b) {
  return fn(a, b);
}

const noop1 = () => undefined;
const noop2 = () => 0;

/**
 * Makes the call sites of call1 and call2 megamorphic (again: V8 drops the feedback of a function
 * that went unused for long). Two calls each, of functions it never inlines through them again.
 */
function unmono() {
  call1(noop1, undefined);
  call1(noop2, undefined);
  call2(noop1, undefined, undefined);
  call2(noop2, undefined, undefined);
}

/**
 * The setup function of a handlers module (its default export, or its `setup` export), imported by
 * URL: the default workers' way (the `handlers` option). The URL is only known at run time, so
 * bundlers must leave this import alone (they could not resolve it).
 */
export async function importHandlers(api, url) {
  const mod = await import(/* webpackIgnore: true */ /* @vite-ignore */ url);
  const setup = typeof mod.default === 'function' ? mod.default : mod.setup;
  if (typeof setup !== 'function') {
    throw new api.EdgebusError('INVALID_HANDLER',
      `handlers module ${url} must default-export (or export as \`setup\`) a function (bus, context) that subscribes`);
  }
  return setup;
}

/**
 * Runs a shard worker: `api` is the package as the worker imported it (initSync, Bus, EdgebusError,
 * matches), `port` how this worker talks to the main thread (`post(message, transfer)`,
 * `onMessage(fn)`), `load(init)` gives the setup function (or a promise of it): the handlers module
 * the `init` message names, or the one `serveShard(setup)` was given.
 */
export function runShardWorker(api, port, load) {
  const TOKEN = Symbol('edgebus.shard.token');
  const ACK_EVERY = 128;
  const ACK_AFTER_MS = 5;
  const now = typeof performance !== 'undefined' ? () => performance.now() : () => Date.now();

  let bus;
  let marks = null;
  let markSpan = 0;
  // Handler runs, for crash recovery and the main thread's watchdog. With shared memory:
  // marks[slot] is the tag of the message finished in that slot, marks[span + slot] how many
  // handlers run on the message in that slot, marks[2 * span] counts progress (starts and
  // heartbeats), marks[2 * span + 1] how many handlers run, and marks[2 * span + 2] the tag of the
  // message whose handler is inside its synchronous call (0 when none). Without shared memory: a
  // `run` message per start, a `beat` message per heartbeat, and the tags of runs that ended in the
  // next `acks`.
  let watch = false;
  let beatMs = 0;
  let beat;
  let running = 0;
  let progress = 0;
  let ended = [];
  const subs = [];           // { id, pattern, tokens, active }
  let pending = [];          // tokens not finished, in arrival order
  let acks = [];             // tags finished since the last report
  let swept = [];            // those of them with deliveries that never started (dropped, expired…)
  let errors = [];           // failures since the last report
  let replies = [];          // outcomes of requests since the last report: { tag, ok, value | error }
  let markLater = [];        // finished messages whose failures are in `errors`: marked once reported
  let lastAck = now();
  let ackQueued = false;
  let sweeping = false;
  let ready = false;
  const early = [];          // batches that arrived before the handlers module was loaded

  function serializeError(e, depth = 0) {
    if (e instanceof Error || (e && typeof e === 'object' && typeof e.message === 'string')) {
      const out = { name: String(e.name ?? 'Error'), message: String(e.message), stack: typeof e.stack === 'string' ? e.stack : undefined };
      if (typeof e.code === 'string') out.code = e.code;
      // A request's HANDLER_FAILED carries the handler's own error.
      if (depth === 0 && e.cause !== undefined) out.cause = serializeError(e.cause, 1);
      return out;
    }
    let text;
    try { text = String(e); } catch { text = Object.prototype.toString.call(e); }
    return { name: 'Error', message: text, thrown: true };
  }

  function report() {
    ackQueued = false;
    if (acks.length === 0 && errors.length === 0 && ended.length === 0 && replies.length === 0) return;
    // Up to a few dozen tags go as the array itself (cloned faster than a typed array up to
    // there); the fields with nothing to say are left out.
    const m = { type: 'acks', tags: acks.length > 32 ? Int32Array.from(acks) : acks, errors };
    if (swept.length > 0) m.swept = Int32Array.from(swept);
    if (ended.length > 0) m.ended = Int32Array.from(ended);
    if (replies.length > 0) m.replies = replies;
    try {
      // The replies of requests ride with the acknowledgements: one message for both.
      port.post(m);
    } catch {
      // A reply that cannot be cloned: the rest go without it, each reply on its own.
      m.replies = undefined;
      port.post(m);
      for (const r of replies) answerAlone(r);
    }
    replies = [];
    for (const t of markLater) Atomics.store(marks, t.slot, t.tag);
    markLater = [];
    ended = [];
    acks = [];
    swept = [];
    errors = [];
    lastAck = now();
  }

  function scheduleReport() {
    if (ackQueued) return;
    ackQueued = true;
    queueMicrotask(report);
  }

  function finish(t) {
    if (t.finished) return;
    t.finished = true;
    // Marked finished only once its failures are reported: should the worker die first (a loop
    // later in this turn), the message is sent again and fails again, rather than its failure lost.
    if (marks !== null) {
      if (t.unreported) markLater.push(t);
      else Atomics.store(marks, t.slot, t.tag);
    }
    acks.push(t.tag);
    if (acks.length >= ACK_EVERY || now() - lastAck >= ACK_AFTER_MS) report();
    else scheduleReport();
  }

  /**
   * A handler starts on message `t` for subscription `subId`; returns the run to end. With shared
   * memory, each message's running handlers are counted whether or not the watchdog looks: after a
   * crash, only a message with a handler running then counts the crash against it.
   */
  function beginRun(t, subId) {
    if (!watch && marks === null) return undefined;
    const run = { t, subId, ended: false };
    (t.runs ??= []).push(run);
    // The message, the progress, then the count: the main thread reads them in the other order.
    if (marks !== null) Atomics.add(marks, markSpan + t.slot, 1);
    if (!watch) return run;
    running++;
    if (running === 1) beat = setInterval(heartbeat, beatMs);
    if (marks !== null) {
      progress = (progress % 2147483647) + 1;
      Atomics.store(marks, 2 * markSpan, progress);
      Atomics.store(marks, 2 * markSpan + 1, running);
    } else {
      port.post({ type: 'run', tag: t.tag });
    }
    return run;
  }

  /** The handler settled (or its delivery timed out in the worker's bus): not running any more. */
  function endRun(run) {
    if (run === undefined || run.ended) return;
    run.ended = true;
    if (marks !== null) Atomics.sub(marks, markSpan + run.t.slot, 1);
    if (!watch) return;
    running--;
    if (running === 0) clearInterval(beat);
    if (marks !== null) {
      Atomics.store(marks, 2 * markSpan + 1, running);
    } else {
      ended.push(run.t.tag);
      scheduleReport();
    }
  }

  /** The event loop is free while handlers run (awaiting): not blocked. */
  function heartbeat() {
    if (marks !== null) {
      progress = (progress % 2147483647) + 1;
      Atomics.store(marks, 2 * markSpan, progress);
    } else {
      port.post({ type: 'beat' });
    }
  }

  /** Calls a handler, telling the watchdog which message runs synchronously meanwhile. */
  function callSync(t, fn) {
    if (marks === null) return fn();
    const cell = 2 * markSpan + 2;
    const outer = Atomics.exchange(marks, cell, t.tag);
    try {
      return fn();
    } finally {
      Atomics.store(marks, cell, outer);
    }
  }

  function endRunsOf(t, subId) {
    if (t.runs === undefined) return;
    for (const run of t.runs) if (run.subId === subId) endRun(run);
  }

  function settle(t, subId) {
    if (t.settled.includes(subId)) return;
    t.settled.push(subId);
    if (t.settled.length >= t.expected) finish(t);
  }

  function userMessage(t) {
    if (t.msg === undefined) t.msg = publicMessage(t.m);
    return t.msg;
  }

  // ----- subscriptions registered by the handlers module ---------------------------------------

  /**
   * The deliveries a message on `topic` gets, which settle it: as the core routes it (each live
   * subscription, a work queue once), not counted again here.
   */
  function expectedFor(topic) {
    return bus._reach(topic);
  }

  /** A plain copy of subscribe options (each own key read once); other values as given, for the bus to refuse. */
  function ownOptions(options) {
    if (options === null || typeof options !== 'object') return options;
    try {
      if (Array.isArray(options)) return options;
      const copy = {};
      for (const k of Object.keys(options)) copy[k] = options[k];
      return copy;
    } catch (e) {
      throw new api.EdgebusError('INVALID_OPTION', `options could not be read: ${errorText(e)}`, { cause: e });
    }
  }

  /** Whether a handler takes the message too (as Bus decides it): INVALID_HANDLER when its `length` cannot be read. */
  function takesMessage(handler) {
    try {
      return handler.length !== 1;
    } catch (e) {
      throw new api.EdgebusError('INVALID_HANDLER', `handler could not be read: ${errorText(e)}`, { cause: e });
    }
  }

  function subscribe(pattern, handler, options) {
    // The options are read once, as the bus reads them (its own keys): the copy is what the bus
    // gets, so `batch` cannot answer one thing here and another to the bus (a getter, a `batch`
    // inherited from a prototype), which would hand messages to the wrong wrapper.
    options = ownOptions(options);
    const batch = options !== undefined && options !== null && options.batch !== undefined && options.batch !== false;
    const rec = { id: subs.length, pattern, active: true, sub: undefined };
    let wrapped;
    if (typeof handler !== 'function') {
      wrapped = handler; // let the bus report INVALID_HANDLER
    } else if (batch) {
      wrapped = (items) => {
        const ts = items.map((env) => (env.headers === undefined ? undefined : env.headers[TOKEN]));
        if (ts.includes(undefined)) return call1(handler, items); // the worker's own messages
        const rs = ts.map((t) => beginRun(t, rec.id));
        const end = () => { for (const run of rs) endRun(run); };
        let r;
        try {
          r = call1(handler, ts.map(userMessage)); // several messages: no single one to blame
        } catch (e) {
          end();
          throw e;
        }
        if (r !== undefined && r !== null && typeof r.then === 'function') {
          return Promise.resolve(r).then(() => {
            end();
            for (const t of ts) settle(t, rec.id);
          }, (e) => {
            end();
            throw e;
          });
        }
        end();
        for (const t of ts) settle(t, rec.id);
        return r;
      };
    } else {
      const wantsMessage = takesMessage(handler);
      wrapped = function (payload, env) {
        const t = env.headers === undefined ? undefined : env.headers[TOKEN];
        // A message of the worker's own bus (its `$errors`): not one the main thread tracks.
        if (t === undefined) return wantsMessage ? call2(handler, payload, env) : call1(handler, payload);
        const run = beginRun(t, rec.id);
        // A request's message answers through the worker's bus (`reply`); its value is the reply.
        const msg = !wantsMessage ? undefined
          : env.reply === undefined ? userMessage(t) : Object.assign({}, userMessage(t), { reply: (v) => env.reply(v) });
        let r;
        try {
          if (!watch) r = wantsMessage ? call2(handler, payload, msg) : call1(handler, payload);
          else r = callSync(t, () => (wantsMessage ? call2(handler, payload, msg) : call1(handler, payload)));
        } catch (e) {
          endRun(run);
          throw e;
        }
        if (r !== undefined && r !== null && typeof r.then === 'function') {
          return Promise.resolve(r).then((value) => {
            endRun(run);
            settle(t, rec.id);
            return value;
          }, (e) => {
            endRun(run);
            throw e;
          });
        }
        endRun(run);
        settle(t, rec.id);
        return r;
      };
    }
    rec.sub = bus.subscribe(pattern, wrapped, options);
    subs.push(rec);
    return {
      get id() { return rec.sub.id; },
      get pattern() { return rec.sub.pattern; },
      get active() { return rec.sub.active; },
      unsubscribe() {
        const r = rec.sub.unsubscribe();
        if (r) {
          rec.active = false;
          // What it had not started yet is finished once the bus is idle.
          sweep();
        }
        return r;
      },
      stats() { return rec.sub.stats(); },
    };
  }

  /** Final failures of the worker's bus: report each message with its subscription. */
  function onError(error, item, sub) {
    const items = Array.isArray(item) ? item : [item];
    const e = serializeError(error);
    const subscription = { id: sub.id, pattern: sub.pattern };
    const rec = subs.find((s) => s.sub === sub);
    for (const env of items) {
      const t = env && env.headers ? env.headers[TOKEN] : undefined;
      if (t === undefined) continue;
      errors.push({ tag: t.tag, error: e, subscription });
      t.unreported = true;
      if (rec !== undefined) {
        endRunsOf(t, rec.id); // a HANDLER_TIMEOUT: the late handler no longer counts as running
        settle(t, rec.id);
      }
    }
    scheduleReport();
  }

  /** Once the bus is idle, every message still unfinished had deliveries that will never start. */
  function sweep() {
    if (sweeping) return;
    sweeping = true;
    bus.drain().then(() => {
      sweeping = false;
      const left = pending.filter((t) => !t.finished);
      pending = [];
      for (const t of left) {
        swept.push(t.tag);
        finish(t);
      }
    });
  }

  // ----- messages from the main thread ---------------------------------------------------------

  /** The outcome of a request the main thread sent (tag `tag`), sent back with the next report. */
  function answer(tag, ok, value) {
    replies.push(ok ? { tag, ok, value } : { tag, ok, error: serializeError(value) });
    scheduleReport();
  }

  /** One outcome on its own (its value could not be cloned with the others'). */
  function answerAlone(r) {
    try {
      port.post({ type: 'reply', tag: r.tag, ok: r.ok, value: r.value, error: r.error });
    } catch (e) {
      port.post({
        type: 'reply', tag: r.tag, ok: false,
        error: { name: 'EdgebusError', code: 'DATA_CLONE', message: `the reply could not be sent to the main thread (structured clone): ${e && e.message}` },
      });
    }
  }

  /** A batch of messages (columns), or one message alone (`type: 'one'`). */
  function handleBatch(b) {
    unmono();
    if (b.type === 'one') {
      const m = { topic: b.topic, payload: b.payload, publishedAt: b.at, id: b.id, key: b.key, headers: b.headers, ttlMs: b.ttl };
      handleMessage(b.tag, b.slot, m, b.request);
    } else {
      const { n, tags, slots, at, topics, topic, payloads, keys, ids, headers, ttls, requests } = b;
      for (let i = 0; i < n; i++) {
        const m = {
          topic: topics[topic[i]], payload: payloads[i], publishedAt: at[i],
          id: ids === undefined ? undefined : ids[i],
          key: keys === undefined ? undefined : keys[i],
          headers: headers === undefined ? undefined : headers[i],
          ttlMs: ttls === undefined ? undefined : ttls[i],
        };
        handleMessage(tags[i], slots[i], m, requests !== undefined && requests[i] === requests[i] ? requests[i] : undefined);
      }
    }
    if (pending.length > 0) {
      pending = pending.filter((t) => !t.finished);
      if (pending.length > 0) sweep();
    }
    // A request answered during this batch has its reply queued a microtask later (its promise):
    // the report waits for it, so the acknowledgement and the reply go back as one message.
    if (b.request !== undefined || b.requests !== undefined) scheduleReport();
    else report();
  }

  /** Message `m` (tag `tag`, in slot `slot`), a request with `request` ms left when that is set. */
  function handleMessage(tag, slot, m, request) {
    const t = { tag, slot, m, expected: expectedFor(m.topic), settled: [], finished: false, unreported: false, msg: undefined };
    const h = m.headers === undefined ? { [TOKEN]: t } : Object.assign({ [TOKEN]: t }, m.headers);
    const o = { headers: h };
    if (m.key !== undefined) o.key = m.key;
    if (request !== undefined) {
      // The worker's bus decides the answer (no responders, first reply, declines, failures)
      // by the core's rules; the main thread keeps its own deadline too, for a worker that stops.
      o.timeoutMs = request;
      bus.request(m.topic, m.payload, o).then((v) => answer(tag, true, v), (e) => answer(tag, false, e));
      if (t.expected === 0) finish(t);
      else if (!t.finished) pending.push(t);
      return;
    }
    if (t.expected === 0) {
      finish(t);
      return;
    }
    if (m.id !== undefined) o.id = m.id;
    if (m.ttlMs !== undefined) o.ttlMs = m.ttlMs;
    bus.publish(m.topic, m.payload, o);
    if (!t.finished) pending.push(t);
  }

  async function init(m) {
    try {
      api.initSync(m.module);
      if (m.marks !== null) {
        marks = new Int32Array(m.marks);
        markSpan = m.span;
      }
      watch = m.beatMs !== undefined;
      beatMs = m.beatMs;
      // Unbounded: the main thread's credits already bound what a worker holds.
      bus = new api.Bus(Object.assign({ maxQueue: Infinity }, m.busOptions, { onError }));
      const setup = await load(m);
      const facade = { subscribe, shard: m.shard, workers: m.workers };
      await setup(facade, { shard: m.shard, workers: m.workers, data: m.data });
      if (m.lock !== null && globalThis.navigator && navigator.locks) {
        // Held until this worker stops: the main thread notices a silent stop when it is released.
        await new Promise((held) => {
          navigator.locks.request(m.lock, () => {
            held();
            return new Promise(() => {});
          });
        });
      }
      ready = true;
      port.post({ type: 'ready' });
      for (const b of early.splice(0)) handleBatch(b);
    } catch (e) {
      port.post({ type: 'fatal', error: serializeError(e) });
    }
  }

  port.onMessage((m) => {
    if (m.type === 'batch' || m.type === 'one') {
      if (ready) handleBatch(m);
      else early.push(m);
    } else if (m.type === 'init') {
      init(m);
    }
  });
}
