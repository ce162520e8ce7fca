//! Summary statistics (`stats`) of per-sample scores.

use napi::bindgen_prelude::*;
use napi_derive::napi;
use xai_eval_core::stats;

#[napi(object)]
pub struct Summary {
  pub mean: f64,
  pub std: f64,
  /// Exact below 2^53.
  pub skipped: f64,
}

/// Mean and population std of the finite values, and how many non-finite ones were skipped.
#[napi]
pub fn summarize(values: Float64Array) -> Summary {
  let (mean, std, skipped) = stats::mean_std_skipnan(&values);
  Summary {
    mean,
    std,
    skipped: skipped as f64,
  }
}
