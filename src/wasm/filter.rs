//! `WasmFilter`: the standalone idempotence filter for JavaScript (the package's
//! `IdempotenceFilter` class supplies the clock).

use crate::clock::ms_to_micros;
use crate::dedupe::{DedupeWindow, IdempotenceFilter};
use wasm_bindgen::prelude::*;

/// Exact idempotence filter over a window of ids (internal to the package).
#[wasm_bindgen]
pub struct WasmFilter {
    filter: IdempotenceFilter,
}

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
