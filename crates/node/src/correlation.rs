//! Rows and statistics of FaithfulnessCorrelation, FaithfulnessEstimate, Monotonicity and
//! MonotonicityCorrelation (`xai_eval_core::faithfulness`), each an `AsyncTask` on the libuv pool.

use napi::bindgen_prelude::*;
use napi_derive::napi;
use xai_eval_core::correlation;
use xai_eval_core::faithfulness::{self, GroupFill, Groups};
use xai_eval_core::layout::Layout;

use crate::layout::LayoutSpec;
use crate::{convert, guarded, js_error};

pub(crate) type Job = Box<dyn FnOnce() -> xai_eval_core::Result<Vec<f64>> + Send>;

/// One core call off the JS thread, resolving to its `f64` results (empty for row builders).
pub struct CoreTask {
  job: Option<Job>,
}

#[napi]
impl Task for CoreTask {
  type Output = Vec<f64>;
  type JsValue = Float64Array;

  fn compute(&mut self) -> Result<Self::Output> {
    match self.job.take() {
      Some(job) => guarded(job),
      None => Ok(Vec::new()),
    }
  }

  fn resolve(&mut self, _env: Env, output: Self::Output) -> Result<Self::JsValue> {
    Ok(output.into())
  }
}

pub(crate) fn task(job: Job, signal: Option<AbortSignal>) -> AsyncTask<CoreTask> {
  AsyncTask::with_optional_signal(CoreTask { job: Some(job) }, signal)
}

/// Writes one row per `(sample, run)` pair into `out`: the input with its keyed random subset of
/// `subsetSize` entries replaced by the baseline snapshot.
#[napi(ts_return_type = "Promise<Float64Array>")]
#[allow(clippy::too_many_arguments)]
pub fn fill_subset_rows(
  x: Float32Array,
  baselines: Float32Array,
  samples: f64,
  row_len: f64,
  seed: f64,
  first_sample: f64,
  subset_size: f64,
  pairs: Uint32Array,
  mut out: Float32Array,
  signal: Option<AbortSignal>,
) -> Result<AsyncTask<CoreTask>> {
  let samples = convert::count("samples", samples)?;
  let row_len = convert::count("rowLen", row_len)?;
  let seed = convert::seed("seed", seed)?;
  let first_sample = convert::index("firstSample", first_sample)?;
  let subset_size = convert::count("subsetSize", subset_size)?;
  let job: Job = Box::new(move || {
    // SAFETY: `out` is a batch buffer owned by `src/engine.ts`, untouched until this task settles.
    #[allow(unsafe_code)]
    let out = unsafe { out.as_mut() };
    faithfulness::fill_subset_rows(
      &x,
      &baselines,
      samples,
      row_len,
      seed,
      first_sample,
      subset_size,
      &pairs,
      out,
    )
    .map(|()| Vec::new())
  });
  Ok(task(job, signal))
}

/// `[samples, runs]` attribution sums over the subsets of {@link fillSubsetRows}.
#[napi(ts_return_type = "Promise<Float64Array>")]
#[allow(clippy::too_many_arguments)]
pub fn subset_sums(
  a: Float32Array,
  samples: f64,
  layout: LayoutSpec,
  seed: f64,
  first_sample: f64,
  runs: f64,
  subset_size: f64,
  signal: Option<AbortSignal>,
) -> Result<AsyncTask<CoreTask>> {
  let layout = layout.parse()?;
  let samples = convert::count("samples", samples)?;
  let seed = convert::seed("seed", seed)?;
  let first_sample = convert::index("firstSample", first_sample)?;
  let runs = convert::count("runs", runs)?;
  let subset_size = convert::count("subsetSize", subset_size)?;
  let job: Job = Box::new(move || {
    faithfulness::subset_sums(&a, samples, &layout, seed, first_sample, runs, subset_size)
  });
  Ok(task(job, signal))
}

/// Non-cumulative groups of ranked features.
#[napi(object)]
pub struct GroupSpec {
  pub samples: f64,
  pub layout: LayoutSpec,
  /// Features per group.
  pub group_size: f64,
  /// Least relevant features first.
  pub ascending: bool,
  pub first_sample: f64,
}

/// How a group is filled: `{ kind: 'baseline' }` or
/// `{ kind: 'uniform', low, high, seed, reps }` (one keyed scalar per (sample, group, rep)).
#[napi(object)]
pub struct GroupFillSpec {
  pub kind: String,
  pub low: Option<f64>,
  pub high: Option<f64>,
  pub seed: Option<f64>,
  pub reps: Option<f64>,
}

fn parse_fill(f: &GroupFillSpec) -> Result<GroupFill> {
  match f.kind.as_str() {
    "baseline" => Ok(GroupFill::Baseline),
    "uniform" => Ok(GroupFill::Uniform {
      low: f.low.unwrap_or(0.0),
      high: f.high.unwrap_or(1.0),
      seed: convert::seed("fill.seed", f.seed.unwrap_or(0.0))?,
      reps: convert::index("fill.reps", f.reps.unwrap_or(1.0))?,
    }),
    other => Err(js_error(xai_eval_core::CoreError::InvalidParam {
      name: "fill",
      reason: format!("unknown kind {other:?}"),
    })),
  }
}

