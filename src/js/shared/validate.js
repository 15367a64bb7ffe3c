// Argument and option checks shared by every part of the package: Bus, Batcher, IdempotenceFilter,
// ShardedBus and the remote client. One wording and one code per problem, wherever it is found.
//
// Options are read once, at the call (`snapshot`): later changes to the caller's object, or a getter
// that answers differently on a second read, cannot reach what was validated.

import { EdgebusError, errorText, fail } from './errors.js';
import { OVERFLOW, ready } from './core.js';

export const EMPTY_OPTIONS = Object.freeze({});
/** An integer count, 0 or more (Infinity allowed). */
export const COUNT = { integer: true, min: 0, infinity: true, max: Number.MAX_SAFE_INTEGER };
/** A positive number of milliseconds (Infinity allowed). */
export const DURATION = { positive: true, infinity: true };

/** Array.isArray, false for a revoked Proxy (which it throws on). */
export function isArray(v) {
  try {
    return Array.isArray(v);
  } catch {
    return false;
  }
}

/** A short description of a value for an error message (never throws). */
export function describe(v) {
  if (v === null) return 'null';
  if (isArray(v)) return 'an array';
  const t = typeof v;
  if (t === 'number') return Number.isNaN(v) ? 'NaN' : String(v);
  if (t === 'string') return JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v);
  if (t === 'symbol' || t === 'bigint' || t === 'function') return 'a ' + t;
  return t === 'object' ? 'an object' : t;
}

function isWellFormed(s) {
  if (typeof s.isWellFormed === 'function') return s.isWellFormed();
  return !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?:[^\uD800-\uDBFF]|^)[\uDC00-\uDFFF]/.test(s);
}

/** INVALID_HANDLER unless `handler` is a function. */
export function checkHandler(handler) {
  if (typeof handler !== 'function') fail('INVALID_HANDLER', `handler must be a function, got ${describe(handler)}`);
}

/**
 * Whether a handler (a function) takes the message too: it declares other than exactly one
 * parameter. Read once, before anything is subscribed: a `length` that cannot be read (a Proxy
 * of a function whose trap throws) is INVALID_HANDLER.
 */
export function wantsMessage(handler) {
  try {
    return handler.length !== 1;
  } catch (e) {
    throw new EdgebusError('INVALID_HANDLER', `handler could not be read: ${errorText(e)}`, { cause: e });
  }
}

/** A string without lone UTF-16 surrogates (which have no UTF-8 form), else `code`. */
export function checkString(v, code, what) {
  if (typeof v !== 'string') fail(code, `${what} must be a string, got ${describe(v)}`);
  if (!isWellFormed(v)) fail(code, `${what} ${describe(v)} contains a lone UTF-16 surrogate`);
}

function optionName(where, name) {
  return where === 'options' ? name : `${where}.${name}`;
}

/**
 * Reads an options object once, at the call: a plain copy of its own keys, each read exactly
 * once (a getter cannot answer differently later, and later changes to the caller's object do
 * not reach messages still waiting). Unknown keys, and objects that cannot be read (a revoked
 * Proxy, a throwing getter), are INVALID_OPTION.
 */
export function snapshot(obj, allowed, where) {
  try {
    if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
      fail('INVALID_OPTION', `${where} must be an object, got ${describe(obj)}`);
    }
    const copy = {};
    for (const k of Object.keys(obj)) {
      if (!allowed.includes(k)) {
        fail('INVALID_OPTION', `unknown option \`${optionName(where, k)}\` (known: ${allowed.join(', ')})`);
      }
      copy[k] = obj[k];
    }
    return copy;
  } catch (e) {
    if (e instanceof EdgebusError) throw e;
    throw new EdgebusError('INVALID_OPTION', `${where} could not be read: ${errorText(e)}`, { cause: e });
  }
}

/** A copy of an array option, read once (INVALID_OPTION when it is not a readable array). */
export function arraySnapshot(v, where) {
  try {
    if (!Array.isArray(v)) fail('INVALID_OPTION', `option \`${where}\` must be an array, got ${describe(v)}`);
    return Array.from(v);
  } catch (e) {
    if (e instanceof EdgebusError) throw e;
    throw new EdgebusError('INVALID_OPTION', `option \`${where}\` could not be read: ${errorText(e)}`, { cause: e });
  }
}

