// The remote client's persistent outbox (`connect(url, { persist })`): publishes the hub has not
// acknowledged yet, mirrored into a store (IndexedDB in browsers, or one the application passes),
// so that a later session (a page reloaded, a process restarted) sends them again with their ids
// and the hub's durable dedupe keeps each one single.
//
// The client's in-memory buffer stays what decides (order, bound, overflow, retries); this module
// is a part of RemoteBus that writes that buffer through to the store, puts what an earlier session
// left at its front, and holds a publish back from the wire until its entry is stored (a page that
// goes away after sending it, before the hub answered, still has it). A store that throws or
// rejects loses nothing in memory: the failure is reported (PERSIST_FAILED) and counted, and the
// publish is sent anyway.

import { EdgebusError, errorText, fail } from '../shared/errors.js';
import { checkString, describe } from '../shared/validate.js';

const STORE_METHODS = ['load', 'put', 'delete'];

/**
 * The outbox asked for by the options `persist` and `persistName` (already read once, at the
 * call), or undefined for `'memory'`, the default: nothing outlives the session. `where` names the
 * deployment (its /connect URL with the hub, no token): the default IndexedDB scope.
 */
export function outboxOption(o, where) {
  const { persist, persistName } = o;
  if (persistName !== undefined) {
    checkString(persistName, 'INVALID_OPTION', 'option `persistName`');
    if (persistName === '') fail('INVALID_OPTION', 'option `persistName` must not be empty');
    if (persist !== 'indexeddb') fail('INVALID_OPTION', 'option `persistName` applies only with `persist: \'indexeddb\'`');
  }
  if (persist === undefined || persist === 'memory') return undefined;
  if (persist === 'indexeddb') {
    let idb;
    try {
      idb = globalThis.indexedDB;
    } catch {
      // A page where storage is denied (a sandboxed frame) throws on the read.
    }
    if (idb == null || typeof idb.open !== 'function') {
      fail('INVALID_OPTION', 'option `persist: \'indexeddb\'` needs IndexedDB, which this runtime does not have (in Node and Workers, pass a store object)');
    }
    return indexedDbStore(idb, `edgebus-outbox ${persistName ?? where}`);
  }
  if (persist === null || typeof persist !== 'object') {
    fail('INVALID_OPTION', `option \`persist\` must be 'memory', 'indexeddb' or a store with load, put and delete methods, got ${describe(persist)}`);
  }
  // Read once: the methods found now are the ones called, on the store.
  const store = {};
  try {
    for (const m of STORE_METHODS) {
      const f = persist[m];
      if (typeof f !== 'function') fail('INVALID_OPTION', `option \`persist\` must be a store with load, put and delete methods: \`persist.${m}\` is ${describe(f)}`);
      store[m] = (...args) => f.apply(persist, args);
    }
    // Optional: called once at the client's close, after the store calls made before it settled.
    const close = persist.close;
    if (close !== undefined) {
      if (typeof close !== 'function') fail('INVALID_OPTION', `option \`persist.close\` must be a function, got ${describe(close)}`);
      store.close = () => close.apply(persist, []);
    }
  } catch (e) {
    if (e instanceof EdgebusError) throw e;
    throw new EdgebusError('INVALID_OPTION', `option \`persist\` could not be read: ${errorText(e)}`, { cause: e });
  }
  return store;
}

/** `promise`, or after `ms` whichever is first (resolved either way). */
async function within(promise, ms) {
  let timer;
  await Promise.race([promise, new Promise((r) => { timer = setTimeout(r, ms); })]);
  clearTimeout(timer);
}

/** What one publish (the client's `{ op }`) is in the store. */
function entryOf(p) {
  const e = { id: p.op.id, topic: p.op.topic, payload: p.op.payload, at: p.at };
  if (p.op.key !== undefined) e.key = p.op.key;
  if (p.op.headers !== undefined) e.headers = p.op.headers;
  return e;
}

/**
 * A stored entry read once (a getter that throws, a Proxy, is read no more), as a plain entry that
 * can be sent again, or the reason it cannot (a string).
 */
function readEntry(e) {
  if (e === null || typeof e !== 'object') return `not an object (${describe(e)})`;
  let x;
  try {
    x = { id: e.id, topic: e.topic, payload: e.payload, key: e.key, headers: e.headers, at: e.at };
  } catch (err) {
    return `it cannot be read (${errorText(err)})`;
  }
  if (typeof x.id !== 'string' || x.id === '') return `its id is ${describe(x.id)}`;
  if (typeof x.topic !== 'string') return `its topic is ${describe(x.topic)}`;
  if (x.payload === undefined) return 'it has no payload';
  return x;
}

/**
 * The outbox of one RemoteBus: `bus` is the client whose buffer (`_queue`, `_sent`) it mirrors.
 * Store calls are made in order (a delete never overtakes the put it undoes); puts wait until the
 * earlier session's entries are loaded, so that `load` never sees this session's.
 */
