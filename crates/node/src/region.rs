//! Region perturbation (patches and superpixels): grids, orders, baselines keyed by the global
//! sample index, rows, and SLIC — see `xai_eval_core::{region, slic}`.

use napi::bindgen_prelude::*;
use napi_derive::napi;
use xai_eval_core::baseline::Baseline;
use xai_eval_core::error::expect_len;
use xai_eval_core::layout::Layout;
use xai_eval_core::region::{self, Reduce, RegionOrder, RegionSource, Regions};
use xai_eval_core::slic::{self, SlicParams};
use xai_eval_core::CoreError;

use crate::{guarded, js_error, BaselineSpec, LayoutSpec};

fn shape4(shape: &[u32]) -> Result<[usize; 4]> {
  match shape {
    [n, c, h, w] => Ok([*n as usize, *c as usize, *h as usize, *w as usize]),
    _ => Err(js_error(CoreError::InvalidParam {
      name: "shape",
      reason: "must be [N, C, H, W]".into(),
    })),
  }
}

#[napi(object)]
pub struct PatchGridResult {
  /// Patch of every pixel, `[H·W]`.
  pub labels: Uint32Array,
  pub rows: u32,
  pub cols: u32,
}

/// Non-overlapping `patchSize` patches over `H × W`: the paper's grid (smaller edge patches) or
/// Quantus's (on the padded image).
#[napi]
pub fn patch_grid(
  height: u32,
  width: u32,
  patch_size: u32,
  quantus_padding: bool,
) -> Result<PatchGridResult> {
  let g = guarded(|| {
    region::patch_grid(
      height as usize,
      width as usize,
      patch_size as usize,
      quantus_padding,
    )
  })?;
  Ok(PatchGridResult {
    rows: g.rows as u32,
    cols: g.cols as u32,
    labels: g.labels.into(),
  })
}

#[napi(object)]
pub struct RegionOrdersResult {
  /// `[n, width]` region ids, padded with 2³² − 1.
  pub orders: Uint32Array,
  /// `[n]` regions per sample.
  pub counts: Uint32Array,
  pub width: u32,
}

pub struct RegionOrdersTask {
  a: Float32Array,
  samples: usize,
  layout: Layout,
  labels: Uint32Array,
  shared: bool,
  reduce: Reduce,
  abs: bool,
  order: RegionOrder,
  max_regions: usize,
}

#[napi]
impl Task for RegionOrdersTask {
  type Output = (Vec<u32>, Vec<u32>);
  type JsValue = RegionOrdersResult;

  fn compute(&mut self) -> Result<Self::Output> {
    guarded(|| {
      let regions = Regions {
        labels: &self.labels,
        shared: self.shared,
      };
      let counts =
        region::region_counts(&regions, self.samples, self.layout.pixels, self.max_regions)?;
      let orders = region::region_orders(
        &self.a,
        self.samples,
        &self.layout,
        &regions,
        &counts,
        self.reduce,
        self.abs,
        self.order,
      )?;
      Ok((orders, counts))
    })
  }

  fn resolve(&mut self, _env: Env, (orders, counts): Self::Output) -> Result<Self::JsValue> {
    let width = counts.iter().copied().max().unwrap_or(0);
    Ok(RegionOrdersResult {
      orders: orders.into(),
      counts: counts.into(),
      width,
    })
  }
}

/// Region orders of attributions `a` over region maps `labels` (`[H·W]` shared, or `[n, H·W]`):
/// `reduce` `"sum"` or `"mean"` of each region's attribution entries, `order` `"morf"`, `"lerf"` or
/// `"random"` (keyed by `seed` and the global index `firstSample + i`).
#[napi(ts_return_type = "Promise<RegionOrdersResult>")]
#[allow(clippy::too_many_arguments)]
pub fn region_orders(
  a: Float32Array,
  samples: u32,
  layout: LayoutSpec,
  labels: Uint32Array,
  shared: bool,
  reduce: String,
  abs: bool,
  order: String,
  seed: i64,
  first_sample: i64,
  max_regions: u32,
  signal: Option<AbortSignal>,
) -> Result<AsyncTask<RegionOrdersTask>> {
  let reduce = match reduce.as_str() {
    "sum" => Reduce::Sum,
    "mean" => Reduce::Mean,
    other => {
      return Err(js_error(CoreError::InvalidParam {
        name: "reduce",
        reason: format!("unknown {other:?}"),
      }))
    }
  };
  let order = match order.as_str() {
    "morf" => RegionOrder::Morf,
    "lerf" => RegionOrder::Lerf,
    "random" => RegionOrder::Random {
      seed: seed as u64,
      first_sample: first_sample as u64,
    },
    other => {
      return Err(js_error(CoreError::InvalidParam {
        name: "order",
        reason: format!("unknown {other:?}"),
      }))
    }
  };
  let task = RegionOrdersTask {
    a,
    samples: samples as usize,
    layout: layout.parse()?,
    labels,
    shared,
    reduce,
    abs,
    order,
    max_regions: max_regions as usize,
  };
  Ok(AsyncTask::with_optional_signal(task, signal))
}

pub struct RegionBaselinesTask {
  x: Float32Array,
  shape: [usize; 4],
  baseline: Baseline,
  first_sample: u64,
}

#[napi]
impl Task for RegionBaselinesTask {
  type Output = Vec<f32>;
  type JsValue = Float32Array;

