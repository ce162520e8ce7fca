//! Feature rankings (`order::rank_batch`), off the JS thread.

use napi::bindgen_prelude::*;
use napi_derive::napi;
use xai_eval_core::layout::Layout;
use xai_eval_core::order;

use crate::layout::LayoutSpec;
use crate::{convert, guarded};

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
