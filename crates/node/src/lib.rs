//! N-API glue over `xai-eval-core`. Each export converts typed arrays to slices, calls one core
//! function and maps its error; long calls are `AsyncTask`s that run on the libuv pool, so the JS
//! thread never waits on them. Errors cross as `"CODE|arg|message"`, parsed by `src/native.ts`.

#![deny(clippy::unwrap_used)]

pub mod impute;
pub mod region;
pub mod soco;
mod tasks;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use xai_eval_core::baseline::Baseline;
use xai_eval_core::layout::{FeatureUnit, Layout};
use xai_eval_core::{curve, stats, CoreError};

pub use tasks::*;

/// Maps a core error to a JS error whose message starts with its stable code and argument.
pub(crate) fn js_error(e: CoreError) -> Error {
  Error::new(
    Status::InvalidArg,
    format!("{}|{}|{}", e.code(), e.arg(), e),
  )
}

/// Runs `f`, turning a panic into an `INTERNAL` error instead of aborting the process.
pub(crate) fn guarded<T>(f: impl FnOnce() -> xai_eval_core::Result<T>) -> Result<T> {
  match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
    Ok(result) => result.map_err(js_error),
    Err(_) => Err(Error::new(
      Status::GenericFailure,
      "INTERNAL|core|a Rust panic was caught".to_owned(),
    )),
  }
}

/// Feature layout of a data set, mirrored from `layout::Layout`.
#[napi(object)]
#[derive(Clone)]
pub struct LayoutSpec {
  pub channels: u32,
  /// `H · W`.
  pub pixels: u32,
  /// 1 (broadcast over channels) or `channels`.
  pub attr_channels: u32,
  /// `"entry"` or `"pixel"`.
  pub unit: String,
}

impl LayoutSpec {
  pub(crate) fn parse(&self) -> Result<Layout> {
    let unit = match self.unit.as_str() {
      "entry" => FeatureUnit::Entry,
      "pixel" => FeatureUnit::Pixel,
      other => {
        return Err(js_error(CoreError::InvalidParam {
          name: "unit",
          reason: format!("unknown unit {other:?}"),
        }))
      }
    };
    Layout::new(
      self.channels as usize,
      self.pixels as usize,
      self.attr_channels as usize,
      unit,
    )
    .map_err(js_error)
  }
}

/// A baseline, mirrored from `baseline::Baseline`.
#[napi(object)]
#[derive(Clone)]
pub struct BaselineSpec {
  /// `"constant" | "min" | "max" | "mean" | "channelMean" | "blur" | "uniform"`.
  pub kind: String,
  pub value: Option<f64>,
  pub sigma: Option<f64>,
  pub low: Option<f64>,
  pub high: Option<f64>,
  pub seed: Option<i64>,
}

impl BaselineSpec {
  pub(crate) fn parse(&self) -> Result<Baseline> {
    let need = |v: Option<f64>, name: &'static str| {
      v.map(|v| v as f32).ok_or_else(|| {
        js_error(CoreError::InvalidParam {
          name,
          reason: "is required".into(),
        })
      })
    };
    Ok(match self.kind.as_str() {
      "constant" => Baseline::Constant(need(self.value, "baseline.value")?),
      "min" => Baseline::Min,
      "max" => Baseline::Max,
      "mean" => Baseline::Mean,
      "channelMean" => Baseline::ChannelMean,
      "blur" => Baseline::Blur {
        sigma: need(self.sigma, "baseline.sigma")?,
      },
      "uniform" => Baseline::Uniform {
        low: need(self.low, "baseline.low")?,
        high: need(self.high, "baseline.high")?,
        seed: self.seed.unwrap_or(0) as u64,
      },
      other => {
        return Err(js_error(CoreError::InvalidParam {
          name: "baseline",
          reason: format!("unknown kind {other:?}"),
        }))
      }
    })
  }
}

#[napi(object)]
pub struct RowScores {
  pub scores: Float64Array,
  pub argmax: Int32Array,
}

/// Target-class score of every output row (softmax optional) and each row's argmax.
#[napi]
pub fn score_rows(
  output: Float32Array,
  classes: u32,
  targets: Int32Array,
  softmax: bool,
) -> Result<RowScores> {
  let mut scores = vec![0f64; targets.len()];
  let mut argmax = vec![0i32; targets.len()];
  guarded(|| {
    curve::score_rows(
      &output,
      classes as usize,
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
pub fn areas(curves: Float64Array, x: Float64Array, k: u32) -> Result<Float64Array> {
  guarded(|| curve::areas(&curves, &x, k as usize)).map(Float64Array::from)
}

/// Per-pixel attribution maps `[n, H·W]` of attributions `[n, C_a, H, W]`: the channel sum,
/// divided by each map's maximum (when positive) with `normalize`.
#[napi]
pub fn pixel_maps(
  a: Float32Array,
  samples: u32,
  layout: LayoutSpec,
  normalize: bool,
) -> Result<Float32Array> {
  let layout = Layout {
    unit: FeatureUnit::Pixel,
    ..layout.parse()?
  };
  guarded(|| {
    xai_eval_core::error::expect_len("a", a.len(), samples as usize * layout.attr_len())?;
    let mut maps = vec![0f32; samples as usize * layout.pixels];
    for (src, dst) in a
      .chunks_exact(layout.attr_len())
      .zip(maps.chunks_exact_mut(layout.pixels))
    {
      layout.feature_scores(src, dst);
      let max = dst.iter().copied().fold(f32::NEG_INFINITY, f32::max);
      if normalize && max > 0.0 {
        dst.iter_mut().for_each(|v| *v /= max);
      }
    }
    Ok(maps)
  })
  .map(Float32Array::from)
}

#[napi(object)]
pub struct Summary {
  pub mean: f64,
  pub std: f64,
  pub skipped: u32,
}

/// Mean and population std of the finite values, and how many non-finite ones were skipped.
#[napi]
pub fn summarize(values: Float64Array) -> Summary {
  let (mean, std, skipped) = stats::mean_std_skipnan(&values);
  Summary {
    mean,
    std,
    skipped: skipped as u32,
  }
}