/** A number option: `integer`, `min` (inclusive), `max`, `positive`, `infinity` (Infinity allowed). */
export function numberOption(obj, name, where, rule) {
  const v = obj[name];
  if (v === undefined) return undefined;
  return numberValue(v, optionName(where, name), rule);
}

/** `numberOption` for a value already read, named `full` in errors. */
export function numberValue(v, full, rule) {
  if (typeof v !== 'number' || Number.isNaN(v)) {
    fail('INVALID_OPTION', `option \`${full}\` must be a number, got ${describe(v)}`);
  }
  if (v === Infinity && rule.infinity) return v;
  if (!Number.isFinite(v)) fail('INVALID_OPTION', `option \`${full}\` must be finite, got ${v}`);
  if (rule.integer && !Number.isInteger(v)) fail('INVALID_OPTION', `option \`${full}\` must be an integer, got ${v}`);
  if (rule.positive && !(v > 0)) fail('INVALID_OPTION', `option \`${full}\` must be positive, got ${v}`);
  if (rule.min !== undefined && v < rule.min) fail('INVALID_OPTION', `option \`${full}\` must be at least ${rule.min}, got ${v}`);
  if (rule.max !== undefined && v > rule.max) fail('INVALID_OPTION', `option \`${full}\` must be at most ${rule.max}, got ${v}`);
  return v;
}

export function functionOption(obj, name, where) {
  const v = obj[name];
  if (v !== undefined && typeof v !== 'function') {
    fail('INVALID_OPTION', `option \`${optionName(where, name)}\` must be a function, got ${describe(v)}`);
  }
  return v;
}

export function stringOption(obj, name, where) {
  const v = obj[name];
  if (v !== undefined) checkString(v, 'INVALID_OPTION', `option \`${optionName(where, name)}\``);
  return v;
}

/** The name of an overflow policy (the core's names), or undefined when not given. */
export function overflowOption(obj, where) {
  const v = obj.overflow;
  if (v === undefined) return undefined;
  if (OVERFLOW === undefined) ready();
  if (typeof v !== 'string' || !Object.prototype.hasOwnProperty.call(OVERFLOW, v)) {
    fail('INVALID_OPTION', `option \`${optionName(where, 'overflow')}\` must be one of ${Object.keys(OVERFLOW).join(', ')}, got ${describe(v)}`);
  }
  return v;
}

/**
 * A clock option: `{ now() }`, with both or neither of setTimeout / clearTimeout. Unless the
 * caller will never `read` it, `now()` is called once here: a clock whose time is not a finite
 * number of milliseconds is refused at the call, not met in the middle of a delivery.
 */
export function checkClock(clock, where, read = true) {
  if (clock === undefined) return undefined;
  try {
    if (clock === null || typeof clock !== 'object' || typeof clock.now !== 'function') {
      fail('INVALID_OPTION', `option \`${where}\` must be an object with a now() method, got ${describe(clock)}`);
    }
    if ((clock.setTimeout === undefined) !== (clock.clearTimeout === undefined)) {
      fail('INVALID_OPTION', `option \`${where}\` must have both setTimeout and clearTimeout, or neither`);
    }
    const t = read ? clock.now() : 0;
    if (typeof t !== 'number' || !Number.isFinite(t)) {
      fail('INVALID_OPTION', `option \`${where}\`: now() must return a finite number of milliseconds, got ${describe(t)}`);
    }
  } catch (e) {
    if (e instanceof EdgebusError) throw e;
    throw new EdgebusError('INVALID_OPTION', `option \`${where}\` could not be read: ${errorText(e)}`, { cause: e });
  }
  return clock;
}

const PRIORITY = { integer: true, min: 0, max: 2 ** 32 - 1 };
const NOT_BEFORE = { min: 0 };
/** Attempts already made (the core's MAX_PRIOR_ATTEMPTS). */
const ATTEMPTS = { integer: true, min: 0, max: 1000 };

