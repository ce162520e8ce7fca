//! Comparing methods on per-sample scores (`xai_eval_core::compare`): bootstrap intervals and
//! paired permutation tests.

use napi::bindgen_prelude::*;
use napi_derive::napi;
use xai_eval_core::compare;

use crate::{convert, guarded};

/// `[lo, hi]`: percentile bootstrap interval of the mean of the finite values.
#[napi]
pub fn bootstrap_ci(
  values: Float64Array,
  resamples: f64,
  confidence: f64,
  seed: f64,
  key: f64,
) -> Result<Float64Array> {
  let resamples = convert::count("resamples", resamples)?;
  let (seed, key) = (convert::seed("seed", seed)?, convert::index("key", key)?);
  guarded(|| compare::bootstrap_ci(&values, resamples, confidence, seed, key))
    .map(|v| Float64Array::from(v.to_vec()))
}

/// Two-sided p-value of the paired sign-flip permutation test of mean(a − b) = 0.
#[napi]
pub fn paired_permutation_p(
  a: Float64Array,
  b: Float64Array,
  resamples: f64,
  seed: f64,
  key: f64,
) -> Result<f64> {
  let resamples = convert::count("resamples", resamples)?;
  let (seed, key) = (convert::seed("seed", seed)?, convert::index("key", key)?);
  guarded(|| compare::paired_permutation_p(&a, &b, resamples, seed, key))
}
