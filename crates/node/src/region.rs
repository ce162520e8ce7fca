//! Region perturbation (`region::*`: patch grids, region orders, rows replacing whole regions)
//! and superpixels (`slic::slic_batch`): conversion only.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use xai_eval_core::region::{self, Reduce, RegionOrder, RegionSource, Regions};
use xai_eval_core::slic::{self, SlicParams};
use xai_eval_core::CoreError;

use crate::layout::LayoutSpec;
use crate::{convert, guarded, js_error, stop_flag};

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
  height: f64,
  width: f64,
  patch_size: f64,
  quantus_padding: bool,
) -> Result<PatchGridResult> {
  let (h, w) = (
    convert::count("height", height)?,
    convert::count("width", width)?,
  );
  let ps = convert::count("patchSize", patch_size)?;
  let g = guarded(|| region::patch_grid(h, w, ps, quantus_padding))?;
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
  layout: xai_eval_core::layout::Layout,
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
    let regions = Regions {
      labels: &self.labels,
      shared: self.shared,
    };
    guarded(|| {
      region::rank_regions(
        &self.a,
        self.samples,
        &self.layout,
        &regions,
        self.max_regions,
        self.reduce,
        self.abs,
        self.order,
      )
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

/// Region counts and orders of attributions `a` over region maps `labels` (`[H·W]` shared, or
/// `[n, H·W]`): `reduce` `"sum"` or `"mean"` of each region's attribution entries, `order`
/// `"morf"`, `"lerf"` or `"random"` (keyed by `seed` and the global index `firstSample + i`).
#[napi(ts_return_type = "Promise<RegionOrdersResult>")]
#[allow(clippy::too_many_arguments)]
pub fn region_orders(
  a: Float32Array,
  samples: f64,
  layout: LayoutSpec,
  labels: Uint32Array,
  shared: bool,
  reduce: String,
  abs: bool,
  order: String,
  seed: f64,
  first_sample: f64,
  max_regions: f64,
  signal: Option<AbortSignal>,
) -> Result<AsyncTask<RegionOrdersTask>> {
  let unknown = |name: &'static str, v: &str| {
    js_error(CoreError::InvalidParam {
      name,
      reason: format!("unknown {v:?}"),
    })
  };
  let reduce = match reduce.as_str() {
    "sum" => Reduce::Sum,
    "mean" => Reduce::Mean,
    other => return Err(unknown("reduce", other)),
  };
  let order = match order.as_str() {
    "morf" => RegionOrder::Morf,
    "lerf" => RegionOrder::Lerf,
    "random" => RegionOrder::Random {
      seed: convert::seed("seed", seed)?,
      first_sample: convert::index("firstSample", first_sample)?,
    },
    other => return Err(unknown("order", other)),
  };
  let task = RegionOrdersTask {
    a,
    samples: convert::count("samples", samples)?,
    layout: layout.parse()?,
    labels,
    shared,
    reduce,
    abs,
    order,
    max_regions: convert::count("maxRegions", max_regions)?,
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
  shape: Vec<f64>,
  labels: Uint32Array,
  shared: bool,
  orders: Uint32Array,
  width: f64,
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
    width: convert::count("width", width)?,
    shape: convert::shape4(&shape)?,
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
  /// Raised by the signal: images not yet segmented are skipped (`ABORTED`).
  stop: Arc<AtomicBool>,
}

#[napi]
impl Task for SlicTask {
  type Output = (Vec<u32>, Vec<u32>);
  type JsValue = SlicResult;

  fn compute(&mut self) -> Result<Self::Output> {
    guarded(|| slic::slic_batch_until(&self.x, self.shape, &self.params, &self.stop))
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
  shape: Vec<f64>,
  n_segments: f64,
  compactness: f64,
  max_iter: f64,
  min_size_factor: f64,
  max_size_factor: f64,
  signal: Option<AbortSignal>,
) -> Result<AsyncTask<SlicTask>> {
  let task = SlicTask {
    x,
    shape: convert::shape4(&shape)?,
    params: SlicParams {
      n_segments: convert::count("nSegments", n_segments)?,
      compactness,
      max_iter: convert::count("maxIter", max_iter)?,
      min_size_factor,
      max_size_factor,
    },
    stop: stop_flag(signal.as_ref()),
  };
  Ok(AsyncTask::with_optional_signal(task, signal))
}
