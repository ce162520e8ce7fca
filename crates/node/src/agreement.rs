//! Agreement of quality estimates with the truth (`agreement`).

use napi::bindgen_prelude::*;
use napi_derive::napi;
use xai_eval_core::agreement;

use crate::{convert, guarded};

/// `[Kendall's τ-b, Spearman's ρ, share of correctly ordered pairs]` of `estimate` against `truth`.
#[napi]
pub fn agreement(truth: Float64Array, estimate: Float64Array) -> Result<Float64Array> {
  guarded(|| agreement::agreement(&truth, &estimate)).map(|v| Float64Array::from(v.to_vec()))
}

/// QB_K of every value of `q`: `q[i]` minus the mean of `k` values of `q` drawn with replacement,
/// keyed by `(seed, sample, i)`.
#[napi]
pub fn random_baseline_gaps(
  q: Float64Array,
  k: f64,
  seed: f64,
  sample: f64,
) -> Result<Float64Array> {
  let k = convert::count("k", k)?;
  let (seed, sample) = (
    convert::seed("seed", seed)?,
    convert::index("sample", sample)?,
  );
  guarded(|| agreement::random_baseline_gaps(&q, k, seed, sample)).map(Float64Array::from)
}

/// `[reps, methods]` bootstrap means of `scores` (`[methods, n]`), every replicate resampling the
/// same sample indices for all methods (paired), replicate `r` keyed by `(seed, r)`.
#[napi]
pub fn bootstrap_means(
  scores: Float64Array,
  methods: f64,
  reps: f64,
  seed: f64,
) -> Result<Float64Array> {
  let (methods, reps, seed) = (
    convert::count("methods", methods)?,
    convert::count("reps", reps)?,
    convert::seed("seed", seed)?,
  );
  guarded(|| agreement::bootstrap_means(&scores, methods, reps, seed)).map(Float64Array::from)
}
