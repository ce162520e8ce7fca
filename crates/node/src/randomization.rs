//! Randomization sanity checks (`xai_eval_core::randomization`): random other classes, per-sample
//! similarities of two explanations, and keyed random weights.

use napi::bindgen_prelude::*;
use napi_derive::napi;
use xai_eval_core::randomization::{self, Prepare, Similarity};
use xai_eval_core::CoreError;

use crate::correlation::{task, CoreTask, Job};
use crate::{convert, guarded, js_error};

pub struct SmoothRowsTask {
  x: Float32Array,
  rows: Uint32Array,
  out: Float32Array,
  samples: usize,
  first_sample: u64,
  seed: u64,
  magnitude: f64,
  clean: Option<u32>,
}

#[napi]
impl Task for SmoothRowsTask {
  type Output = ();
  type JsValue = ();

  fn compute(&mut self) -> Result<Self::Output> {
    // SAFETY: as in `NoisyRowsTask`: JS does not touch `out` until the promise settles.
    #[allow(unsafe_code)]
    let out = unsafe { self.out.as_mut() };
    guarded(|| {
      randomization::smooth_rows(
        &self.x,
        self.samples,
        self.first_sample,
        self.seed,
        self.magnitude,
        self.clean,
        &self.rows,
        out,
      )
    })
  }

  fn resolve(&mut self, _env: Env, _output: Self::Output) -> Result<Self::JsValue> {
    Ok(())
  }
}

/// SmoothMPRT's noisy copies of `x` for `(sample, draw)` pairs: σ = `magnitude`·(max − min) of
/// each sample, keyed by `(seed, firstSample + sample, draw)`; draw `clean` (−1: none) is `x` itself.
#[napi(ts_return_type = "Promise<void>")]
#[allow(clippy::too_many_arguments)]
pub fn smooth_rows(
  x: Float32Array,
  samples: f64,
  first_sample: f64,
  seed: f64,
  magnitude: f64,
  clean: f64,
  rows: Uint32Array,
  out: Float32Array,
  signal: Option<AbortSignal>,
) -> Result<AsyncTask<SmoothRowsTask>> {
  let clean = if clean < 0.0 {
    None
  } else {
    Some(u32::try_from(convert::index("clean", clean)?).map_err(|_| {
      js_error(CoreError::InvalidParam {
        name: "clean",
        reason: "too large".into(),
      })
    })?)
  };
  let task = SmoothRowsTask {
    x,
    rows,
    out,
    samples: convert::count("samples", samples)?,
    first_sample: convert::index("firstSample", first_sample)?,
    seed: convert::seed("seed", seed)?,
    magnitude,
    clean,
  };
  Ok(AsyncTask::with_optional_signal(task, signal))
}

/// One class other than each label, uniform over the others, keyed by `(seed, firstSample + i)`.
#[napi]
pub fn other_classes(
  labels: Int32Array,
  classes: f64,
  seed: f64,
  first_sample: f64,
) -> Result<Int32Array> {
  let classes = convert::count("numClasses", classes)?;
  let seed = convert::seed("seed", seed)?;
  let first_sample = convert::index("firstSample", first_sample)?;
  guarded(|| randomization::other_classes(&labels, classes, seed, first_sample))
    .map(Int32Array::from)
}

/// Per sample `[similarity, mean |a − b|]`; `similarity` is `'spearman' | 'pearson' | 'ssim'`;
/// each map is made `|v|` (`abs`) and divided by its max |v| (`normalise`) first.
#[napi(ts_return_type = "Promise<Float64Array>")]
#[allow(clippy::too_many_arguments)]
pub fn compare_explanations(
  a: Float32Array,
  b: Float32Array,
  samples: f64,
  similarity: String,
  abs: bool,
  normalise: bool,
  signal: Option<AbortSignal>,
) -> Result<AsyncTask<CoreTask>> {
  let samples = convert::count("samples", samples)?;
  let similarity = match similarity.as_str() {
    "spearman" => Similarity::Spearman,
    "pearson" => Similarity::Pearson,
    "ssim" => Similarity::Ssim,
    "entropy-rise" => Similarity::EntropyRise,
    other => {
      return Err(js_error(CoreError::InvalidParam {
        name: "similarity",
        reason: format!("unknown similarity '{other}'"),
      }))
    }
  };
  let job: Job = Box::new(move || {
    randomization::compare_rows(&a, &b, samples, similarity, Prepare { abs, normalise })
  });
  Ok(task(job, signal))
}

/// `count` weights U(−bound, bound) keyed by `(seed, layer, tensor)`.
#[napi]
pub fn random_weights(
  count: f64,
  bound: f64,
  seed: f64,
  layer: f64,
  tensor: f64,
) -> Result<Float32Array> {
  let count = convert::count("count", count)?;
  let seed = convert::seed("seed", seed)?;
  let (layer, tensor) = (
    convert::index("layer", layer)?,
    convert::index("tensor", tensor)?,
  );
  let mut out = vec![0f32; count];
  guarded(|| randomization::random_weights(&mut out, bound, seed, layer, tensor))?;
  Ok(Float32Array::from(out))
}
