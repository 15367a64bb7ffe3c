//! WebAssembly bindings: one file per exported class, errors mapped in `error.rs`. The classes
//! here are the package's internals; its JavaScript layer (`src/js`) is the public API.

mod broker;
mod error;
mod filter;
mod js;
mod shard;

use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    fn performance_now() -> f64;
}

/// Monotonic time in microseconds (`performance.now()`), for the Rust `SystemClock`.
pub(crate) fn now_micros() -> u64 {
    (performance_now() * 1000.0) as u64
}

/// The first `len` bytes of a buffer JavaScript wrote into (a filter's or a broker's scratch), as a
/// string, when they are in bounds and UTF-8: JavaScript's bytes are never trusted.
pub(crate) fn scratch_str(scratch: &[u8], len: u32) -> Option<&str> {
    let bytes = scratch.get(..usize::try_from(len).ok()?)?;
    std::str::from_utf8(bytes).ok()
}

/// The instance's memory, so the JavaScript layer can write into buffers the core lends it (see
/// `WasmFilter::scratch_ptr`).
#[wasm_bindgen]
pub fn wasm_memory() -> JsValue {
    wasm_bindgen::memory()
}

/// Makes a Rust panic print its message and location to the console (a panic also poisons the
/// instance: the JavaScript layer validates every input so none is reachable).
#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}
