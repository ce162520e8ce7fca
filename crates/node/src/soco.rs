//! Soundness and completeness (TMLR 2024) over `xai_eval_core::soco`: mask generation off the
//! JS thread, and the mergeable statistics as classes. All logic lives in the core; the
//! protocol (map → reduce counts → decide → apply → merge) is described there.

use std::cell::RefCell;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use xai_eval_core::soco::{
  self, Completeness, CompletenessStats, Flag, Indicator, Mode, Soundness, SoundnessStats,
};
use xai_eval_core::CoreError;

use crate::{convert, guarded, js_error};

fn invalid(name: &'static str, reason: String) -> Error {
  js_error(CoreError::InvalidParam { name, reason })
}

fn parse_mode(mode: &str) -> Result<Mode> {
  match mode {
    "paper" => Ok(Mode::Paper),
    "soco" => Ok(Mode::Soco),
    other => Err(invalid(
      "mode",
      format!("expected \"paper\" or \"soco\", got {other:?}"),
    )),
  }
}

fn parse_indicator(indicator: &str) -> Result<Indicator> {
  match indicator {
    "accuracy" => Ok(Indicator::Accuracy),
    "score" => Ok(Indicator::Score),
    other => Err(invalid(
      "indicator",
      format!("expected \"accuracy\" or \"score\", got {other:?}"),
    )),
  }
}

/// Mask ratio (fraction of pixels imputed) of every soundness step.
#[napi]
pub fn soco_soundness_ratios(mode: String) -> Result<Float64Array> {
  Ok(
    Soundness {
      mode: parse_mode(&mode)?,
      seed: 0,
    }
    .ratios()
    .into(),
  )
}

/// Attribution threshold of every completeness step (0.9 … 0.1).
#[napi]
pub fn soco_completeness_thresholds(mode: String) -> Result<Float64Array> {
  Ok(
    Completeness {
      mode: parse_mode(&mode)?,
    }
    .thresholds()
    .into(),
  )
}

/// The authors' uint8 conversion of `[n, pixels]` maps (per-map min–max, × 255, truncate), for
/// `mode: "soco"`.
#[napi]
pub fn soco_quantize(maps: Float32Array, pixels: f64) -> Result<Float32Array> {
  let pixels = convert::count("pixels", pixels)?;
  guarded(|| soco::quantize_u8(&maps, pixels)).map(Float32Array::from)
}

#[napi(object)]
pub struct SocoSoundnessMasks {
  /// `[n, pixels]`, 1 = impute.
  pub masks: Uint8Array,
  /// `[n]`: attribution of the pixels included at this step.
  pub new_attr: Float64Array,
}

pub struct SoundnessMasksTask {
  maps: Float32Array,
  pixels: usize,
  first_sample: u64,
  step: usize,
  soundness: Soundness,
}

#[napi]
impl Task for SoundnessMasksTask {
  type Output = (Vec<u8>, Vec<f64>);
  type JsValue = SocoSoundnessMasks;

  fn compute(&mut self) -> Result<Self::Output> {
    let mut masks = vec![0u8; self.maps.len()];
    let mut new = vec![0f64; self.maps.len().checked_div(self.pixels).unwrap_or(0)];
    guarded(|| {
      self.soundness.masks(
        &self.maps,
        self.pixels,
        self.first_sample,
        self.step,
        &mut masks,
        &mut new,
      )
    })?;
    Ok((masks, new))
  }

  fn resolve(&mut self, _env: Env, (masks, new): Self::Output) -> Result<Self::JsValue> {
    Ok(SocoSoundnessMasks {
      masks: masks.into(),
      new_attr: new.into(),
    })
  }
}

/// Soundness masks of `[n, pixels]` maps at `step` (LeRF by area); sample `i` has global index
/// `firstSample + i`, which with `seed` orders tied values.
#[napi(ts_return_type = "Promise<SocoSoundnessMasks>")]
pub fn soco_soundness_masks(
  maps: Float32Array,
  pixels: f64,
  first_sample: f64,
  step: f64,
  mode: String,
  seed: Option<f64>,
  signal: Option<AbortSignal>,
) -> Result<AsyncTask<SoundnessMasksTask>> {
  let soundness = Soundness {
    mode: parse_mode(&mode)?,
    seed: convert::seed("seed", seed.unwrap_or(0.0))?,
  };
  let task = SoundnessMasksTask {
    maps,
    pixels: convert::count("pixels", pixels)?,
    first_sample: convert::index("firstSample", first_sample)?,
    step: convert::count("step", step)?,
    soundness,
  };
  Ok(AsyncTask::with_optional_signal(task, signal))
}

