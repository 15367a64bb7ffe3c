// Values of ShardedBus (see sharded.js): option snapshots (read once, at the call) and argument checks
// with the same codes and wording as Bus, the structured-clone check done at publish time, the
// latency histogram, a queue with a cheap shift, and the shapes errors and messages take when they
// come back from a worker.

/* exported shardedValues */
function shardedValues(EdgebusError, isProxy) {
  'use strict';

  const PUBLISH_OPTIONS = ['id', 'key', 'ttlMs', 'headers', 'transfer'];
  const BATCH_OPTIONS = ['key', 'ttlMs', 'headers', 'ids'];
  const EMPTY = Object.freeze({});

  function fail(code, message) {
    throw new EdgebusError(code, message);
  }

  /** Array.isArray, false for a revoked Proxy (which it would throw on). */
  function isArray(v) {
    try {
      return Array.isArray(v);
    } catch {
      return false;
    }
  }

  function describe(v) {
    if (v === null) return 'null';
    if (isArray(v)) return 'an array';
    const t = typeof v;
    if (t === 'number') return Number.isNaN(v) ? 'NaN' : String(v);
    if (t === 'string') return JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v);
    if (t === 'symbol' || t === 'bigint' || t === 'function') return 'a ' + t;
    return t === 'object' ? 'an object' : t;
  }

  /**
   * A snapshot of an options object: each known key read once (getters included), unknown keys and
   * unreadable objects (a revoked Proxy, a throwing getter) refused with INVALID_OPTION. Everything
   * after the call works on the snapshot, never on the caller's object again.
   */
  function readOptions(obj, allowed, where) {
    if (obj === null || typeof obj !== 'object' || isArray(obj)) {
      fail('INVALID_OPTION', `${where} must be an object, got ${describe(obj)}`);
    }
    const out = {};
    try {
      for (const k of Object.keys(obj)) {
        if (!allowed.includes(k)) fail('INVALID_OPTION', `unknown option \`${k}\` (known: ${allowed.join(', ')})`);
      }
      for (const k of allowed) {
        const v = obj[k];
        if (v !== undefined) out[k] = v;
      }
    } catch (e) {
      if (e instanceof EdgebusError) throw e;
      fail('INVALID_OPTION', `${where} could not be read: ${errorText(e)}`);
    }
    return out;
  }

  function errorText(e) {
    try {
      return e instanceof Error ? e.message : String(e);
    } catch {
      return 'an unprintable value was thrown';
    }
  }

  function countOption(o, name, min, infinity) {
    const v = o[name];
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || Number.isNaN(v)) fail('INVALID_OPTION', `option \`${name}\` must be a number, got ${describe(v)}`);
    if (v === Infinity && infinity) return v;
    if (!Number.isInteger(v)) fail('INVALID_OPTION', `option \`${name}\` must be an integer, got ${v}`);
    if (v < min) fail('INVALID_OPTION', `option \`${name}\` must be at least ${min}, got ${v}`);
    if (v > 2 ** 31 - 1) fail('INVALID_OPTION', `option \`${name}\` must be at most ${2 ** 31 - 1}, got ${v}`);
    return v;
  }

  function stringOption(v, name) {
    if (v === undefined) return;
    if (typeof v !== 'string') fail('INVALID_OPTION', `option \`${name}\` must be a string, got ${describe(v)}`);
    if (typeof v.isWellFormed === 'function' && !v.isWellFormed()) {
      fail('INVALID_OPTION', `option \`${name}\` ${describe(v)} contains a lone UTF-16 surrogate`);
    }
  }

  /** A copy of an array read once (a Proxy or a getter cannot change it later). */
  function copyArray(a, name, what) {
    if (!isArray(a)) fail('INVALID_OPTION', `option \`${name}\` must be an array of ${what}, got ${describe(a)}`);
    try {
      return Array.from(a);
    } catch (e) {
      fail('INVALID_OPTION', `option \`${name}\` could not be read: ${errorText(e)}`);
    }
  }

  /**
   * Publish options, snapshotted and validated: the returned object is a fresh copy (headers,
   * transfer and ids copied too), so the caller may reuse or change its options object at once.
   */
  function parsePublish(options, batch) {
    if (options === undefined) return EMPTY;
    const o = readOptions(options, batch ? BATCH_OPTIONS : PUBLISH_OPTIONS, 'options');
    stringOption(o.id, 'id');
    stringOption(o.key, 'key');
    if (o.ttlMs !== undefined && (typeof o.ttlMs !== 'number' || !(o.ttlMs > 0))) {
      fail('INVALID_OPTION', `option \`ttlMs\` must be a positive number, got ${describe(o.ttlMs)}`);
    }
    if (o.headers !== undefined) {
      const h = o.headers;
      if (h === null || typeof h !== 'object' || isArray(h)) {
        fail('INVALID_OPTION', `option \`headers\` must be an object of strings, got ${describe(h)}`);
      }
      const copy = {};
      try {
        for (const k of Object.keys(h)) {
          const v = h[k];
          if (typeof v !== 'string') fail('INVALID_OPTION', `header \`${k}\` must be a string, got ${describe(v)}`);
          copy[k] = v;
        }
      } catch (e) {
        if (e instanceof EdgebusError) throw e;
        fail('INVALID_OPTION', `option \`headers\` could not be read: ${errorText(e)}`);
      }
      o.headers = copy;
    }
    if (o.transfer !== undefined) {
      const t = o.transfer = copyArray(o.transfer, 'transfer', 'ArrayBuffers');
      for (let i = 0; i < t.length; i++) {
        if (!(t[i] instanceof ArrayBuffer)) {
          fail('INVALID_OPTION', `option \`transfer[${i}]\` must be an ArrayBuffer, got ${describe(t[i])}`);
        }
        if (t[i].byteLength === 0 && isDetached(t[i])) {
          fail('INVALID_OPTION', `option \`transfer[${i}]\` is an ArrayBuffer already transferred (detached)`);
        }
      }
    }
    if (o.ids !== undefined) o.ids = copyArray(o.ids, 'ids', 'ids (one per payload)');
    return o;
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
  function quickClone(v, depth, budget) {
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
        const r = quickClone(v[i], depth + 1, budget);
        if (r !== 1) return r;
      }
      return 1;
    }
    if (proto !== plainProto && proto !== null) return UNKNOWN;
    for (const k in v) {
      const r = quickClone(v[k], depth + 1, budget);
      if (r !== 1) return r;
    }
    return 1;
  }

  function checkCloneable(payload, topic) {
    let reason;
    try {
      const r = quickClone(payload, 0, { n: 256 });
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
  class Histogram {
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

  class Deque {
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

  function rebuildError(e, shard) {
    const err = e.code !== undefined ? new EdgebusError(e.code, e.message) : new Error(e.message);
    if (e.code === undefined && e.name && e.name !== 'Error') {
      Object.defineProperty(err, 'name', { value: e.name, configurable: true, writable: true });
    }
    if (e.stack !== undefined) err.stack = e.stack;
    err.shard = shard;
    return err;
  }

  function publicMessage(rec) {
    const m = { topic: rec.topic, payload: rec.payload, publishedAt: rec.publishedAt };
    if (rec.id !== undefined) m.id = rec.id;
    if (rec.key !== undefined) m.key = rec.key;
    if (rec.headers !== undefined) m.headers = rec.headers;
    if (rec.ttlMs !== undefined) m.ttlMs = rec.ttlMs;
    return m;
  }

  function systemPatternMatches(pattern, topic) {
    const p = pattern.split('.');
    const t = topic.split('.');
    if (p[0] === '*' || p[0] === '>') return false;
    for (let i = 0; i < p.length; i++) {
      if (p[i] === '>') return t.length > i;
      if (i >= t.length || (p[i] !== '*' && p[i] !== t[i])) return false;
    }
    return p.length === t.length;
  }

  return {
    fail, describe, isArray, readOptions, errorText, countOption, stringOption, parsePublish, checkCloneable, Histogram, Deque,
    rebuildError, publicMessage, systemPatternMatches,
  };
}
