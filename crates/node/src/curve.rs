//! Curves (`curve`): the model's target-class scores per row and the areas under curves.

use napi::bindgen_prelude::*;
use napi_derive::napi;
use xai_eval_core::curve;

use crate::{convert, guarded};

#[napi(object)]
pub struct RowScores {
  pub scores: Float64Array,
  pub argmax: Int32Array,
}

/// Target-class score of every output row (softmax optional) and each row's argmax.
#[napi]
pub fn score_rows(
  output: Float32Array,
  classes: f64,
  targets: Int32Array,
  softmax: bool,
) -> Result<RowScores> {
  let classes = convert::count("classes", classes)?;
  let mut scores = vec![0f64; targets.len()];
  let mut argmax = vec![0i32; targets.len()];
  guarded(|| {
    curve::score_rows(
      &output,
      classes,
      &targets,
      softmax,
      &mut scores,
      &mut argmax,
    )
  })?;
  Ok(RowScores {
    scores: scores.into(),
    argmax: argmax.into(),
  })
}

/// Trapezoidal areas of `[n, k]` curves on grid `x` (empty grid: unit spacing).
#[napi]
pub fn areas(curves: Float64Array, x: Float64Array, k: f64) -> Result<Float64Array> {
  let k = convert::count("k", k)?;
  guarded(|| curve::areas(&curves, &x, k)).map(Float64Array::from)
}