  fn compute(&mut self) -> Result<Self::Output> {
    guarded(|| {
      let [n, c, h, w] = self.shape;
      let row = c * h * w;
      expect_len("x", self.x.len(), n * row)?;
      xai_eval_core::error::check_finite("x", &self.x)?;
      self.baseline.validate()?;
      let mut out = vec![0f32; n * row];
      if row > 0 {
        for (i, (xs, os)) in self.x.chunks(row).zip(out.chunks_mut(row)).enumerate() {
          self
            .baseline
            .fill(xs, c, h, w, self.first_sample + i as u64, os);
        }
      }
      Ok(out)
    })
  }

  fn resolve(&mut self, _env: Env, output: Self::Output) -> Result<Self::JsValue> {
    Ok(output.into())
  }
}

/// Baseline snapshot of every sample of `x` from the unperturbed input; random baselines are keyed
/// by the global index `firstSample + i`, so a shard's rows never depend on its position.
#[napi(ts_return_type = "Promise<Float32Array>")]
pub fn region_baselines(
  x: Float32Array,
  shape: Vec<u32>,
  baseline: BaselineSpec,
  first_sample: i64,
  signal: Option<AbortSignal>,
) -> Result<AsyncTask<RegionBaselinesTask>> {
  let task = RegionBaselinesTask {
    x,
    shape: shape4(&shape)?,
    baseline: baseline.parse()?,
    first_sample: first_sample as u64,
  };
  Ok(AsyncTask::with_optional_signal(task, signal))
}

pub struct FillRegionRowsTask {
  x: Float32Array,
  baselines: Float32Array,
  labels: Uint32Array,
  shared: bool,
  orders: Uint32Array,
  width: usize,
  shape: [usize; 4],
  rows: Uint32Array,
  out: Float32Array,
}

#[napi]
impl Task for FillRegionRowsTask {
  type Output = ();
  type JsValue = ();

  fn compute(&mut self) -> Result<Self::Output> {
    let [n, c, h, w] = self.shape;
    let src = RegionSource {
      x: &self.x,
      baselines: &self.baselines,
      regions: Regions {
        labels: &self.labels,
        shared: self.shared,
      },
      orders: &self.orders,
      width: self.width,
      samples: n,
      channels: c,
      pixels: h * w,
    };
    // SAFETY: `out` is a batch buffer owned by `src/engine.ts`, which does not read or write it
    // until this task's promise settles; no other Rust code holds it.
    #[allow(unsafe_code)]
    let out = unsafe { self.out.as_mut() };
    guarded(|| region::fill_region_rows(&src, &self.rows, out))
  }

  fn resolve(&mut self, _env: Env, _output: Self::Output) -> Result<Self::JsValue> {
    Ok(())
  }
}

/// Writes rows `(sample, count)` (pairs in `rows`) into `out`: the first `count` regions of the
/// sample's order replaced by its baseline in every channel.
#[napi(ts_return_type = "Promise<void>")]
#[allow(clippy::too_many_arguments)]
pub fn fill_region_rows(
  x: Float32Array,
  baselines: Float32Array,
  shape: Vec<u32>,
  labels: Uint32Array,
  shared: bool,
  orders: Uint32Array,
  width: u32,
  rows: Uint32Array,
  out: Float32Array,
  signal: Option<AbortSignal>,
) -> Result<AsyncTask<FillRegionRowsTask>> {
  let task = FillRegionRowsTask {
    x,
    baselines,
    labels,
    shared,
    orders,
    width: width as usize,
    shape: shape4(&shape)?,
    rows,
    out,
  };
  Ok(AsyncTask::with_optional_signal(task, signal))
}

#[napi(object)]
pub struct SlicResult {
  /// `[n, H·W]` labels `0..K_n`.
  pub labels: Uint32Array,
  /// `[n]` segments per image.
  pub counts: Uint32Array,
}

pub struct SlicTask {
  x: Float32Array,
  shape: [usize; 4],
  params: SlicParams,
}

#[napi]
impl Task for SlicTask {
  type Output = (Vec<u32>, Vec<u32>);
  type JsValue = SlicResult;

  fn compute(&mut self) -> Result<Self::Output> {
    guarded(|| slic::slic_batch(&self.x, self.shape, &self.params))
  }

  fn resolve(&mut self, _env: Env, (labels, counts): Self::Output) -> Result<Self::JsValue> {
    Ok(SlicResult {
      labels: labels.into(),
      counts: counts.into(),
    })
  }
}

/// SLIC superpixels of every image of `x` (`[N, C, H, W]`), skimage's algorithm and defaults.
#[napi(ts_return_type = "Promise<SlicResult>")]
#[allow(clippy::too_many_arguments)]
pub fn slic_segments(
  x: Float32Array,
  shape: Vec<u32>,
  n_segments: u32,
  compactness: f64,
  max_iter: u32,
  min_size_factor: f64,
  max_size_factor: f64,
  signal: Option<AbortSignal>,
) -> Result<AsyncTask<SlicTask>> {
  let task = SlicTask {
    x,
    shape: shape4(&shape)?,
    params: SlicParams {
      n_segments: n_segments as usize,
      compactness,
      max_iter: max_iter as usize,
      min_size_factor,
      max_size_factor,
    },
  };
  Ok(AsyncTask::with_optional_signal(task, signal))
}
