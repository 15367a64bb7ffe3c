// Values of ShardedBus (see sharded-bus.js): the transfer list and the structured-clone check done at
// publish time, the latency histogram, a queue with a cheap shift, and the shapes errors and messages
// take when they come back from a worker. Option checks are the package's (shared/validate.js).

import { EdgebusError, errorText, fail } from '../shared/errors.js';
import { arraySnapshot, describe } from '../shared/validate.js';

/** A copy of the `transfer` option: ArrayBuffers, none of them detached already. */
export function checkTransfer(list) {
  const t = arraySnapshot(list, 'transfer');
  for (let i = 0; i < t.length; i++) {
    if (!(t[i] instanceof ArrayBuffer)) {
      fail('INVALID_OPTION', `option \`transfer[${i}]\` must be an ArrayBuffer, got ${describe(t[i])}`);
    }
    if (t[i].byteLength === 0 && isDetached(t[i])) {
      fail('INVALID_OPTION', `option \`transfer[${i}]\` is an ArrayBuffer already transferred (detached)`);
    }
  }
  return t;
}

function isDetached(buf) {
  if (typeof buf.detached === 'boolean') return buf.detached;
  try {
    new Uint8Array(buf);
    return false;
  } catch {
    return true;
  }
}

// ----- the DATA_CLONE check ------------------------------------------------------------------
//
// Plain data (primitives, plain objects and arrays, typed arrays, dates) is walked quickly; anything
// else goes through structuredClone, the algorithm postMessage uses. A Proxy looks like plain data
// to a walk but is refused by postMessage: where the runtime can tell a Proxy (`isProxy`, Node) the
// walk refuses it; where it cannot (browsers), every object payload gets the real structuredClone.
// A payload whose reading throws (a getter, a revoked Proxy) is refused as DATA_CLONE as well.

const plainProto = Object.prototype;
const UNKNOWN = 2;
/** 1: surely cloneable, 0: surely not (returns the reason), UNKNOWN: ask structuredClone. */
function quickClone(v, depth, budget, isProxy) {
  const t = typeof v;
  if (t === 'string' || t === 'number' || t === 'boolean' || t === 'undefined' || t === 'bigint' || v === null) return 1;
  if (t === 'function') return 'a function';
  if (t === 'symbol') return 'a symbol';
  if (isProxy === undefined) return UNKNOWN;
  if (isProxy(v)) return 'a Proxy';
  if (depth > 32 || budget.n-- <= 0) return UNKNOWN;
  if (v instanceof ArrayBuffer || ArrayBuffer.isView(v) || v instanceof Date) return 1;
  const proto = Object.getPrototypeOf(v);
  if (Array.isArray(v)) {
    if (proto !== Array.prototype) return UNKNOWN;
    for (let i = 0; i < v.length; i++) {
      const r = quickClone(v[i], depth + 1, budget, isProxy);
      if (r !== 1) return r;
    }
    return 1;
  }
  if (proto !== plainProto && proto !== null) return UNKNOWN;
  for (const k in v) {
    const r = quickClone(v[k], depth + 1, budget, isProxy);
    if (r !== 1) return r;
  }
  return 1;
}

export function checkCloneable(payload, topic, isProxy) {
  let reason;
  try {
    const r = quickClone(payload, 0, { n: 256 }, isProxy);
    if (r === 1) return;
    if (typeof r === 'string') reason = `it contains ${r}`;
  } catch (e) {
    reason = `reading it threw: ${errorText(e)}`;
  }
  if (reason === undefined) {
    try {
      structuredClone(payload);
      return;
    } catch (e) {
      reason = e && e.name === 'DataCloneError' ? `it contains ${errorText(e)}` : `reading it threw: ${errorText(e)}`;
    }
  }
  fail('DATA_CLONE', `payload on \`${topic}\` cannot be sent to a worker (structured clone): ${reason}`);
}

// ----- latency -------------------------------------------------------------------------------

/** Log-linear histogram of milliseconds (8 buckets per power of two from 1 µs). */
export class Histogram {
  constructor() { this.counts = new Float64Array(8 * 40); this.count = 0; }
  record(ms) {
    const us = ms >= 2e6 ? 2 ** 31 - 1 : Math.max(1, Math.floor(ms * 1000));
    const e = 31 - Math.clz32(us);
    const sub = e >= 3 ? (us >>> (e - 3)) & 7 : ((us << (3 - e)) & 7);
    const i = Math.min(this.counts.length - 1, e * 8 + sub);
    this.counts[i]++;
    this.count++;
  }
  quantile(q) {
    if (this.count === 0) return 0;
    const want = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i];
      if (seen >= want) {
        const e = Math.floor(i / 8);
        return (2 ** e * (1 + ((i % 8) + 1) / 8)) / 1000; // bucket's upper bound, in ms
      }
    }
    return 0;
  }
  summary() { return { count: this.count, p50Ms: this.quantile(0.5), p99Ms: this.quantile(0.99) }; }
}

// ----- a queue with cheap shift ----------------------------------------------------------------

export class Deque {
  constructor() { this.a = []; this.h = 0; }
  get length() { return this.a.length - this.h; }
  push(x) { this.a.push(x); }
  shift() {
    const x = this.a[this.h];
    this.a[this.h++] = undefined;
    if (this.h > 1024 && this.h * 2 > this.a.length) { this.a = this.a.slice(this.h); this.h = 0; }
    return x;
  }
  unshiftAll(xs) { this.a = xs.concat(this.a.slice(this.h)); this.h = 0; }
  drainAll() { const xs = this.a.slice(this.h); this.a = []; this.h = 0; return xs; }
}

export function rebuildError(e, shard) {
  const err = e.code !== undefined ? new EdgebusError(e.code, e.message) : new Error(e.message);
  if (e.code === undefined && e.name && e.name !== 'Error') {
    Object.defineProperty(err, 'name', { value: e.name, configurable: true, writable: true });
  }
  if (e.stack !== undefined) err.stack = e.stack;
  err.shard = shard;
  return err;
}

/** A message as handlers and `onError` see it, on the main thread and in a worker alike. */
export function publicMessage(rec) {
  const m = { topic: rec.topic, payload: rec.payload, publishedAt: rec.publishedAt };
  if (rec.id !== undefined) m.id = rec.id;
  if (rec.key !== undefined) m.key = rec.key;
  if (rec.headers !== undefined) m.headers = rec.headers;
  if (rec.ttlMs !== undefined) m.ttlMs = rec.ttlMs;
  return m;
}
