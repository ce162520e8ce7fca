//! Core errors and panics as JS errors. A core error crosses as `"CODE|arg|message"` with its
//! stable code (parsed into an `XaiEvalError` by `src/native.ts`); a panic, which would otherwise
//! abort the process, crosses as `INTERNAL`.

use napi::bindgen_prelude::*;
use xai_eval_core::CoreError;

/// Maps a core error to a JS error whose message starts with its stable code and argument.
pub(crate) fn js_error(e: CoreError) -> Error {
  Error::new(
    Status::InvalidArg,
    format!("{}|{}|{}", e.code(), e.arg(), e),
  )
}

/// Runs `f`, turning a panic into an `INTERNAL` error instead of aborting the process.
pub(crate) fn guarded<T>(f: impl FnOnce() -> xai_eval_core::Result<T>) -> Result<T> {
  match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
    Ok(result) => result.map_err(js_error),
    Err(_) => Err(Error::new(
      Status::GenericFailure,
      "INTERNAL|core|a Rust panic was caught".to_owned(),
    )),
  }
}
