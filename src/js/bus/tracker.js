// RequestTracker: the core's request rules (what each answer does, when a request ends) for a
// driver whose responders are elsewhere and are learnt of as reports come in — the edge hub keeps
// its connections' requests, which reach subscribers on other hubs, in one. Bus and ShardedBus
// keep their requests in their own core and need none.

import { raw, ready, REC_REQUEST_ENDED, KIND_REPLY, KIND_FAILURE, KIND_DECLINE } from '../shared/core.js';
import { wasmWords } from '../shared/memory.js';
import { fail } from '../shared/errors.js';
import { checkClock, describe, numberOption, snapshot, DURATION } from '../shared/validate.js';
import { steadyClock, systemClock } from '../shared/clock.js';
import { printsAs } from '../shared/inspect.js';

const ANSWERS = ['late', 'reply', 'replyLast', 'failed', 'failedLast', 'declined', 'declinedLast', 'completeLast', 'declinedFailedLast'];
const REACHED = ['pending', 'replied', 'failed', 'noResponders', 'gone'];
const NO_COMPLETIONS = new Uint32Array(0);

function idParts(id) {
  if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id > Number.MAX_SAFE_INTEGER) {
    fail('INVALID_ARGUMENT', `request id must be one open() returned, got ${describe(id)}`);
  }
  return [Math.floor(id / 4294967296), id >>> 0];
}

function count(v, what) {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 2 ** 32 - 1) {
    fail('INVALID_ARGUMENT', `${what} must be an integer from 0 to 2^32 - 1, got ${describe(v)}`);
  }
  return v;
}

export class RequestTracker {
  /**
   * `clock` (default: the system's) reads the time for deadlines, as Bus reads one (steadyClock):
   * a later now() that throws or gives no number stands for its last good reading (a deadline is
   * never NaN, a string, or a Symbol at the core).
   */
  constructor(options) {
    printsAs(RequestTracker, 'RequestTracker');
    ready();
    const o = options === undefined ? {} : snapshot(options, ['clock'], 'options');
    const clock = checkClock(o.clock, 'clock') ?? systemClock;
    this._clock = clock === systemClock ? clock : steadyClock(clock);
    // A core of its own, with no subscription: its requests, their deadlines and counts.
    this._t = new raw.WasmBroker(0, 0, 0, -1, 0, 0, 0, 1, new Float64Array(0), undefined);
    this._kinds = { reply: KIND_REPLY, failure: KIND_FAILURE, decline: KIND_DECLINE };
  }

  /**
   * Opens a request taking up to `max` replies (default 1), ending after `timeoutMs` (default
   * 5000; Infinity: no deadline), whose responders `reports` reports (default 1) will tell of.
   * Returns its id.
   */
  open(options) {
    const o = options === undefined ? {} : snapshot(options, ['max', 'reports', 'timeoutMs'], 'options');
    const max = numberOption(o, 'max', 'options', { integer: true, min: 1, max: 2 ** 30 }) ?? 1;
    const reports = numberOption(o, 'reports', 'options', { integer: true, min: 0, max: 2 ** 32 - 1 }) ?? 1;
    const timeoutMs = numberOption(o, 'timeoutMs', 'options', DURATION) ?? 5000;
    const deadline = timeoutMs === Infinity ? -1 : this._clock.now() + timeoutMs;
    return this._t.open_remote_request(max, reports, deadline);
  }

  /** Counts a request refused before it was opened because nothing could answer it. */
  refusedWithoutResponders() {
    this._t.refused_without_responders();
  }

  /**
   * A report came: `responders` more responders, and `reports` more reports to wait for. Returns
   * 'pending', or how the request ended with it ('replied', 'failed', 'noResponders'), or 'gone'.
   */
  reached(id, reports, responders) {
    const [i, g] = idParts(id);
    return REACHED[this._t.request_reached(i, g, count(reports, 'reports'), count(responders, 'responders'))];
  }

  /**
   * `responder`'s (a number naming it, unique within the request) answer: `kind` 'reply',
   * 'failure' or 'decline'. Returns 'reply' / 'replyLast' (taken; last: the request ended with
   * it), 'failed' / 'declined' (taken, the request goes on), or how the request ended with it:
   * 'completeLast' (a failure or decline after replies: complete, with them), 'failedLast' (a
   * failure, no reply: it fails with this one), 'declinedFailedLast' (a decline, no reply, a
   * failure before: it fails with that one), 'declinedLast' (no reply, no failure: no responder
   * answered); or 'late' (ignored: after the end, or the responder's second).
   */
  answer(id, responder, kind) {
    const [i, g] = idParts(id);
    if (typeof responder !== 'number' || !Number.isInteger(responder) || responder < 0 || responder > Number.MAX_SAFE_INTEGER) {
      fail('INVALID_ARGUMENT', `responder must be a safe integer ≥ 0, got ${describe(responder)}`);
    }
    // (Only a string is looked up: an object as a key would be converted, which can throw.)
    const k = typeof kind === 'string' && Object.hasOwn(this._kinds, kind) ? this._kinds[kind] : fail('INVALID_ARGUMENT', `kind must be 'reply', 'failure' or 'decline', got ${describe(kind)}`);
    return ANSWERS[this._t.answer(i, g, responder, k)];
  }

  /** Ends a request for its requester; false when it had ended. */
  cancel(id) {
    const [i, g] = idParts(id);
    return this._t.cancel_request(i, g);
  }

  /** Ends the requests whose deadline passed (counted timed out); returns their ids. */
  due() {
    // A round of its core fires the deadlines due; each ended request is a record.
    const n = this._t.pump(this._clock.now(), NO_COMPLETIONS, undefined);
    const ids = [];
    if (n === 0) return ids;
    const w = wasmWords();
    const at = this._t.records_ptr() >>> 2;
    for (let k = 0; k < n;) {
      if (w[at + k] === REC_REQUEST_ENDED) {
        ids.push(w[at + k + 1] * 4294967296 + w[at + k + 2]);
        k += 4;
      } else {
        k += 1; // (nothing else can be reported by a core without subscriptions)
      }
    }
    return ids;
  }

  /** The earliest deadline of a pending request (clock ms), or undefined. */
  nextDeadline() {
    const d = this._t.next_deadline();
    return d < 0 ? undefined : d;
  }

  /** Requests pending. */
  get pending() { return this._t.request_stats().pending; }

  /** `{ sent, replies, failed, declined, timedOut, noResponders, cancelled, late, pending }`. */
  stats() { return this._t.request_stats(); }
}
