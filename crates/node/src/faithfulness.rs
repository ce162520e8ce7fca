//! Infidelity's perturbed rows (an `AsyncTask` per model batch) and Sufficiency's data-set reduce.

use napi::bindgen_prelude::*;
use napi_derive::napi;
use xai_eval_core::infidelity::{self, InfidelityRow, InfidelitySource};
use xai_eval_core::sufficiency::{self, Mode, Options};

use crate::{convert, guarded, js_error};

/// What Infidelity's rows share besides the arrays.
#[napi(object)]
#[derive(Clone)]
pub struct InfidelitySpec {
  /// `[N, C, H, W]` of `x`.
  pub shape: Vec<f64>,
  /// 1 (broadcast) or `C`.
  pub attr_channels: f64,
  /// Global index of sample 0 (keys the random draws).
  pub first_sample: f64,
  pub seed: f64,
  pub sigma: f64,
  pub max_side: f64,
}

pub struct InfidelityTask {
  x: Float32Array,
  a: Float32Array,
  baselines: Float32Array,
  rows: Uint32Array,
  out: Float32Array,
  shape: [usize; 4],
  attr_channels: usize,
  first_sample: u64,
  seed: u64,
  sigma: f64,
  max_side: usize,
}

#[napi]
impl Task for InfidelityTask {
  type Output = Vec<f64>;
  type JsValue = Float64Array;

  fn compute(&mut self) -> Result<Self::Output> {
    let rows = InfidelityRow::parse(&self.rows).map_err(js_error)?;
    // SAFETY: `out` is a batch buffer owned by `src/engine.ts`, which does not read or write it
    // until this task's promise settles; no other Rust code holds it.
    #[allow(unsafe_code)]
    let out = unsafe { self.out.as_mut() };
    let src = InfidelitySource {
      x: &self.x,
      a: &self.a,
      baselines: &self.baselines,
      shape: self.shape,
      attr_channels: self.attr_channels,
      first_sample: self.first_sample,
      seed: self.seed,
      sigma: self.sigma,
      max_side: self.max_side,
    };
    let mut dots = vec![0f64; rows.len()];
    guarded(|| infidelity::fill_rows(&src, &rows, out, &mut dots))?;
    Ok(dots)
  }

  fn resolve(&mut self, _env: Env, output: Self::Output) -> Result<Self::JsValue> {
    Ok(output.into())
  }
}

/// Writes Infidelity's rows (`(sample, kind, a, b)` quadruples, see `xai_eval_core::infidelity`)
/// into `out` and resolves to each row's `Iᵀa`.
#[napi(ts_return_type = "Promise<Float64Array>")]
#[allow(clippy::too_many_arguments)]
pub fn infidelity_rows(
  x: Float32Array,
  a: Float32Array,
  baselines: Float32Array,
  rows: Uint32Array,
  spec: InfidelitySpec,
  out: Float32Array,
  signal: Option<AbortSignal>,
) -> Result<AsyncTask<InfidelityTask>> {
  Ok(AsyncTask::with_optional_signal(
    InfidelityTask {
      x,
      a,
      baselines,
      rows,
      out,
      shape: convert::shape4(&spec.shape)?,
      attr_channels: convert::count("attrChannels", spec.attr_channels)?,
      first_sample: convert::index("firstSample", spec.first_sample)?,
      seed: convert::seed("seed", spec.seed)?,
      sigma: spec.sigma,
      max_side: convert::count("maxSide", spec.max_side)?,
    },
    signal,
  ))
}

#[napi(object)]
pub struct SufficiencyScores {
  pub scores: Float64Array,
  pub neighbours: Float64Array,
}

/// Sufficiency of `n` explanations `a` (`[n, features]`) with predicted classes `predicted`:
/// `batchSize` 0 compares the whole data set, otherwise Quantus's groups of `batchSize`.
/// Synchronous: it runs in a metric's reduce (`N²·F`).
#[napi]
#[allow(clippy::too_many_arguments)]
pub fn sufficiency_scores(
  a: Float64Array,
  n: f64,
  features: f64,
  predicted: Int32Array,
  threshold: f64,
  abs: bool,
  normalise: bool,
  batch_size: f64,
) -> Result<SufficiencyScores> {
  let n = convert::count("n", n)?;
  let features = convert::count("features", features)?;
  let batch_size = convert::count("batchSize", batch_size)?;
  let mode = if batch_size == 0 {
    Mode::DataSet
  } else {
    Mode::Quantus { batch_size }
  };
  let r = guarded(|| {
    sufficiency::sufficiency(
      &a,
      n,
      features,
      &predicted,
      Options {
        threshold,
        abs,
        normalise,
        mode,
      },
    )
  })?;
  Ok(SufficiencyScores {
    scores: r.scores.into(),
    neighbours: r.neighbours.into(),
  })
}
