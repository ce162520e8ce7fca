//! A stop flag raised by a call's `AbortSignal`, for core loops that poll it: napi-rs cancels only
//! async work that has not started, so a long running loop must check for itself.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use napi::bindgen_prelude::AbortSignal;

/// A flag that `signal`'s abort raises (never raised without a signal).
pub(crate) fn stop_flag(signal: Option<&AbortSignal>) -> Arc<AtomicBool> {
  let stop = Arc::new(AtomicBool::new(false));
  if let Some(signal) = signal {
    let raised = Arc::clone(&stop);
    signal.on_abort(move || raised.store(true, Ordering::Relaxed));
  }
  stop
}
