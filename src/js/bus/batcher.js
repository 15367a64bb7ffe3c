// Batcher: groups items and hands them to a handler as arrays; a Bus with one batch subscription.

import { ready } from '../shared/core.js';
import { BATCH_OPTIONS, EMPTY_OPTIONS, checkHandler, functionOption, parseBatch, snapshot } from '../shared/validate.js';
import { Bus } from './bus.js';
import { printsAs } from '../shared/inspect.js';

/** Groups items and calls the handler with arrays, on size, bytes or time. */
export class Batcher {
  constructor(handler, options) {
    printsAs(Batcher, 'Batcher');
    ready();
    checkHandler(handler);
    const o = options === undefined ? EMPTY_OPTIONS : snapshot(options, [...BATCH_OPTIONS, 'sizeOf', 'clock', 'onError'], 'options');
    const given = {};
    for (const k of BATCH_OPTIONS) if (o[k] !== undefined) given[k] = o[k];
    // The validated copy (backoff included) is what the bus gets: the caller's objects are read once.
    const batch = parseBatch(given, 'options');
    const onError = functionOption(o, 'onError', 'options');
    this._bus = new Bus({
      maxQueue: Infinity, overflow: 'reject', clock: o.clock, sizeOf: o.sizeOf,
      onError: onError && ((err, items) => onError(err, items.map((m) => m.payload))),
    });
    this._sub = this._bus.subscribe('batch', (items) => handler(items.map((m) => m.payload)), { batch });
  }
  /** Adds an item (MESSAGE_TOO_LARGE if it alone is over maxBytes, CLOSED after close). */
  add(item) { this._bus.publish('batch', item); }
  flush() { this._bus.flush(); }
  drain() { return this._bus.drain(); }
  /** Refuses later adds (CLOSED); resolves once every item is handled, retries included. */
  async close() { await this._bus.close(); }
  stats() { return this._sub.stats(); }
  toJSON() { return { closed: this._bus.closed }; }
}
