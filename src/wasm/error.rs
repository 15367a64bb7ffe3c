//! Errors as JavaScript sees them: `Error` objects with a stable `code`, mapped in one place.

use crate::error::Error;
use wasm_bindgen::prelude::*;

/// A JavaScript `Error` named `EdgebusError` carrying `code`; the package's JavaScript layer turns
/// it into an instance of its `EdgebusError` class.
pub(crate) fn to_js(e: Error) -> JsValue {
    let err = js_sys::Error::new(e.message());
    err.set_name("EdgebusError");
    // Setting a property on a fresh Error object cannot fail.
    let _ = js_sys::Reflect::set(&err, &"code".into(), &e.code().as_str().into());
    err.into()
}
