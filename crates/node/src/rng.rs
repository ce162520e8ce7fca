//! Keyed random draws (`rng::keyed_uniforms`) for the few TypeScript utilities that need plain
//! uniforms: every stream still comes from the core's one generator.

use napi::bindgen_prelude::*;
use napi_derive::napi;
use xai_eval_core::rng::{keyed_uniforms as uniforms, Purpose};
use xai_eval_core::CoreError;

use crate::{convert, js_error};

/// `count` uniforms in [0, 1) of the stream `(seed, sample, purpose, step)`; `purpose` is a
/// lower-case `Purpose` name (`'perturbation'`, `'ties'`, …).
#[napi]
pub fn keyed_uniforms(
  count: f64,
  seed: f64,
  sample: f64,
  purpose: String,
  step: f64,
) -> Result<Float64Array> {
  let count = convert::count("count", count)?;
  let (seed, sample, step) = (
    convert::seed("seed", seed)?,
    convert::index("sample", sample)?,
    convert::index("step", step)?,
  );
  let purpose = Purpose::from_name(&purpose).ok_or_else(|| {
    js_error(CoreError::InvalidParam {
      name: "purpose",
      reason: format!("unknown purpose {purpose:?}"),
    })
  })?;
  let mut out = vec![0f64; count];
  uniforms(seed, sample, purpose, step, &mut out);
  Ok(out.into())
}