#[napi(object)]
pub struct SocoCompletenessMasks {
  /// `[n, pixels]`, 1 = impute.
  pub masks: Uint8Array,
  /// `[n]`: pixels imputed per map (0: the clean image, no forward pass needed).
  pub masked: Uint32Array,
}

pub struct CompletenessMasksTask {
  maps: Float32Array,
  pixels: usize,
  step: usize,
  completeness: Completeness,
}

#[napi]
impl Task for CompletenessMasksTask {
  type Output = (Vec<u8>, Vec<u32>);
  type JsValue = SocoCompletenessMasks;

  fn compute(&mut self) -> Result<Self::Output> {
    let mut masks = vec![0u8; self.maps.len()];
    let counts = guarded(|| {
      self
        .completeness
        .masks(&self.maps, self.pixels, self.step, &mut masks)
    })?;
    Ok((masks, counts))
  }

  fn resolve(&mut self, _env: Env, (masks, counts): Self::Output) -> Result<Self::JsValue> {
    Ok(SocoCompletenessMasks {
      masks: masks.into(),
      masked: counts.into(),
    })
  }
}

/// Completeness masks of `[n, pixels]` maps at `step` (MoRF by value).
#[napi(ts_return_type = "Promise<SocoCompletenessMasks>")]
pub fn soco_completeness_masks(
  maps: Float32Array,
  pixels: f64,
  step: f64,
  mode: String,
  signal: Option<AbortSignal>,
) -> Result<AsyncTask<CompletenessMasksTask>> {
  let completeness = Completeness {
    mode: parse_mode(&mode)?,
  };
  let task = CompletenessMasksTask {
    maps,
    pixels: convert::count("pixels", pixels)?,
    step: convert::count("step", step)?,
    completeness,
  };
  Ok(AsyncTask::with_optional_signal(task, signal))
}

/// `RefCell` instead of `&mut self`: `a.merge(a)` in JS would otherwise alias a `&mut` with a
/// `&`; here it is a typed error.
fn merge_cells<T>(
  into: &RefCell<T>,
  from: &RefCell<T>,
  merge: impl FnOnce(&mut T, &T) -> xai_eval_core::Result<()>,
) -> Result<()> {
  let from = from
    .try_borrow()
    .map_err(|_| invalid("other", "cannot merge statistics into themselves".into()))?;
  let mut into = into
    .try_borrow_mut()
    .map_err(|_| invalid("other", "cannot merge statistics into themselves".into()))?;
  guarded(|| merge(&mut into, &from))
}

#[napi(object)]
pub struct SocoDecisions {
  /// Data-set accuracy (or mean score) per step, up to the first step without values.
  pub indicator: Float64Array,
  /// Flag code per step: 0 none flagged, 1 all samples, 2 each sample by its own score gain.
  pub flags: Uint8Array,
}

#[napi(object)]
pub struct SocoApplied {
  /// `[samples, steps]`: each sample's soundness ratio per step (NaN where undefined).
  pub ratios: Float64Array,
  /// `[samples]`: attribution of each sample's false-attribution set after the last step.
  pub false_attr: Float64Array,
}

#[napi(object)]
pub struct SocoSoundnessCurve {
  pub ratios: Float64Array,
  /// Accuracy (or mean score) per step: the x of the paper's plot.
  pub indicator: Float64Array,
  /// Mean soundness ratio per step: the y.
  pub soundness: Float64Array,
  pub flags: Uint8Array,
  pub flagged: Float64Array,
  pub undefined: Float64Array,
  pub samples: f64,
}

/// Mergeable soundness statistics of one shard (or several merged).
#[napi]
pub struct SocoSoundnessStats {
  inner: RefCell<SoundnessStats>,
}

#[napi]
impl SocoSoundnessStats {
  /// `mode`: `"paper" | "soco"`; `indicator`: `"accuracy" | "score"`.
  #[napi(constructor)]
  pub fn new(mode: String, indicator: String) -> Result<Self> {
    let inner = SoundnessStats::new(parse_mode(&mode)?, parse_indicator(&indicator)?);
    Ok(SocoSoundnessStats {
      inner: RefCell::new(inner),
    })
  }

  #[napi(factory)]
  pub fn from_bytes(bytes: Uint8Array) -> Result<Self> {
    Ok(SocoSoundnessStats {
      inner: RefCell::new(guarded(|| SoundnessStats::from_bytes(&bytes))?),
    })
  }

  #[napi]
  pub fn to_bytes(&self) -> Uint8Array {
    self.inner.borrow().to_bytes().into()
  }

  #[napi(getter)]
  pub fn steps(&self) -> f64 {
    self.inner.borrow().steps() as f64
  }

  /// Map phase: one value per sample at `step` (correct 0/1, or true-class score).
  #[napi]
  pub fn add_values(&self, step: f64, values: Float64Array) -> Result<()> {
    let step = convert::count("step", step)?;
    guarded(|| self.inner.borrow_mut().add_values(step, &values))
  }