/**
 * A validated snapshot of publish options (as `snapshot` reads them: each own key once, unknown
 * keys refused), into one fixed shape: publishing with options is a hot path, and reading it by
 * name stays monomorphic. `allowed` is the keys the caller takes: `id`, `key`, `ttlMs`, `headers`,
 * `priority`, `notBefore` and `ids` are checked here; `transfer` (ShardedBus) is only copied, for
 * the caller to check.
 */
export function parsePublishOptions(options, allowed) {
  if (options === undefined) return EMPTY_OPTIONS;
  const o = {
    id: undefined, key: undefined, ttlMs: undefined, headers: undefined, priority: undefined, notBefore: undefined,
    attempts: undefined, ids: undefined, transfer: undefined, signal: undefined, retain: undefined,
  };
  try {
    if (options === null || typeof options !== 'object' || Array.isArray(options)) {
      fail('INVALID_OPTION', `options must be an object, got ${describe(options)}`);
    }
    const keys = Object.keys(options);
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i];
      if (!allowed.includes(k)) fail('INVALID_OPTION', `unknown option \`${k}\` (known: ${allowed.join(', ')})`);
      if (k === 'id') o.id = options.id;
      else if (k === 'key') o.key = options.key;
      else if (k === 'ttlMs') o.ttlMs = options.ttlMs;
      else if (k === 'headers') o.headers = options.headers;
      else if (k === 'priority') o.priority = options.priority;
      else if (k === 'notBefore') o.notBefore = options.notBefore;
      else if (k === 'attempts') o.attempts = options.attempts;
      else if (k === 'ids') o.ids = options.ids;
      else if (k === 'transfer') o.transfer = options.transfer;
      else if (k === 'signal') o.signal = options.signal;
      else if (k === 'retain') o.retain = options.retain;
    }
  } catch (e) {
    if (e instanceof EdgebusError) throw e;
    throw new EdgebusError('INVALID_OPTION', `options could not be read: ${errorText(e)}`, { cause: e });
  }
  if (o.id !== undefined) checkString(o.id, 'INVALID_OPTION', 'option `id`');
  if (o.key !== undefined) checkString(o.key, 'INVALID_OPTION', 'option `key`');
  if (o.ttlMs !== undefined) numberValue(o.ttlMs, 'ttlMs', DURATION);
  if (o.priority !== undefined) numberValue(o.priority, 'priority', PRIORITY);
  if (o.notBefore !== undefined) numberValue(o.notBefore, 'notBefore', NOT_BEFORE);
  if (o.attempts !== undefined) numberValue(o.attempts, 'attempts', ATTEMPTS);
  if (o.headers !== undefined) o.headers = headersOption(o.headers);
  if (o.signal !== undefined) signalOption(o.signal);
  if (o.retain !== undefined && typeof o.retain !== 'boolean') {
    fail('INVALID_OPTION', `option \`retain\` must be a boolean, got ${describe(o.retain)}`);
  }
  if (o.ids !== undefined) {
    const ids = arraySnapshot(o.ids, 'ids');
    for (let i = 0; i < ids.length; i++) {
      if (ids[i] !== undefined) checkString(ids[i], 'INVALID_OPTION', `ids[${i}]`);
    }
    o.ids = ids;
  }
  return o;
}

/** How long a request waits for replies unless told otherwise (ms). */
export const DEFAULT_REQUEST_TIMEOUT_MS = 5000;

const REQUEST_OPTIONS = ['timeoutMs', 'signal', 'key', 'headers'];
const REQUEST_MANY_OPTIONS = ['max', 'timeoutMs', 'signal', 'key', 'headers'];
/** The core's MAX_REPLIES. */
const MAX = { integer: true, min: 1, max: 2 ** 30 };

/**
 * A validated snapshot of `request` (or, with `many`, `requestMany`) options:
 * `{ timeoutMs, signal, max, key, headers }`, `timeoutMs` defaulted.
 */
