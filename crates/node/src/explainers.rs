//! Built-in explainers' masks and rows, and the robustness metrics' noisy rows
//! (`explainers::*`): conversion only. Row filling runs off the JS thread into buffers JS owns.

use napi::bindgen_prelude::*;
use napi_derive::napi;
use xai_eval_core::explainers::{self, MaskSource, Noise};
use xai_eval_core::CoreError;

use crate::{convert, guarded, js_error};

/// Occlusion windows `[M, H·W]` (1 inside each `patch × patch` window, every `stride` pixels).
#[napi]
pub fn occlusion_masks(height: f64, width: f64, patch: f64, stride: f64) -> Result<Float32Array> {
  let (h, w) = (
    convert::count("height", height)?,
    convert::count("width", width)?,
  );
  let (p, s) = (
    convert::count("patch", patch)?,
    convert::count("stride", stride)?,
  );
  guarded(|| explainers::occlusion_masks(h, w, p, s)).map(Float32Array::from)
}

/// RISE masks `[count, H·W]`, mask i keyed by `(seed, i)`.
#[napi]
pub fn rise_masks(
  seed: f64,
  count: f64,
  cells: f64,
  p: f64,
  height: f64,
  width: f64,
) -> Result<Float32Array> {
  let seed = convert::seed("seed", seed)?;
  let count = convert::count("masks", count)?;
  let cells = convert::count("cell", cells)?;
  let (h, w) = (
    convert::count("height", height)?,
    convert::count("width", width)?,
  );
  guarded(|| explainers::rise_masks(seed, count, cells, p, h, w)).map(Float32Array::from)
}

#[napi(object)]
pub struct ShapleyMasks {
  /// `[perms·(groups + 1), H·W]` keep-masks.
  pub masks: Float32Array,
  /// `[perms, groups]` permutations.
  pub orders: Uint32Array,
}

/// Permutation-sampling Shapley keep-masks over the groups `labels` (`[H·W]`).
#[napi]
pub fn shapley_masks(
  seed: f64,
  perms: f64,
  labels: Uint32Array,
  groups: f64,
) -> Result<ShapleyMasks> {
  let seed = convert::seed("seed", seed)?;
  let perms = convert::count("permutations", perms)?;
  let groups = convert::count("groups", groups)?;
  let (masks, orders) = guarded(|| explainers::shapley_masks(seed, perms, &labels, groups))?;
  Ok(ShapleyMasks {
    masks: masks.into(),
    orders: orders.into(),
  })
}

pub struct FillMaskRowsTask {
  x: Float32Array,
  baselines: Float32Array,
  masks: Float32Array,
  pairs: Uint32Array,
  out: Float32Array,
  samples: usize,
  channels: usize,
  pixels: usize,
  keep: bool,
}

#[napi]
impl Task for FillMaskRowsTask {
  type Output = ();
  type JsValue = ();

  fn compute(&mut self) -> Result<Self::Output> {
    let src = MaskSource {
      x: &self.x,
      baselines: &self.baselines,
      samples: self.samples,
      channels: self.channels,
      pixels: self.pixels,
      masks: &self.masks,
      keep: self.keep,
    };
    // SAFETY: `out` is a batch buffer owned by `src/engine.ts`, which does not touch it until
    // this task's promise settles; no other Rust code holds it.
    #[allow(unsafe_code)]
    let out = unsafe { self.out.as_mut() };
    guarded(|| explainers::fill_mask_rows(&src, &self.pairs, out))
  }

  fn resolve(&mut self, _env: Env, _output: Self::Output) -> Result<Self::JsValue> {
    Ok(())
  }
}

/// Rows `(sample, mask)` (mask 2³² − 1: the clean input) as `x + w·(b − x)`, `w` the mask
/// (`keep = false`) or one minus it.
#[napi(ts_return_type = "Promise<void>")]
#[allow(clippy::too_many_arguments)]
pub fn fill_mask_rows(
  x: Float32Array,
  baselines: Float32Array,
  shape: Vec<f64>,
  masks: Float32Array,
  keep: bool,
  pairs: Uint32Array,
  out: Float32Array,
  signal: Option<AbortSignal>,
) -> Result<AsyncTask<FillMaskRowsTask>> {
  let [samples, channels, h, w] = convert::shape4(&shape)?;
  let task = FillMaskRowsTask {
    x,
    baselines,
    masks,
    pairs,
    out,
    samples,
    channels,
    pixels: h * w,
    keep,
  };
  Ok(AsyncTask::with_optional_signal(task, signal))
}

/// `Σ_m coef[s, m] · masks[m, ·]`: `[N, H·W]`.
#[napi]
pub fn mask_sums(
  coef: Float64Array,
  samples: f64,
  masks: Float32Array,
  pixels: f64,
) -> Result<Float64Array> {
  let samples = convert::count("samples", samples)?;
  let pixels = convert::count("pixels", pixels)?;
  guarded(|| explainers::mask_sums(&coef, samples, &masks, pixels)).map(Float64Array::from)
}

pub struct NoisyRowsTask {
  x: Float32Array,
  rows: Uint32Array,
  out: Float32Array,
  samples: usize,
  first_sample: u64,
  seed: u64,
  noise: Noise,
}

#[napi]
impl Task for NoisyRowsTask {
  type Output = ();
  type JsValue = ();

  fn compute(&mut self) -> Result<Self::Output> {
    // SAFETY: as in `FillMaskRowsTask`: JS does not touch `out` until the promise settles.
    #[allow(unsafe_code)]
    let out = unsafe { self.out.as_mut() };
    guarded(|| {
      explainers::noisy_rows(
        &self.x,
        self.samples,
        self.first_sample,
        self.seed,
        self.noise,
        &self.rows,
        out,
      )
    })
  }

  fn resolve(&mut self, _env: Env, _output: Self::Output) -> Result<Self::JsValue> {
    Ok(())
  }
}

/// Noisy copies of `x` (`samples` rows) for `(sample, draw)` pairs: `kind` `"gaussian"` (`a` = σ)
/// with mean `b`, or `"uniform"` (`[a, b]`), keyed by `(seed, firstSample + sample, draw)`.
#[napi(ts_return_type = "Promise<void>")]
#[allow(clippy::too_many_arguments)]
pub fn noisy_rows(
  x: Float32Array,
  samples: f64,
  first_sample: f64,
  seed: f64,
  kind: String,
  a: f64,
  b: f64,
  rows: Uint32Array,
  out: Float32Array,
  signal: Option<AbortSignal>,
) -> Result<AsyncTask<NoisyRowsTask>> {
  let noise = match kind.as_str() {
    "gaussian" => Noise::Gaussian { mean: b, sigma: a },
    "uniform" => Noise::Uniform { low: a, high: b },
    other => {
      return Err(js_error(CoreError::InvalidParam {
        name: "noise",
        reason: format!("unknown {other:?}"),
      }))
    }
  };
  let task = NoisyRowsTask {
    x,
    rows,
    out,
    samples: convert::count("samples", samples)?,
    first_sample: convert::index("firstSample", first_sample)?,
    seed: convert::seed("seed", seed)?,
    noise,
  };
  Ok(AsyncTask::with_optional_signal(task, signal))
}
