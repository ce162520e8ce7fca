//! Localisation statistics against object masks (`xai_eval_core::localisation`), off the JS thread.

use napi::bindgen_prelude::*;
use napi_derive::napi;
use xai_eval_core::localisation::{self, Shape, Stat, Transform};
use xai_eval_core::CoreError;

use crate::correlation::{task, CoreTask, Job};
use crate::{convert, js_error};

/// Which statistic: `kind` is `'pointing' | 'mass' | 'rank' | 'topk' | 'auc'`; `tolerance` and
/// `anyTie` for pointing, `k` for top-k.
#[napi(object)]
pub struct LocalisationSpec {
  pub kind: String,
  /// `[N, attrChannels, H, W]`.
  pub shape: Vec<f64>,
  /// `'identity' | 'abs' | 'positive'`.
  pub transform: String,
  pub tolerance: Option<f64>,
  pub any_tie: Option<bool>,
  pub k: Option<f64>,
}

fn invalid(name: &'static str, reason: String) -> Error {
  js_error(CoreError::InvalidParam { name, reason })
}

/// Per-sample statistics `[N, width]` of attributions against masks `[N, H, W]` (columns: see
/// `localisation::Stat`).
#[napi(ts_return_type = "Promise<Float64Array>")]
pub fn localisation_stats(
  a: Float32Array,
  masks: Uint8Array,
  spec: LocalisationSpec,
  signal: Option<AbortSignal>,
) -> Result<AsyncTask<CoreTask>> {
  let [samples, attr_channels, height, width] = convert::shape4(&spec.shape)?;
  let transform = match spec.transform.as_str() {
    "identity" => Transform::Identity,
    "abs" => Transform::Abs,
    "positive" => Transform::Positive,
    other => return Err(invalid("transform", format!("unknown transform '{other}'"))),
  };
  let stat = match spec.kind.as_str() {
    "pointing" => Stat::Pointing {
      tolerance: spec.tolerance.unwrap_or(0.0),
      any_tie: spec.any_tie.unwrap_or(false),
    },
    "mass" => Stat::Mass,
    "rank" => Stat::Rank,
    "topk" => Stat::TopK {
      k: convert::count("k", spec.k.unwrap_or(1.0))?,
    },
    "auc" => Stat::Auc,
    other => return Err(invalid("kind", format!("unknown statistic '{other}'"))),
  };
  let shape = Shape {
    samples,
    attr_channels,
    height,
    width,
  };
  let job: Job = Box::new(move || localisation::localisation(&a, &masks, shape, transform, stat));
  Ok(task(job, signal))
}