export class Outbox {
  constructor(bus, store) {
    this._bus = bus;
    this._store = store;
    this._loading = true;
    this._held = [];             // publishes admitted while loading: put once it is done
    this._ids = new Map();       // id → publishes in memory with an entry under it
    this._deletes = new Set();   // ids to delete, in one call at the end of this microtask
    this._pending = new Set();   // store calls not settled yet (close waits for them)
    this.restored = 0;
    this.failed = 0;
    this.loaded = undefined;     // a promise while `load` runs
    this._closed = false;        // close() ran
    this._ended = false;         // the store is called no more (but for its close)
  }

  /** Loads what an earlier session left; a synchronous store restores at once. */
  start() {
    const r = this._call('load', [], undefined);
    if (r instanceof Promise) {
      this.loaded = r.then((entries) => this._restore(entries), () => this._restore([]));
    } else {
      this._restore(r);
    }
  }

  /** Whether the earlier session's entries are still being loaded. */
  get loading() { return this._loading; }

  /** Resolves once the earlier session's entries are in the buffer, or after `ms` (a store that hangs). */
  restoredWithin(ms) {
    return this._loading ? within(this.loaded, ms) : undefined;
  }

  /** How many publishes at the front of `queue` may go on the wire (at most `max`). */
  sendable(queue, max) {
    if (this._loading) return 0;
    const n = Math.min(queue.length, max);
    for (let i = 0; i < n; i++) if (queue[i].persisting) return i;
    return n;
  }

  /** A publish entered the buffer: stored before it is sent. */
  admitted(p) {
    p.at = Date.now();
    if (this._loading) {
      p.persisting = true;
      this._held.push(p);
    } else {
      this._put(p);
    }
  }

  /** A publish left the buffer for good (acknowledged, refused, dropped): its entry goes. */
  settled(p) {
    p.persisting = false;
    if (p.stored !== true) return;
    p.stored = false;
    const id = p.op.id;
    const n = this._ids.get(id) - 1;
    if (n > 0) {
      this._ids.set(id, n);
      return;
    }
    this._ids.delete(id);
    if (this._deletes.size === 0) queueMicrotask(() => this._flushDeletes());
    this._deletes.add(id);
  }

  /**
   * At close: with `discard`, the entries of `remaining` are deleted too (by default they stay for
   * the next session); resolves when the store calls made so far have settled, or after `ms`.
   */
  async close(remaining, discard, ms) {
    if (this._closed) return;
    this._closed = true;
    const deadline = Date.now() + ms;
    if (discard) {
      for (const p of remaining) {
        if (p.stored === true) this._deletes.add(p.op.id);
        p.stored = false;
      }
      this._ids.clear();
    }
    this._flushDeletes();
    await within(Promise.allSettled([...this._pending]), ms);
    // From here on the store is not called again (a load that ends later writes nothing), but
    // for its close().
    this._ended = true;
    if (this._store.close !== undefined) {
      await within(Promise.allSettled([this._call('close', [], {})]), Math.max(0, deadline - Date.now()));
    }
  }

  _put(p) {
    const id = p.op.id;
    // An id acknowledged and published again in one turn: its delete goes first.
    if (this._deletes.has(id)) this._flushDeletes();
    p.stored = true;
    this._ids.set(id, (this._ids.get(id) ?? 0) + 1);
    p.persisting = true;
    const done = () => {
      if (!p.persisting) return;
      p.persisting = false;
      this._bus._schedulePump();
    };
    const r = this._call('put', [entryOf(p)], { topic: p.op.topic, id });
    if (r instanceof Promise) r.then(done, done);
    else done();
  }

  _flushDeletes() {
    if (this._deletes.size === 0) return;
    const ids = [...this._deletes];
    this._deletes.clear();
    this._call('delete', [ids], { ids });
  }

  _restore(entries) {
    const bus = this._bus;
    this._loading = false;
    // A load that ended after close(): its entries stay in the store for the next session (this
    // one would neither send nor list them), and the publishes held for it were listed unwritten.
    if (this._closed) return;
    const back = [];
    if (entries !== undefined && entries !== null) {
      let list;
      try {
        // Not a list (a number, a plain object): reported, not taken for an empty outbox.
        if (typeof entries[Symbol.iterator] !== 'function') throw new TypeError(`it gave ${describe(entries)}`);
        list = Array.from(entries);
      } catch (e) {
        this._failed(new EdgebusError('PERSIST_FAILED', `the outbox store's load() did not give an array: ${errorText(e)}`, { cause: e }), { outbox: 'load' });
        list = [];
      }
      for (const e of list) {
        const entry = readEntry(e);
        if (typeof entry === 'string') {
          this._failed(new EdgebusError('PERSIST_FAILED', `an entry the outbox store loaded cannot be sent again: ${entry}`), { outbox: 'load' });
          continue;
        }
        back.push(entry);
      }
    }
    // Ahead of this session's publishes, in their order; refs below every ref of this session
    // (the order a refused publish is put back in).
    const restored = back.map((e, i) => {
      const op = { op: 'pub', ref: i - back.length, topic: e.topic, payload: e.payload, id: e.id };
      if (e.key !== undefined) op.key = e.key;
      if (e.headers !== undefined) op.headers = e.headers;
      const p = { op, async: false, signal: undefined, at: e.at, stored: true, restored: true };
      p.promise = new Promise((resolve, reject) => { p.resolve = resolve; p.reject = reject; });
      p.promise.catch(() => {});
      this._ids.set(e.id, (this._ids.get(e.id) ?? 0) + 1);
      return p;
    });
    this.restored += restored.length;
    bus._queue.unshift(...restored);
    // Bounded by maxBuffer like any publish: 'dropOldest' drops the oldest; the other policies
    // never drop what this session already accepted, so the restored entries that do not fit go.
    const excess = Math.min(restored.length, bus._queue.length + bus._sent.size - bus._maxBuffer);
    if (excess > 0) {
      const at = bus._overflow === 'dropOldest' ? 0 : restored.length - excess;
      for (const p of bus._queue.splice(at, excess)) {
        bus._stats.dropped++;
        const err = new EdgebusError('QUEUE_FULL', `restored publish to \`${p.op.topic}\` dropped: ${bus._maxBuffer} publishes are waiting for the hub (maxBuffer, overflow '${bus._overflow}')`);
        p.reject(err);
        bus._report(err, { topic: p.op.topic, id: p.op.id });
        this.settled(p);
      }
    }
    for (const p of this._held.splice(0)) {
      if (p.persisting) this._put(p); // not dropped meanwhile
    }
    bus._schedulePump();
    bus._room(); // a flush() made while loading, with nothing restored nor published
  }