export function parseRequestOptions(options, many, extra = []) {
  const allowed = many ? REQUEST_MANY_OPTIONS : REQUEST_OPTIONS;
  const o = options === undefined ? {} : snapshot(options, extra.length > 0 ? [...allowed, ...extra] : allowed, 'options');
  const timeoutMs = numberOption(o, 'timeoutMs', 'options', DURATION) ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const max = many ? numberOption(o, 'max', 'options', MAX) : 1;
  const key = stringOption(o, 'key', 'options');
  const headers = o.headers === undefined ? undefined : headersOption(o.headers);
  const out = { timeoutMs, signal: signalOption(o.signal), max, key, headers };
  for (const k of extra) out[k] = o[k]; // the caller checks its own
  return out;
}

/** `once` options: `{ timeoutMs (default Infinity), filter, signal }`, read once. */
export function parseOnceOptions(options) {
  const o = options === undefined ? {} : snapshot(options, ['timeoutMs', 'filter', 'signal'], 'options');
  return {
    timeoutMs: numberOption(o, 'timeoutMs', 'options', DURATION) ?? Infinity,
    filter: functionOption(o, 'filter', 'options'),
    signal: signalOption(o.signal),
  };
}

// AbortSignal options are read through the platform's own accessors: a `signal` must be a genuine
// AbortSignal (every runtime the package supports has one), and its state and listeners are
// reached through AbortSignal.prototype and EventTarget.prototype, so an object that overrides
// `aborted`, `reason` or `addEventListener` on itself can neither throw into the bus nor answer
// differently later.
const Signal = typeof AbortSignal === 'function' ? AbortSignal : undefined;
const signalGetter = (name) => (Signal === undefined ? undefined : Object.getOwnPropertyDescriptor(Signal.prototype, name)?.get);
const abortedOf = signalGetter('aborted');
const reasonOf = signalGetter('reason');
const Target = typeof EventTarget === 'function' ? EventTarget.prototype : undefined;

/**
 * A `signal` option: undefined, or a genuine AbortSignal (else INVALID_OPTION). Genuine is what the
 * platform's accessor accepts: an object merely inheriting from AbortSignal.prototype passes
 * `instanceof` but makes the accessor throw.
 */
export function signalOption(signal) {
  if (signal === undefined) return undefined;
  if (Signal === undefined || abortedOf === undefined || Target === undefined || !genuine(signal)) {
    fail('INVALID_OPTION', `option \`signal\` must be an AbortSignal, got ${describe(signal)}`);
  }
  return signal;
}

function genuine(signal) {
  if (!(signal instanceof Signal)) return false;
  try {
    abortedOf.call(signal);
    return true;
  } catch {
    return false;
  }
}

/** Whether `signal` (from signalOption) has aborted. */
export function isAborted(signal) {
  return abortedOf.call(signal);
}

/** Why `signal` aborted (its `reason`). */
export function abortReason(signal) {
  return reasonOf === undefined ? undefined : reasonOf.call(signal);
}

/** Calls `fn` once when `signal` aborts. */
export function addAbortListener(signal, fn) {
  Target.addEventListener.call(signal, 'abort', fn, { once: true });
}

/** Takes back a listener `addAbortListener` added. */
export function removeAbortListener(signal, fn) {
  Target.removeEventListener.call(signal, 'abort', fn);
}

/** A copy of a headers object, every value a string. */
export function headersOption(h) {
  let copy;
  try {
    if (h === null || typeof h !== 'object' || Array.isArray(h)) {
      fail('INVALID_OPTION', `option \`headers\` must be an object of strings, got ${describe(h)}`);
    }
    copy = {};
    for (const k of Object.keys(h)) copy[k] = h[k];
    // Symbol keys are not headers a subscriber sees as such; they are kept for the caller's
    // own handlers (the ShardedBus worker tags messages this way).
    for (const k of Object.getOwnPropertySymbols(h)) copy[k] = h[k];
  } catch (e) {
    if (e instanceof EdgebusError) throw e;
    throw new EdgebusError('INVALID_OPTION', `option \`headers\` could not be read: ${errorText(e)}`, { cause: e });
  }
  for (const k of Object.keys(copy)) {
    if (typeof copy[k] !== 'string') fail('INVALID_OPTION', `header \`${k}\` must be a string, got ${describe(copy[k])}`);
  }
  return copy;
}