  #[napi]
  pub fn merge(&self, other: &SocoSoundnessStats) -> Result<()> {
    merge_cells(&self.inner, &other.inner, |a, b| a.merge(b))
  }

  /// Reduce phase, on the merged counts of all shards.
  #[napi]
  pub fn decisions(&self) -> Result<SocoDecisions> {
    let d = guarded(|| self.inner.borrow().decisions())?;
    Ok(SocoDecisions {
      indicator: d.iter().map(|d| d.indicator).collect::<Vec<_>>().into(),
      flags: d.iter().map(|d| d.flag.code()).collect::<Vec<_>>().into(),
    })
  }

  /// Apply phase: `flags` from `decisions()` (all steps); `values`, `newAttr` `[samples, steps]`.
  #[napi]
  pub fn apply(
    &self,
    flags: Uint8Array,
    values: Float64Array,
    new_attr: Float64Array,
  ) -> Result<SocoApplied> {
    let flags = flags
      .iter()
      .map(|&c| {
        Flag::from_code(c).ok_or_else(|| invalid("flags", format!("unknown flag code {c}")))
      })
      .collect::<Result<Vec<_>>>()?;
    let a = guarded(|| self.inner.borrow_mut().apply(&flags, &values, &new_attr))?;
    Ok(SocoApplied {
      ratios: a.ratios.into(),
      false_attr: a.false_attr.into(),
    })
  }

  /// The data-set curve, from the final merge of all shards.
  #[napi]
  pub fn curve(&self) -> Result<SocoSoundnessCurve> {
    let c = guarded(|| self.inner.borrow().curve())?;
    let counts = |v: Vec<u64>| v.into_iter().map(|x| x as f64).collect::<Vec<_>>().into();
    Ok(SocoSoundnessCurve {
      ratios: c.ratios.into(),
      indicator: c.indicator.into(),
      soundness: c.soundness.into(),
      flags: c.flags.iter().map(|f| f.code()).collect::<Vec<_>>().into(),
      flagged: counts(c.flagged),
      undefined: counts(c.undefined),
      samples: c.samples as f64,
    })
  }
}

#[napi(object)]
pub struct SocoCompletenessCurve {
  /// Attribution threshold per step: the x of the paper's plot.
  pub thresholds: Float64Array,
  pub clean: f64,
  pub indicator: Float64Array,
  /// Clean minus imputed accuracy (or mean score) per step: the y.
  pub difference: Float64Array,
  pub samples: f64,
}

/// Mergeable completeness statistics of one shard (or several merged).
#[napi]
pub struct SocoCompletenessStats {
  inner: RefCell<CompletenessStats>,
}

#[napi]
impl SocoCompletenessStats {
  /// `mode`: `"paper" | "soco"`; `indicator`: `"accuracy" | "score"`.
  #[napi(constructor)]
  pub fn new(mode: String, indicator: String) -> Result<Self> {
    let inner = CompletenessStats::new(parse_mode(&mode)?, parse_indicator(&indicator)?);
    Ok(SocoCompletenessStats {
      inner: RefCell::new(inner),
    })
  }

  #[napi(factory)]
  pub fn from_bytes(bytes: Uint8Array) -> Result<Self> {
    Ok(SocoCompletenessStats {
      inner: RefCell::new(guarded(|| CompletenessStats::from_bytes(&bytes))?),
    })
  }

  #[napi]
  pub fn to_bytes(&self) -> Uint8Array {
    self.inner.borrow().to_bytes().into()
  }

  /// One value per sample on the clean inputs (one forward pass per sample, for all steps).
  #[napi]
  pub fn add_clean(&self, values: Float64Array) -> Result<()> {
    guarded(|| self.inner.borrow_mut().add_clean(&values))
  }

  /// One value per sample on the inputs imputed at `step`.
  #[napi]
  pub fn add_values(&self, step: f64, values: Float64Array) -> Result<()> {
    let step = convert::count("step", step)?;
    guarded(|| self.inner.borrow_mut().add_values(step, &values))
  }

  #[napi]
  pub fn merge(&self, other: &SocoCompletenessStats) -> Result<()> {
    merge_cells(&self.inner, &other.inner, |a, b| a.merge(b))
  }

  #[napi]
  pub fn curve(&self) -> Result<SocoCompletenessCurve> {
    let c = guarded(|| self.inner.borrow().curve())?;
    Ok(SocoCompletenessCurve {
      thresholds: c.thresholds.into(),
      clean: c.clean,
      indicator: c.indicator.into(),
      difference: c.difference.into(),
      samples: c.samples as f64,
    })
  }
}
