// Requests on the JavaScript side: what a requester waits on (a promise for `request`, an async
// iterator for `requestMany`) and the message a responder's handler gets. Whether an answer is
// taken, and when a request ends, is the core's decision (`open_request`, `answer`, the
// `requestEnded` record); this module only hands the outcome to the waiting caller.

import { EdgebusError, errorText } from '../shared/errors.js';
import { removeAbortListener } from '../shared/validate.js';
import { KIND_REPLY } from '../shared/core.js';

/** The pending request a message carries (on its envelope). */
export const REQUEST = Symbol('edgebus.request');
/** On a responder's copy of a request message: `{ req, s, answered }`. */
export const RESPONSE = Symbol('edgebus.response');

/**
 * A responder's view of a request message: the envelope's fields and `reply(value)`, which
 * answers the request (true when the answer was taken, false when the request had ended or this
 * subscription had answered it already).
 */
class RequestMessage {
  constructor(bus, env, req, s) {
    this.topic = env.topic;
    this.payload = env.payload;
    this.publishedAt = env.publishedAt;
    this.attempt = env.attempt;
    if (env.id !== undefined) this.id = env.id;
    if (env.key !== undefined) this.key = env.key;
    if (env.headers !== undefined) this.headers = env.headers;
    if (env.ttlMs !== undefined) this.ttlMs = env.ttlMs;
    this[REQUEST] = req;
    this[RESPONSE] = { bus, req, s, answered: false };
  }

  reply(value) {
    const st = this[RESPONSE];
    st.answered = true;
    return st.bus._answer(st.req, st.s, KIND_REPLY, value);
  }
}

/** The message subscription `s` gets for a request's envelope `env`. */
export function responderMessage(bus, env, req, s) {
  return new RequestMessage(bus, env, req, s);
}

/** The error a requester gets from a responder's final failure. */
function responderError(err, s) {
  const code = err instanceof EdgebusError && err.code === 'HANDLER_TIMEOUT' ? 'HANDLER_TIMEOUT' : 'HANDLER_FAILED';
  return new EdgebusError(code,
    `the responder (subscription #${s._id}, \`${s._pattern}\`) failed: ${errorText(err)}`, { cause: err });
}

/** A request the bus opened in the core, until it ends. */
export class PendingRequest {
  constructor(bus, id, o, many) {
    this.bus = bus;
    this.id = id;
    this.ri = Math.floor(id / 4294967296);
    this.rg = id >>> 0;
    this.timeoutMs = o.timeoutMs;
    this.signal = o.signal;
    this.onAbort = undefined;
    /** The last responder failure (named by a timeout). */
    this.failure = undefined;
    this.done = false;
    this.replies = many ? new Replies(this) : undefined;
    this.resolve = undefined;
    this.reject = undefined;
  }

  /** A reply the core took; `last`: the request ended with it. */
  reply(value, last) {
    if (this.replies !== undefined) {
      this.replies._push(value);
      if (last) this._end(undefined);
    } else {
      this._end(undefined, value);
    }
  }

  /** A responder's final failure the core took; `last`: the request ended with it. */
  failed(err, s, last) {
    const e = responderError(err, s);
    this.failure = e;
    if (last) this.endedFailing(e);
  }

  /**
   * It ended with responder failure `e` the last answer: a single request fails with it; a
   * gathering (`requestMany`) ends, with the replies it had.
   */
  endedFailing(e) {
    this.failure = e;
    this._end(this.replies === undefined ? e : undefined);
  }

  /**
   * Every subscription reached answered, the last by declining, and no reply came; `failed`: the
   * core says one failed before (a single request fails with that failure), else none answered.
   */
  declined(failed) {
    if (this.replies !== undefined) this._end(undefined);
    else if (failed) this._end(this.failure ?? new EdgebusError('HANDLER_FAILED', 'a responder failed'));
    else this._end(new EdgebusError('NO_RESPONDERS', 'every subscription the request reached completed without a reply'));
  }

  /** The core ended it: at its deadline (`why`: how the core that ended it put it), or at the close. */
  ended(closed, why) {
    if (closed) {
      this._end(new EdgebusError('CLOSED', 'bus closed before the request got its answer'));
    } else if (this.replies === undefined) {
      const cause = this.failure === undefined ? '' : ` (${this.failure.message})`;
      this._end(new EdgebusError('TIMEOUT', why ?? `no reply within ${this.timeoutMs} ms${cause}`,
        this.failure === undefined ? undefined : { cause: this.failure }));
    } else {
      this._end(undefined);
    }
  }

  /** Its requester gave it up (the core was told first). */
  aborted(reason) {
    this._end(new EdgebusError('ABORTED', 'the request was aborted', reason === undefined ? undefined : { cause: reason }));
  }

  _end(err, value) {
    if (this.done) return;
    this.done = true;
    this.bus._requests.delete(this.id);
    if (this.onAbort !== undefined) removeAbortListener(this.signal, this.onAbort);
    if (this.replies !== undefined) this.replies._finish(err);
    else if (err !== undefined) this.reject(err);
    else this.resolve(value);
  }
}

/**
 * The async iterator `requestMany` returns: each reply as it is taken; it ends when the request
 * does (every responder answered, `max` replies, the timeout) and throws for an abort, the
 * close, or a request that could not be made. Leaving a `for await` early gives the request up.
 */
export class Replies {
  constructor(req) {
    this._req = req;
    this._queue = [];
    this._waiting = [];
    this._done = false;
    this._error = undefined;
  }

  [Symbol.asyncIterator]() { return this; }

  next() {
    if (this._queue.length > 0) return Promise.resolve({ value: this._queue.shift(), done: false });
    if (this._error !== undefined) {
      const e = this._error;
      this._error = undefined;
      return Promise.reject(e);
    }
    if (this._done) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => this._waiting.push({ resolve, reject }));
  }

  return() {
    const req = this._req;
    if (req !== undefined && !req.done) req.bus._giveUp(req);
    this._queue.length = 0;
    this._error = undefined;
    this._finish(undefined);
    return Promise.resolve({ value: undefined, done: true });
  }

  _push(value) {
    const w = this._waiting.shift();
    if (w !== undefined) w.resolve({ value, done: false });
    else this._queue.push(value);
  }

  _finish(err) {
    if (this._done) return;
    this._done = true;
    const waiting = this._waiting.splice(0);
    if (err === undefined) {
      for (const w of waiting) w.resolve({ value: undefined, done: true });
      return;
    }
    if (waiting.length === 0) {
      this._error = err;
      return;
    }
    waiting[0].reject(err);
    for (let i = 1; i < waiting.length; i++) waiting[i].resolve({ value: undefined, done: true });
  }
}

/** The iterator of a `requestMany` that could not be made: its first step throws `err`. */
export function failedReplies(err) {
  const r = new Replies(undefined);
  r._finish(err);
  return r;
}