/** The keys of a batch policy (`batch` of a subscription, Batcher's options). */
export const BATCH_OPTIONS = ['maxSize', 'maxBytes', 'maxWaitMs', 'maxAttempts', 'backoff'];

/** A validated snapshot of a batch policy (`true`: the defaults). */
export function parseBatch(batch, where) {
  if (batch === true) return {};
  const b = snapshot(batch, BATCH_OPTIONS, where);
  numberOption(b, 'maxSize', where, { integer: true, min: 1, max: 2 ** 32 - 1 });
  numberOption(b, 'maxBytes', where, { integer: true, min: 1, max: Number.MAX_SAFE_INTEGER });
  numberOption(b, 'maxWaitMs', where, { min: 0 });
  numberOption(b, 'maxAttempts', where, { integer: true, min: 1, max: 1000 });
  b.backoff = parseBackoff(b.backoff, `${where}.backoff`);
  return b;
}

/** A validated snapshot of `{ initialMs, maxMs }`, or undefined. */
export function parseBackoff(options, where) {
  if (options === undefined) return undefined;
  const backoff = snapshot(options, ['initialMs', 'maxMs'], where);
  numberOption(backoff, 'initialMs', where, { min: 0 });
  numberOption(backoff, 'maxMs', where, { min: 0 });
  const { initialMs, maxMs } = backoff;
  if (initialMs !== undefined && maxMs !== undefined && maxMs < initialMs) {
    fail('INVALID_OPTION', `option \`${where}.maxMs\` (${maxMs}) must not be below initialMs (${initialMs})`);
  }
  return backoff;
}

/** `dedupe: true | { maxIds, maxAgeMs }` as `{ maxIds, maxAgeMs }` (defaults filled), or undefined when off. */
export function parseDedupe(v, where) {
  if (v === undefined || v === false) return undefined;
  const d = v === true ? {} : snapshot(v, ['maxIds', 'maxAgeMs'], where);
  return {
    maxIds: numberOption(d, 'maxIds', where, { integer: true, min: 1, max: 2 ** 32 - 1 }) ?? 10000,
    maxAgeMs: numberOption(d, 'maxAgeMs', where, DURATION),
  };
}

const LAST = { integer: true, min: 0, infinity: true, max: Number.MAX_SAFE_INTEGER };
const SEQ = { integer: true, min: 0, max: Number.MAX_SAFE_INTEGER };
const SINCE_MS = { min: 0 };

/**
 * A validated snapshot of a subscription's `replay` option: `{ kind, n, sinceMs, topics, seqs }`
 * (`kind` 0 retained values, 1 the last `n` per topic, 2 since: per-topic numbers `topics[i]` →
 * `seqs[i]`, else after `n`, else from the time `sinceMs`).
 */
