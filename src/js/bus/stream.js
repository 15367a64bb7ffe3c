// `bus.stream(pattern)`: a subscription read with `for await`. Its handler holds each message
// until the loop takes it (the delivery lasts until then), so the subscription's own queue, in
// the core, bounds what waits: `maxQueue` and `overflow` apply as to any subscription (unlike
// Node's `events.on`, which buffers without limit).

import { EdgebusError } from '../shared/errors.js';
import { abortReason, addAbortListener, removeAbortListener } from '../shared/validate.js';

export class MessageStream {
  constructor(bus, signal) {
    this._bus = bus;
    this._signal = signal;
    /** The subscription behind it (set by `Bus.stream`). */
    this.subscription = undefined;
    /** The message its handler holds: `{ message, release }`. */
    this._held = undefined;
    /** A `next()` waiting for a message: `{ resolve, reject }`. */
    this._waiting = [];
    this._ended = false;
    this._error = undefined;
    this._onAbort = undefined;
    this._close = () => this._end(undefined);
    if (signal !== undefined) {
      this._onAbort = () => this._end(new EdgebusError('ABORTED', 'the stream was aborted', { cause: abortReason(signal) }));
      addAbortListener(signal, this._onAbort);
    }
  }

  [Symbol.asyncIterator]() { return this; }

  next() {
    if (this._held !== undefined) {
      const { message, release } = this._held;
      this._held = undefined;
      release();
      return Promise.resolve({ value: message, done: false });
    }
    if (this._error !== undefined) {
      const e = this._error;
      this._error = undefined;
      return Promise.reject(e);
    }
    if (this._ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => this._waiting.push({ resolve, reject }));
  }

  /** Leaving the loop: the subscription leaves; a message it held counts as delivered. */
  return() {
    this._held?.release();
    this._held = undefined;
    this._error = undefined;
    this._end(undefined);
    return Promise.resolve({ value: undefined, done: true });
  }

  /** The subscription's handler: hands `message` to a waiting `next()`, or holds it. */
  _take(message) {
    const w = this._waiting.shift();
    if (w !== undefined) {
      w.resolve({ value: message, done: false });
      return undefined;
    }
    return new Promise((release) => {
      this._held = { message, release };
    });
  }

  /** Ends it: with `err` (ABORTED) the loop throws after the message it holds, else it is done. */
  _end(err) {
    if (this._ended) return;
    this._ended = true;
    this._bus._waits.delete(this._close);
    if (this._onAbort !== undefined) {
      removeAbortListener(this._signal, this._onAbort);
      this._onAbort = undefined;
    }
    // Its queued messages are cancelled (counted); the one it holds is still read, and its
    // delivery ends now (a close drains without waiting for the loop).
    this.subscription?.unsubscribe();
    if (this._held !== undefined) {
      const held = this._held;
      this._held = { message: held.message, release: () => {} };
      held.release();
    }
    const waiting = this._waiting.splice(0);
    if (err === undefined) {
      for (const w of waiting) w.resolve({ value: undefined, done: true });
    } else if (waiting.length > 0) {
      waiting[0].reject(err);
      for (let i = 1; i < waiting.length; i++) waiting[i].resolve({ value: undefined, done: true });
    } else {
      this._error = err;
    }
  }

  /** Its subscription left (unsubscribe(), or the end above). */
  _left() {
    this._end(undefined);
  }
}
