//! Random explanations (`explanation::random_rankings`).

use napi::bindgen_prelude::*;
use napi_derive::napi;
use xai_eval_core::explanation;

use crate::{convert, guarded};

/// Random rankings `[samples, H·W]` of samples `firstSample…` for draw `draw`, on cells of
/// `chunk × chunk` pixels.
#[napi]
pub fn random_rankings(
  samples: f64,
  first_sample: f64,
  height: f64,
  width: f64,
  chunk: f64,
  seed: f64,
  draw: f64,
) -> Result<Float32Array> {
  let samples = convert::count("samples", samples)?;
  let first_sample = convert::index("firstSample", first_sample)?;
  let (height, width) = (
    convert::count("height", height)?,
    convert::count("width", width)?,
  );
  let chunk = convert::count("chunk", chunk)?;
  let (seed, draw) = (convert::seed("seed", seed)?, convert::index("draw", draw)?);
  guarded(|| explanation::random_rankings(samples, first_sample, height, width, chunk, seed, draw))
    .map(Float32Array::from)
}