export function parseReplay(v) {
  if (v === 'retained') return { kind: 0, n: undefined, sinceMs: undefined, topics: undefined, seqs: undefined };
  if (typeof v === 'string' || v === null || typeof v !== 'object') {
    fail('INVALID_OPTION', `option \`replay\` must be 'retained', { last }, { sinceSeq } or { sinceMs }, got ${describe(v)}`);
  }
  const o = snapshot(v, ['last', 'sinceSeq', 'sinceMs'], 'replay');
  if (o.last !== undefined) {
    if (o.sinceSeq !== undefined || o.sinceMs !== undefined) {
      fail('INVALID_OPTION', 'option `replay` takes `last` alone, or `sinceSeq` and/or `sinceMs`');
    }
    return { kind: 1, n: numberOption(o, 'last', 'replay', LAST), sinceMs: undefined, topics: undefined, seqs: undefined };
  }
  if (o.sinceSeq === undefined && o.sinceMs === undefined) {
    fail('INVALID_OPTION', 'option `replay` needs `last`, `sinceSeq` or `sinceMs`');
  }
  const sinceMs = numberOption(o, 'sinceMs', 'replay', SINCE_MS);
  let n;
  let topics;
  let seqs;
  const s = o.sinceSeq;
  if (typeof s === 'number') {
    n = numberValue(s, 'replay.sinceSeq', SEQ);
  } else if (s !== undefined) {
    // Per topic: each own key read once (a Proxy or a throwing getter is INVALID_OPTION).
    let per;
    try {
      if (s === null || typeof s !== 'object' || Array.isArray(s)) {
        fail('INVALID_OPTION', `option \`replay.sinceSeq\` must be a number or an object of numbers by topic, got ${describe(s)}`);
      }
      per = Object.entries(s);
    } catch (e) {
      if (e instanceof EdgebusError) throw e;
      throw new EdgebusError('INVALID_OPTION', `option \`replay.sinceSeq\` could not be read: ${errorText(e)}`, { cause: e });
    }
    topics = [];
    seqs = [];
    for (const [topic, n] of per) {
      checkString(topic, 'INVALID_OPTION', 'a topic of option `replay.sinceSeq`');
      seqs.push(numberValue(n, `replay.sinceSeq[${JSON.stringify(topic)}]`, SEQ));
      topics.push(topic);
    }
  }
  return { kind: 2, n, sinceMs, topics, seqs };
}

/**
 * A subscription's `replay` option checked as `subscribe` and `replay()` check it, as a plain copy
 * read once: `'retained'`, `{ last }`, `{ sinceSeq, sinceMs? }` (`sinceSeq` a number, or an object
 * of topic → number with only its own keys) or `{ sinceMs }`. Throws INVALID_OPTION otherwise. For
 * a driver that takes replays from elsewhere (an edge hub, from a client's frame) and hands them to
 * a bus later: one rule for both.
 */
export function checkReplay(v) {
  const r = parseReplay(v);
  if (r.kind === 0) return 'retained';
  if (r.kind === 1) return { last: r.n };
  const out = {};
  if (r.topics !== undefined) out.sinceSeq = Object.fromEntries(r.topics.map((t, i) => [t, r.seqs[i]]));
  else if (r.n !== undefined) out.sinceSeq = r.n;
  if (r.sinceMs !== undefined) out.sinceMs = r.sinceMs;
  return out;
}

const LOG_COUNT = { integer: true, min: 1, infinity: true, max: Number.MAX_SAFE_INTEGER };
const LOG_BYTES = { integer: true, min: 0, infinity: true, max: Number.MAX_SAFE_INTEGER };

/**
 * The bus's `retain` and `history` options as the numbers the core takes (`NaN`: the core's
 * default) and the history patterns, space-separated (a pattern holds no space).
 */
export function parseLogs(retain, history) {
  const numbers = new Float64Array(6).fill(NaN);
  let patterns;
  if (retain !== undefined) {
    const r = snapshot(retain, ['maxTopics', 'maxBytes'], 'retain');
    numbers[0] = numberOption(r, 'maxTopics', 'retain', LOG_COUNT) ?? NaN;
    numbers[1] = numberOption(r, 'maxBytes', 'retain', LOG_BYTES) ?? NaN;
  }
  if (history !== undefined) {
    const h = snapshot(history, ['topics', 'maxMessages', 'maxAgeMs', 'maxTopics', 'maxBytes'], 'history');
    if (h.topics === undefined) fail('INVALID_OPTION', 'option `history.topics` is required: the patterns of the topics that keep a history');
    const topics = arraySnapshot(h.topics, 'history.topics');
    for (let i = 0; i < topics.length; i++) checkString(topics[i], 'INVALID_OPTION', `option \`history.topics[${i}]\``);
    patterns = topics;
    numbers[2] = numberOption(h, 'maxMessages', 'history', LOG_COUNT) ?? NaN;
    numbers[3] = numberOption(h, 'maxAgeMs', 'history', DURATION) ?? NaN;
    numbers[4] = numberOption(h, 'maxTopics', 'history', LOG_COUNT) ?? NaN;
    numbers[5] = numberOption(h, 'maxBytes', 'history', LOG_BYTES) ?? NaN;
  }
  return { numbers, patterns };
}
