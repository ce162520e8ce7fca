//! The imputed rows of ROAD, soundness and completeness (ROAD's noisy linear imputer, or a
//! constant for tabular data). `impute.noisyLinear*` in TypeScript run through `imputeMasked`.

use napi::bindgen_prelude::*;
use napi_derive::napi;
use xai_eval_core::impute::NoiseKey;
use xai_eval_core::imputed::{self, Fill};
use xai_eval_core::mask::RowSpec;

use crate::{convert, guarded};

pub struct ImputeRowsTask {
  x: Float32Array,
  shape: [usize; 4],
  order: Uint32Array,
  rows: Uint32Array,
  noise: f32,
  seed: u64,
  first_sample: u64,
  out: Float32Array,
}

#[napi]
impl Task for ImputeRowsTask {
  type Output = ();
  type JsValue = ();

  fn compute(&mut self) -> Result<Self::Output> {
    // SAFETY: as for `fillRows`: `out` belongs to `src/engine.ts`, untouched until this settles.
    #[allow(unsafe_code)]
    let out = unsafe { self.out.as_mut() };
    guarded(|| {
      let rows = RowSpec::parse(&self.rows)?;
      imputed::impute_ranked_rows(
        &self.x,
        self.shape,
        &self.order,
        &rows,
        self.noise,
        self.seed,
        self.first_sample,
        out,
      )
    })
  }

  fn resolve(&mut self, _env: Env, _output: Self::Output) -> Result<Self::JsValue> {
    Ok(())
  }
}

/// Writes the rows `(sample, count, flags)` into `out`: the sample with its `count` top-ranked
/// pixels (bottom-ranked with flag 1) in `order` (`[N, H·W]`) imputed. Sample `i` of `x` is
/// sample `firstSample + i` of the whole data set; a row's noise is keyed by that global index and
/// the row itself, so results do not depend on batching or sharding.
#[napi(ts_return_type = "Promise<void>")]
#[allow(clippy::too_many_arguments)]
pub fn impute_rows(
  x: Float32Array,
  shape: Vec<f64>,
  order: Uint32Array,
  rows: Uint32Array,
  noise: f64,
  seed: f64,
  first_sample: f64,
  out: Float32Array,
  signal: Option<AbortSignal>,
) -> Result<AsyncTask<ImputeRowsTask>> {
  let task = ImputeRowsTask {
    x,
    shape: convert::shape4(&shape)?,
    order,
    rows,
    noise: noise as f32,
    seed: convert::seed("seed", seed)?,
    first_sample: convert::index("firstSample", first_sample)?,
    out,
  };
  Ok(AsyncTask::with_optional_signal(task, signal))
}

pub struct ImputeMaskedTask {
  x: Float32Array,
  shape: [usize; 4],
  samples: Uint32Array,
  ids: Uint32Array,
  keys: Uint32Array,
  masks: Uint8Array,
  fill: Fill,
  seed: u64,
  out: Float32Array,
}

#[napi]
impl Task for ImputeMaskedTask {
  type Output = ();
  type JsValue = ();

  fn compute(&mut self) -> Result<Self::Output> {
    // SAFETY: as for `fillRows`: `out` belongs to `src/engine.ts`, untouched until this settles.
    #[allow(unsafe_code)]
    let out = unsafe { self.out.as_mut() };
    guarded(|| {
      xai_eval_core::error::expect_len("ids", self.ids.len(), self.samples.len())?;
      xai_eval_core::error::expect_len("keys", self.keys.len(), self.samples.len())?;
      let keys: Vec<NoiseKey> = self
        .ids
        .iter()
        .zip(self.keys.iter())
        .map(|(&id, &k)| NoiseKey::new(u64::from(id), u64::from(k)))
        .collect();
      imputed::impute_rows(
        &self.x,
        self.shape,
        &self.samples,
        &self.masks,
        self.fill,
        self.seed,
        &keys,
        out,
      )
    })
  }

  fn resolve(&mut self, _env: Env, _output: Self::Output) -> Result<Self::JsValue> {
    Ok(())
  }
}

/// Writes row `i` = sample `samples[i]` of `x` (`[N, C, H, W]`) imputed under `masks[i]` into
/// `out`. The noise of a row is keyed by `(ids[i], keys[i])` — the sample's global index and,
/// e.g., the step — never by its position in a batch or shard. With `constant`, masked pixels take that
/// value instead of being imputed (tabular data).
#[napi(ts_return_type = "Promise<void>")]
#[allow(clippy::too_many_arguments)]
pub fn impute_masked(
  x: Float32Array,
  shape: Vec<f64>,
  samples: Uint32Array,
  ids: Uint32Array,
  keys: Uint32Array,
  masks: Uint8Array,
  noise: f64,
  seed: f64,
  out: Float32Array,
  constant: Option<f64>,
  signal: Option<AbortSignal>,
) -> Result<AsyncTask<ImputeMaskedTask>> {
  let fill = match constant {
    Some(value) => Fill::Constant(value as f32),
    None => Fill::NoisyLinear {
      noise: noise as f32,
    },
  };
  let task = ImputeMaskedTask {
    x,
    shape: convert::shape4(&shape)?,
    samples,
    ids,
    keys,
    masks,
    fill,
    seed: convert::seed("seed", seed)?,
    out,
  };
  Ok(AsyncTask::with_optional_signal(task, signal))
}