  /**
   * Calls a store method: its result (a promise of ours for a thenable), or (when it throws, or
   * its answer's `then` cannot be read) undefined, the failure reported.
   */
  _call(method, args, context) {
    if (this._ended && method !== 'close') return undefined;
    const report = (e) => this._failed(new EdgebusError('PERSIST_FAILED', `the outbox store's ${method}() failed: ${errorText(e)}`, { cause: e }), { outbox: method, ...context });
    let r;
    let then;
    try {
      r = this._store[method](...args);
      then = r === null || r === undefined ? undefined : r.then;
    } catch (e) {
      report(e);
      return undefined;
    }
    if (typeof then !== 'function') return r;
    const settled = new Promise((resolve, reject) => then.call(r, resolve, reject)).then(undefined, (e) => {
      report(e);
      throw e;
    });
    this._pending.add(settled);
    const forget = () => this._pending.delete(settled);
    settled.then(forget, forget);
    return settled;
  }

  _failed(error, context) {
    this.failed++;
    this._bus._report(error, context);
  }
}

/**
 * An outbox store in IndexedDB: database `name`, one object store whose keys (auto-incremented)
 * keep insertion order. Calls made in one turn are written in one transaction, in order.
 */
function indexedDbStore(idb, name) {
  let opened;
  let batch;
  let closed = false;
  const open = () => {
    if (closed) return Promise.reject(new Error('the outbox store was closed'));
    if (opened !== undefined) return opened;
    const mine = new Promise((resolve, reject) => {
      const req = idb.open(name, 1);
      req.onupgradeneeded = () => req.result.createObjectStore('entries', { autoIncrement: true }).createIndex('id', 'id');
      req.onsuccess = () => {
        const db = req.result;
        // Another tab upgrading or deleting the database: this connection steps aside (the
        // next write opens it again) rather than block it.
        db.onversionchange = () => {
          db.close();
          if (opened === mine) opened = undefined;
        };
        resolve(db);
      };
      req.onerror = () => reject(req.error);
    });
    opened = mine;
    // A database that would not open is tried again by the next call.
    mine.catch(() => { if (opened === mine) opened = undefined; });
    return mine;
  };
  const commit = (db, ops) => new Promise((resolve, reject) => {
    const tx = db.transaction('entries', 'readwrite');
    const entries = tx.objectStore('entries');
    for (const op of ops) {
      try {
        if (op.put !== undefined) {
          entries.add(op.put);
        } else {
          for (const id of op.delete) {
            const keys = entries.index('id').getAllKeys(id);
            keys.onsuccess = () => { for (const k of keys.result) entries.delete(k); };
          }
        }
      } catch (e) {
        op.error = e; // a payload IndexedDB cannot clone: this call fails, the others are written
      }
    }
    tx.oncomplete = () => resolve();
    tx.onabort = () => reject(tx.error ?? new Error('the IndexedDB transaction was aborted'));
  });
  const write = (op) => {
    if (batch === undefined) {
      const ops = [];
      const start = open().finally(() => { batch = undefined; });
      batch = { ops, done: start.then((db) => commit(db, ops)) };
    }
    batch.ops.push(op);
    return batch.done.then(() => { if (op.error !== undefined) throw op.error; });
  };
  return {
    load: () => open().then((db) => new Promise((resolve, reject) => {
      const req = db.transaction('entries', 'readonly').objectStore('entries').getAll();
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    })),
    put: (entry) => write({ put: entry }),
    delete: (ids) => write({ delete: ids }),
    // The client closed: the database connection goes, and is not opened again.
    close: () => {
      closed = true;
      const was = opened;
      opened = undefined;
      return was?.then((db) => db.close(), () => {});
    },
  };
}
