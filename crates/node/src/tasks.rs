//! The long-running calls, each an `AsyncTask` on the libuv pool.

use napi::bindgen_prelude::*;
use napi_derive::napi;
use xai_eval_core::baseline::{self, Baseline};
use xai_eval_core::layout::Layout;
use xai_eval_core::mask::{self, RowSpec, Source};
use xai_eval_core::order;

use crate::{convert, guarded, BaselineSpec, LayoutSpec};

pub struct RankTask {
  a: Float32Array,
  samples: usize,
  layout: Layout,
  abs: bool,
}

#[napi]
impl Task for RankTask {
  type Output = Vec<u32>;
  type JsValue = Uint32Array;

  fn compute(&mut self) -> Result<Self::Output> {
    guarded(|| order::rank_batch(&self.a, self.samples, &self.layout, self.abs))
  }

  fn resolve(&mut self, _env: Env, output: Self::Output) -> Result<Self::JsValue> {
    Ok(output.into())
  }
}

/// Stable descending feature orders `[samples, F]` (ties to the lower index).
#[napi(ts_return_type = "Promise<Uint32Array>")]
pub fn rank_features(
  a: Float32Array,
  samples: f64,
  layout: LayoutSpec,
  abs: bool,
  signal: Option<AbortSignal>,
) -> Result<AsyncTask<RankTask>> {
  let layout = layout.parse()?;
  Ok(AsyncTask::with_optional_signal(
    RankTask {
      a,
      samples: convert::count("samples", samples)?,
      layout,
      abs,
    },
    signal,
  ))
}

pub struct BaselineTask {
  x: Float32Array,
  shape: [usize; 4],
  baseline: Baseline,
  first_sample: u64,
}

#[napi]
impl Task for BaselineTask {
  type Output = Vec<f32>;
  type JsValue = Float32Array;

  fn compute(&mut self) -> Result<Self::Output> {
    guarded(|| baseline::batch(&self.x, self.shape, &self.baseline, self.first_sample))
  }

  fn resolve(&mut self, _env: Env, output: Self::Output) -> Result<Self::JsValue> {
    Ok(output.into())
  }
}

/// Baseline snapshot of every sample of `x` (`[N, C, H, W]`), computed from the unperturbed input.
/// Sample `i` of `x` is sample `firstSample + i` of the whole data set (it keys random baselines).
#[napi(ts_return_type = "Promise<Float32Array>")]
pub fn compute_baselines(
  x: Float32Array,
  shape: Vec<f64>,
  baseline: BaselineSpec,
  first_sample: f64,
  signal: Option<AbortSignal>,
) -> Result<AsyncTask<BaselineTask>> {
  let task = BaselineTask {
    x,
    shape: convert::shape4(&shape)?,
    baseline: baseline.parse()?,
    first_sample: convert::index("firstSample", first_sample)?,
  };
  Ok(AsyncTask::with_optional_signal(task, signal))
}

pub struct FillRowsTask {
  x: Float32Array,
  baselines: Float32Array,
  order: Uint32Array,
  rows: Uint32Array,
  out: Float32Array,
  samples: usize,
  layout: Layout,
}

#[napi]
impl Task for FillRowsTask {
  type Output = ();
  type JsValue = ();

  fn compute(&mut self) -> Result<Self::Output> {
    let src = Source {
      x: &self.x,
      baselines: &self.baselines,
      order: &self.order,
      samples: self.samples,
      layout: self.layout,
    };
    let rows = RowSpec::parse(&self.rows).map_err(crate::js_error)?;
    // SAFETY: `out` is a batch buffer owned by `src/engine.ts`, which does not read or write it
    // until this task's promise settles; no other Rust code holds it.
    #[allow(unsafe_code)]
    let out = unsafe { self.out.as_mut() };
    guarded(|| mask::fill_rows(&src, &rows, out))
  }

  fn resolve(&mut self, _env: Env, _output: Self::Output) -> Result<Self::JsValue> {
    Ok(())
  }
}

/// Writes the perturbed rows described by `rows` (`(sample, count, flags)` triples) into `out`.
#[napi(ts_return_type = "Promise<void>")]
#[allow(clippy::too_many_arguments)]
pub fn fill_rows(
  x: Float32Array,
  baselines: Float32Array,
  order: Uint32Array,
  samples: f64,
  layout: LayoutSpec,
  rows: Uint32Array,
  out: Float32Array,
  signal: Option<AbortSignal>,
) -> Result<AsyncTask<FillRowsTask>> {
  let layout = layout.parse()?;
  let task = FillRowsTask {
    x,
    baselines,
    order,
    rows,
    out,
    samples: convert::count("samples", samples)?,
    layout,
  };
  Ok(AsyncTask::with_optional_signal(task, signal))
}
