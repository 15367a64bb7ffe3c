// IdempotenceFilter: the core's exact duplicate filter, on its own. Short ASCII ids are written
// into a buffer the core lends (no string copy across the boundary).

import { fail } from '../shared/errors.js';
import { raw, ready } from '../shared/core.js';
import { DURATION, EMPTY_OPTIONS, checkClock, checkString, describe, numberOption, snapshot } from '../shared/validate.js';
import { steadyClock, systemClock } from '../shared/clock.js';
import { writeAscii } from '../shared/memory.js';
import { printsAs } from '../shared/inspect.js';

/** Exact duplicate filter over a window of ids (by count and by age). */
export class IdempotenceFilter {
  constructor(options) {
    printsAs(IdempotenceFilter, 'IdempotenceFilter');
    ready();
    const o = options === undefined ? EMPTY_OPTIONS : snapshot(options, ['maxIds', 'maxAgeMs', 'clock'], 'options');
    const maxIds = numberOption(o, 'maxIds', 'options', { integer: true, min: 1, max: 2 ** 32 - 1 }) ?? 10000;
    const maxAgeMs = numberOption(o, 'maxAgeMs', 'options', DURATION) ?? Infinity;
    // Ages matter only with an age limit: without one the clock is not read. A caller's clock is
    // read as Bus reads one (steadyClock): a later now() that throws or gives no number (a
    // Symbol, a BigInt, NaN) stands for its last good reading, never reaches the core.
    this._aged = Number.isFinite(maxAgeMs);
    const clock = checkClock(o.clock, 'clock', this._aged) ?? systemClock;
    this._clock = clock === systemClock || !this._aged ? clock : steadyClock(clock);
    this._f = new raw.WasmFilter(maxIds, maxAgeMs);
    this._ptr = this._f.scratch_ptr();
    this._room = this._f.scratch_len();
    this.maxIds = maxIds;
    this.maxAgeMs = maxAgeMs;
  }
  // The clock is read before the id is written into the core's buffer: a clock calling this
  // filter from its now() writes its own id there, which must not stand in for this one.

  /** Records `id`; true when it was not in the window (let the message through). */
  check(id) {
    const now = this._aged ? this._clock.now() : 0;
    const n = writeAscii(id, this._ptr, this._room);
    if (n >= 0) return this._answer(this._f.check_scratch(n, now), id);
    checkString(id, 'INVALID_ARGUMENT', 'id');
    return this._f.check(id, now);
  }
  /** Whether `id` is in the window, without recording it. */
  has(id) {
    const now = this._aged ? this._clock.now() : 0;
    const n = writeAscii(id, this._ptr, this._room);
    if (n >= 0) return this._answer(this._f.has_scratch(n, now), id) === false;
    checkString(id, 'INVALID_ARGUMENT', 'id');
    return this._f.has(id, now);
  }
  get size() { return this._f.size(this._aged ? this._clock.now() : 0); }
  clear() { this._f.clear(); }
  toJSON() { return { maxIds: this.maxIds, maxAgeMs: this.maxAgeMs, size: this.size }; }
  /** The scratch calls' answer as a boolean: 1 absent (true), 0 present (false). */
  _answer(code, id) {
    if (code === 2) fail('INVALID_ARGUMENT', `id ${describe(id)} could not be read`);
    return code === 1;
  }
}

