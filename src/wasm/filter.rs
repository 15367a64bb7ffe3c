//! `WasmFilter`: the standalone idempotence filter for JavaScript (the package's
//! `IdempotenceFilter` class supplies the clock).
//!
//! Hot path: `check` is called once per id, so the id does not cross as a string. Each filter owns
//! a small buffer in wasm memory (`scratch_ptr`); JavaScript writes an ASCII id's bytes there and
//! calls `check_scratch(len, now)`: no allocation, no copy into a fresh string, per call. Other ids
//! (longer, or not ASCII) take `check(id, now)`.

use super::scratch_str;
use crate::clock::ms_to_micros;
use crate::dedupe::{DedupeWindow, IdempotenceFilter};
use wasm_bindgen::prelude::*;

/// Exact idempotence filter over a window of ids (internal to the package).
#[wasm_bindgen]
pub struct WasmFilter {
    filter: IdempotenceFilter,
    /// Written by JavaScript between calls, read by `check_scratch`/`has_scratch`.
    scratch: Vec<u8>,
}

/// Bytes in a filter's scratch buffer: ids up to this length take the scratch path.
const SCRATCH_BYTES: usize = 256;

/// `check_scratch`/`has_scratch` answers (a number, so no `Result` crosses on the hot path).
const ABSENT: u32 = 1;
const PRESENT: u32 = 0;
const NOT_AN_ID: u32 = 2;

#[wasm_bindgen]
impl WasmFilter {
    /// A filter remembering at most `max_ids` ids, each for `max_age_ms` (≤ 0 or infinite: no
    /// age limit). Arguments are validated by the JavaScript layer.
    #[wasm_bindgen(constructor)]
    pub fn new(max_ids: f64, max_age_ms: f64) -> WasmFilter {
        let max_age =
            (max_age_ms.is_finite() && max_age_ms > 0.0).then(|| ms_to_micros(max_age_ms));
        WasmFilter {
            filter: IdempotenceFilter::new(DedupeWindow {
                max_ids: if max_ids >= 1.0 && max_ids.is_finite() {
                    max_ids as usize
                } else {
                    1
                },
                max_age,
            }),
            scratch: vec![0; SCRATCH_BYTES],
        }
    }

    /// Where JavaScript writes an id for `check_scratch`/`has_scratch` (a byte offset in the
    /// instance's memory; stable for the filter's life).
    pub fn scratch_ptr(&self) -> u32 {
        self.scratch.as_ptr() as usize as u32
    }

    /// The capacity of the scratch buffer, in bytes.
    pub fn scratch_len(&self) -> u32 {
        SCRATCH_BYTES as u32
    }

    /// `check` for the id of `len` bytes in the scratch buffer: 1 when it was not in the window
    /// (now recorded), 0 for a duplicate, 2 when the bytes are not an id (too long, or not UTF-8:
    /// nothing is recorded).
    pub fn check_scratch(&mut self, len: u32, now_ms: f64) -> u32 {
        let Some(id) = scratch_str(&self.scratch, len) else {
            return NOT_AN_ID;
        };
        if self.filter.check(id, ms_to_micros(now_ms)) {
            ABSENT
        } else {
            PRESENT
        }
    }

    /// `has` for the id of `len` bytes in the scratch buffer: 0 when it is in the window, 1 when
    /// not, 2 when the bytes are not an id.
    pub fn has_scratch(&mut self, len: u32, now_ms: f64) -> u32 {
        let Some(id) = scratch_str(&self.scratch, len) else {
            return NOT_AN_ID;
        };
        if self.filter.has(id, ms_to_micros(now_ms)) {
            PRESENT
        } else {
            ABSENT
        }
    }

    /// Records `id`; `true` when it was not in the window.
    pub fn check(&mut self, id: &str, now_ms: f64) -> bool {
        self.filter.check(id, ms_to_micros(now_ms))
    }

    /// Whether `id` is in the window, without recording it.
    pub fn has(&mut self, id: &str, now_ms: f64) -> bool {
        self.filter.has(id, ms_to_micros(now_ms))
    }

    /// Ids in the window.
    pub fn size(&mut self, now_ms: f64) -> u32 {
        self.filter.len(ms_to_micros(now_ms)) as u32
    }

    /// Forgets every id.
    pub fn clear(&mut self) {
        self.filter.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn write(f: &mut WasmFilter, id: &str) -> u32 {
        f.scratch[..id.len()].copy_from_slice(id.as_bytes());
        id.len() as u32
    }

    #[test]
    fn the_scratch_path_agrees_with_the_string_path() {
        let mut f = WasmFilter::new(2.0, f64::INFINITY);
        let n = write(&mut f, "order-1");
        assert_eq!(f.check_scratch(n, 0.0), ABSENT);
        assert_eq!(f.check_scratch(n, 0.0), PRESENT);
        assert!(!f.check("order-1", 0.0));
        assert_eq!(f.has_scratch(n, 0.0), PRESENT);
        assert!(f.check("order-2", 0.0));
        assert!(f.check("order-3", 0.0));
        // The window holds two ids: order-1 left.
        assert_eq!(f.has_scratch(n, 0.0), ABSENT);
    }

    #[test]
    fn bytes_that_are_not_an_id_record_nothing() {
        let mut f = WasmFilter::new(10.0, f64::INFINITY);
        assert_eq!(f.check_scratch(SCRATCH_BYTES as u32 + 1, 0.0), NOT_AN_ID);
        assert_eq!(f.check_scratch(u32::MAX, 0.0), NOT_AN_ID);
        f.scratch[..2].copy_from_slice(&[0xc3, 0x28]);
        assert_eq!(f.check_scratch(2, 0.0), NOT_AN_ID);
        assert_eq!(f.has_scratch(2, 0.0), NOT_AN_ID);
        assert_eq!(f.size(0.0), 0);
    }
}
