//! Time, injected. Everything time-based (TTL, dedupe age, batch waits, retry backoff, handler
//! timeouts) reads a [`Clock`], so tests run on virtual time and the core never reads a real clock
//! itself. Time is in microseconds on an arbitrary, monotonic origin.

use std::cell::Cell;
use std::rc::Rc;

/// A source of the current time, in microseconds.
pub trait Clock {
    /// Current time in microseconds. Must never go backwards.
    fn now(&self) -> u64;

    /// Whether time only moves when told to ([`ManualClock`]): a driver that has nothing to do but
    /// wait for a deadline may then jump straight to it instead of sleeping.
    fn is_virtual(&self) -> bool {
        false
    }

    /// Moves a virtual clock forward to `to` (no-op for real clocks or when `to` is in the past).
    fn advance_to(&self, _to: u64) {}
}

/// The real clock: monotonic time since the clock was created.
///
/// Natively this is [`std::time::Instant`]; in WebAssembly it is `performance.now()` (or
/// `Date.now()` where there is no `performance`, as in some Worker runtimes).
#[derive(Debug, Clone)]
pub struct SystemClock {
    #[cfg(not(target_arch = "wasm32"))]
    origin: std::time::Instant,
}

impl SystemClock {
    /// A clock whose zero is now.
    pub fn new() -> Self {
        SystemClock {
            #[cfg(not(target_arch = "wasm32"))]
            origin: std::time::Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    #[cfg(not(target_arch = "wasm32"))]
    fn now(&self) -> u64 {
        self.origin.elapsed().as_micros() as u64
    }

    #[cfg(target_arch = "wasm32")]
    fn now(&self) -> u64 {
        crate::wasm::now_micros()
    }
}

/// A virtual clock for deterministic tests: time moves only through [`ManualClock::advance`] or
/// [`ManualClock::set`] (and a driver's jump to its next deadline). Cloning shares the same time.
///
/// ```
/// use edgebus::{Clock, ManualClock};
/// let clock = ManualClock::new(0);
/// clock.advance_ms(10);
/// assert_eq!(clock.now(), 10_000);
/// ```
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    now: Rc<Cell<u64>>,
}

impl ManualClock {
    /// A virtual clock starting at `start` microseconds.
    pub fn new(start: u64) -> Self {
        ManualClock {
            now: Rc::new(Cell::new(start)),
        }
    }

    /// Moves time forward by `micros`.
    pub fn advance(&self, micros: u64) {
        self.now.set(self.now.get().saturating_add(micros));
    }

    /// Moves time forward by `ms` milliseconds.
    pub fn advance_ms(&self, ms: u64) {
        self.advance(ms.saturating_mul(1000));
    }

    /// Sets the time; ignored when it would go backwards.
    pub fn set(&self, micros: u64) {
        if micros > self.now.get() {
            self.now.set(micros);
        }
    }
}

impl Clock for ManualClock {
    fn now(&self) -> u64 {
        self.now.get()
    }

    fn is_virtual(&self) -> bool {
        true
    }

    fn advance_to(&self, to: u64) {
        self.set(to);
    }
}

/// A duration in clock microseconds, written in milliseconds as the options take them: 1500 µs
/// as `1.5`, 2000 µs as `2`. The same text as `micros as f64 / 1000.0` displays for every duration
/// under 2^43 ms (exact there), with integer formatting only: float formatting would add about
/// 14 KB to the WebAssembly build.
pub(crate) struct Millis(pub(crate) u64);

impl std::fmt::Display for Millis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (whole, mut frac) = (self.0 / 1000, self.0 % 1000);
        if frac == 0 {
            return write!(f, "{whole}");
        }
        let mut width = 3;
        while frac % 10 == 0 {
            frac /= 10;
            width -= 1;
        }
        write!(f, "{whole}.{frac:0width$}")
    }
}

/// Milliseconds (as used by the options) to clock microseconds, saturating.
#[cfg(target_arch = "wasm32")]
pub(crate) fn ms_to_micros(ms: f64) -> u64 {
    let us = ms * 1000.0;
    if us >= u64::MAX as f64 {
        u64::MAX
    } else if us <= 0.0 || us.is_nan() {
        0
    } else {
        us.round() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::Millis;

    #[test]
    fn millis_reads_as_the_float_display_of_the_milliseconds() {
        let mut cases: Vec<u64> = (0..20_000).collect();
        cases.extend([
            999_999,
            1_000_001,
            1_234_567,
            86_400_000_000,
            (1 << 43) * 1000 - 1,
            (1 << 40) * 1000 + 7,
        ]);
        let mut next = crate::test_rng::below(0x9e37_79b9_7f4a_7c15);
        for _ in 0..20_000 {
            cases.push(next((1 << 43) * 1000));
        }
        for micros in cases {
            assert_eq!(
                Millis(micros).to_string(),
                (micros as f64 / 1000.0).to_string(),
                "{micros} µs"
            );
        }
    }
}
