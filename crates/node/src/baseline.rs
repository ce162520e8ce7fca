//! Baselines (`baseline::Baseline`): the spec from JS, and the snapshot of a data set's
//! baselines off the JS thread.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use xai_eval_core::baseline::{self, Baseline};
use xai_eval_core::CoreError;

use crate::{convert, guarded, js_error, stop_flag};

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
  /// An integer in `[0, 2^53)`; anything else is rejected, never truncated or wrapped.
  pub seed: Option<f64>,
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
        seed: convert::seed("baseline.seed", self.seed.unwrap_or(0.0))?,
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

pub struct BaselineTask {
  x: Float32Array,
  shape: [usize; 4],
  baseline: Baseline,
  first_sample: u64,
  /// Raised by the signal's abort: napi-rs can only cancel work that has not started, so a
  /// running blur polls this instead.
  stop: Arc<AtomicBool>,
}

#[napi]
impl Task for BaselineTask {
  type Output = Vec<f32>;
  type JsValue = Float32Array;

  fn compute(&mut self) -> Result<Self::Output> {
    guarded(|| {
      baseline::batch_until(
        &self.x,
        self.shape,
        &self.baseline,
        self.first_sample,
        &self.stop,
      )
    })
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
    stop: stop_flag(signal.as_ref()),
  };
  Ok(AsyncTask::with_optional_signal(task, signal))
}
