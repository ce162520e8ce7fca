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