struct Owned {
  x: Float32Array,
  baselines: Float32Array,
  order: Uint32Array,
  samples: usize,
  layout: Layout,
  group_size: usize,
  ascending: bool,
  first_sample: u64,
}

impl Owned {
  fn new(
    x: Float32Array,
    baselines: Float32Array,
    order: Uint32Array,
    spec: &GroupSpec,
  ) -> Result<Self> {
    Ok(Owned {
      x,
      baselines,
      order,
      samples: convert::count("samples", spec.samples)?,
      layout: spec.layout.parse()?,
      group_size: convert::count("featuresInStep", spec.group_size)?,
      ascending: spec.ascending,
      first_sample: convert::index("firstSample", spec.first_sample)?,
    })
  }

  fn groups(&self) -> Groups<'_> {
    Groups {
      x: &self.x,
      baselines: &self.baselines,
      order: &self.order,
      samples: self.samples,
      layout: self.layout,
      group_size: self.group_size,
      ascending: self.ascending,
      first_sample: self.first_sample,
    }
  }
}

/// Writes one row per `(sample, group, rep)` triple into `out`: the input with that group of
/// ranked features (only) replaced as `fill` says.
#[napi(ts_return_type = "Promise<Float64Array>")]
#[allow(clippy::too_many_arguments)]
pub fn fill_group_rows(
  x: Float32Array,
  baselines: Float32Array,
  order: Uint32Array,
  spec: GroupSpec,
  fill: GroupFillSpec,
  triples: Uint32Array,
  mut out: Float32Array,
  signal: Option<AbortSignal>,
) -> Result<AsyncTask<CoreTask>> {
  let owned = Owned::new(x, baselines, order, &spec)?;
  let fill = parse_fill(&fill)?;
  let job: Job = Box::new(move || {
    // SAFETY: as in `fill_subset_rows`.
    #[allow(unsafe_code)]
    let out = unsafe { out.as_mut() };
    faithfulness::fill_group_rows(&owned.groups(), fill, &triples, out).map(|()| Vec::new())
  });
  Ok(task(job, signal))
}

/// `[samples, groups]` sums of the feature attributions (`|a|` with `abs`) over each group.
#[napi(ts_return_type = "Promise<Float64Array>")]
pub fn group_sums(
  a: Float32Array,
  order: Uint32Array,
  spec: GroupSpec,
  abs: bool,
  signal: Option<AbortSignal>,
) -> Result<AsyncTask<CoreTask>> {
  // The sums read only the orders.
  let owned = Owned::new(
    Float32Array::new(Vec::new()),
    Float32Array::new(Vec::new()),
    order,
    &spec,
  )?;
  let job: Job = Box::new(move || faithfulness::group_sums(&owned.groups(), &a, abs));
  Ok(task(job, signal))
}

/// Quantus 0.6.0's Monotonicity rows for a uniform baseline, one per `(sample, step)` pair.
#[napi(ts_return_type = "Promise<Float64Array>")]
#[allow(clippy::too_many_arguments)]
pub fn fill_quantus_monotonicity_rows(
  order: Uint32Array,
  spec: GroupSpec,
  low: f64,
  high: f64,
  seed: f64,
  pairs: Uint32Array,
  mut out: Float32Array,
  signal: Option<AbortSignal>,
) -> Result<AsyncTask<CoreTask>> {
  let seed = convert::seed("seed", seed)?;
  // Quantus's rows hold no input: they read only the orders.
  let owned = Owned::new(
    Float32Array::new(Vec::new()),
    Float32Array::new(Vec::new()),
    order,
    &spec,
  )?;
  let job: Job = Box::new(move || {
    // SAFETY: as in `fill_subset_rows`.
    #[allow(unsafe_code)]
    let out = unsafe { out.as_mut() };
    faithfulness::fill_quantus_monotonicity_rows(&owned.groups(), low, high, seed, &pairs, out)
      .map(|()| Vec::new())
  });
  Ok(task(job, signal))
}

/// Row-wise Pearson (`rank` false) or Spearman (`rank` true, average ranks) correlations of
/// `[n, k]` arrays: `n` values followed by `n` reason codes (0 defined, 1 fewer than two points,
/// 2 `a` constant, 3 `b` constant, 4 a non-finite value).
#[napi(ts_return_type = "Promise<Float64Array>")]
pub fn row_correlations(
  a: Float64Array,
  b: Float64Array,
  k: f64,
  rank: bool,
  signal: Option<AbortSignal>,
) -> Result<AsyncTask<CoreTask>> {
  let k = convert::count("k", k)?;
  let job: Job = Box::new(move || {
    let (mut values, reasons) = correlation::row_correlations(&a, &b, k, rank)?;
    values.extend(reasons.into_iter().map(f64::from));
    Ok(values)
  });
  Ok(task(job, signal))
}
