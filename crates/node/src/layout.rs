//! The feature layout of a data set (`layout::Layout`) and the per-pixel attribution maps of
//! soundness and completeness (`maps::pixel_maps`): conversion only.

use napi::bindgen_prelude::*;
use napi_derive::napi;
use xai_eval_core::layout::{FeatureUnit, Layout};
use xai_eval_core::{maps, CoreError};

use crate::{convert, guarded, js_error};

/// Feature layout of a data set, mirrored from `layout::Layout`.
#[napi(object)]
#[derive(Clone)]
pub struct LayoutSpec {
  pub channels: f64,
  /// `H · W`.
  pub pixels: f64,
  /// 1 (broadcast over channels) or `channels`.
  pub attr_channels: f64,
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
      convert::count("layout.channels", self.channels)?,
      convert::count("layout.pixels", self.pixels)?,
      convert::count("layout.attrChannels", self.attr_channels)?,
      unit,
    )
    .map_err(js_error)
  }
}

/// Per-pixel attribution maps `[n, H·W]` of attributions `[n, C_a, H, W]`: the channel sum,
/// divided by each map's maximum (when positive) with `normalize`.
#[napi]
pub fn pixel_maps(
  a: Float32Array,
  samples: f64,
  layout: LayoutSpec,
  normalize: bool,
) -> Result<Float32Array> {
  let samples = convert::count("samples", samples)?;
  let layout = layout.parse()?;
  guarded(|| maps::pixel_maps(&a, samples, &layout, normalize)).map(Float32Array::from)
}
