// Clocks: the system's (epoch milliseconds, high resolution where the runtime has it) and a virtual
// one for tests. Every time-based rule reads the clock it is given.

import { fail } from './errors.js';
import { describe } from './validate.js';

export const systemClock = {
  now: typeof performance !== 'undefined' && typeof performance.now === 'function'
    ? () => performance.timeOrigin + performance.now()
    : () => Date.now(),
};

/**
 * A caller's clock as a bus reads it after construction, where a reading is needed in the middle of
 * work under way (a pump holding completions, a restore handing copies over): a `now()` that
 * throws or answers anything but a finite number (as checkClock requires of its first reading:
 * ±Infinity would expire everything at once, or leave a deadline at no time) is taken as the last
 * good reading (time stands still),
 * said once on the console, rather than thrown out of that work half done. Its timers are the
 * caller's own.
 */
export function steadyClock(clock) {
  let last = 0;
  let told = false;
  const read = () => {
    let t;
    try {
      t = clock.now();
      if (typeof t === 'number' && Number.isFinite(t)) {
        last = t;
        return t;
      }
    } catch (e) {
      t = e;
    }
    if (!told) {
      told = true;
      console.error('edgebus: the clock\'s now() failed or gave no finite number; its last reading stands in (said once)', t);
    }
    return last;
  };
  read();
  return { now: read };
}

/**
 * A virtual clock for tests: time moves only with advance(), which runs the timers due. It starts
 * at 0 or later: the core keeps time as microseconds from 0, as the native ManualClock does (a
 * reading below 0 would count as 0, and ids or batches would not age until time passed it).
 */
export class ManualClock {
  constructor(startMs = 0) {
    if (typeof startMs !== 'number' || !Number.isFinite(startMs) || !(startMs >= 0)) {
      fail('INVALID_ARGUMENT', `ManualClock start must be a finite number of ms ≥ 0, got ${describe(startMs)}`);
    }
    this._now = startMs;
    this._timers = new Map();
    this._next = 1;
  }
  now() { return this._now; }
  setTimeout(fn, ms) {
    const id = this._next++;
    this._timers.set(id, { at: this._now + Math.max(0, ms || 0), fn });
    return id;
  }
  clearTimeout(id) { this._timers.delete(id); }
  /** Moves time forward by `ms`, running every timer that falls due, in time order. */
  advance(ms) {
    if (typeof ms !== 'number' || !(ms >= 0) || !Number.isFinite(ms)) {
      fail('INVALID_ARGUMENT', `advance() takes a finite number of ms ≥ 0, got ${describe(ms)}`);
    }
    const end = this._now + ms;
    for (;;) {
      let best;
      for (const [id, t] of this._timers) if (t.at <= end && (best === undefined || t.at < best[1].at)) best = [id, t];
      if (best === undefined) break;
      this._timers.delete(best[0]);
      if (best[1].at > this._now) this._now = best[1].at;
      best[1].fn();
    }
    this._now = end;
  }
}
