//! Infidelity's perturbed rows (an `AsyncTask` per model batch) and Sufficiency's data-set reduce.

use napi::bindgen_prelude::*;
use napi_derive::napi;
use xai_eval_core::infidelity::{self, InfidelityRow, InfidelitySource};
use xai_eval_core::sufficiency::{self, Mode, Options};
use xai_eval_core::CoreError;

use crate::{guarded, js_error};

/// What Infidelity's rows share besides the arrays.
#[napi(object)]
#[derive(Clone)]
pub struct InfidelitySpec {
  /// `[N, C, H, W]` of `x`.
  pub shape: Vec<u32>,
  /// 1 (broadcast) or `C`.
  pub attr_channels: u32,
  /// Global index of sample 0 (keys the random draws).
  pub first_sample: i64,
  pub seed: i64,
  pub sigma: f64,
  pub max_side: u32,
}

pub struct InfidelityTask {
  x: Float32Array,
  a: Float32Array,
  baselines: Float32Array,
  rows: Uint32Array,
  out: Float32Array,
  spec: InfidelitySpec,
  shape: [usize; 4],
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
      attr_channels: self.spec.attr_channels as usize,
      first_sample: self.spec.first_sample as u64,
      seed: self.spec.seed as u64,
      sigma: self.spec.sigma,
      max_side: self.spec.max_side as usize,
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
  let shape = match spec.shape.as_slice() {
    &[n, c, h, w] => [n as usize, c as usize, h as usize, w as usize],
    _ => {
      return Err(js_error(CoreError::ShapeMismatch {
        arg: "shape",
        expected: "[N, C, H, W]".into(),
        got: format!("{:?}", spec.shape),
      }))
    }
  };
  if spec.first_sample < 0 || spec.seed < 0 {
    return Err(js_error(CoreError::InvalidParam {
      name: "seed",
      reason: "seed and firstSample must be ≥ 0".into(),
    }));
  }
  Ok(AsyncTask::with_optional_signal(
    InfidelityTask {
      x,
      a,
      baselines,
      rows,
      out,
      spec,
      shape,
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
  n: u32,
  features: u32,
  predicted: Int32Array,
  threshold: f64,
  abs: bool,
  normalise: bool,
  batch_size: u32,
) -> Result<SufficiencyScores> {
  let mode = if batch_size == 0 {
    Mode::DataSet
  } else {
    Mode::Quantus {
      batch_size: batch_size as usize,
    }
  };
  let r = guarded(|| {
    sufficiency::sufficiency(
      &a,
      n as usize,
      features as usize,
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
