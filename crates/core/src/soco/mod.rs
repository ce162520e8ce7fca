//! Soundness and completeness of attribution maps (Li, Zhang et al., "A Dual-Perspective Approach
//! to Evaluating Feature Attribution Methods", TMLR 2024, Algorithms 3 and 4): which pixels to
//! impute at each step, and the data-set bookkeeping around the model's answers. Imputation
//! ([`crate::impute`]) and forward passes happen outside this module.
//!
//! Two modes (see `shared/specs/soundness-completeness-road.md`, "the spec"):
//! * [`Mode::Paper`] follows Algorithms 3 and 4 as written;
//! * [`Mode::Soco`] reproduces what the authors' `soco` code does where it deviates from the
//!   paper. Every deviation is named where it is implemented, citing the spec section.
//!
//! # Map / reduce
//!
//! Every per-(sample, step) quantity is computed per sample; data-set quantities are reduced
//! from mergeable accumulators ([`SoundnessStats`], [`CompletenessStats`]) whose floating-point
//! sums are exact ([`ExactSum`]), so any sharding, batch size or merge order gives the same bits.
//!
//! Soundness, step `k`, sample `n` — the dependencies that fix the protocol:
//!
//! ```text
//! mask_k[n], new_k[n] ← map[n], ratio_k                    (LeRF by area: never the flags)
//! value_k[n]          ← model(impute(x[n], mask_k[n]))      correct (0/1) or true-class score
//! s_k                 ← mean_n value_k[n]                   global
//! flag_k              ← s_k, s_{k−1}                        global (Score: + each sample's own gain)
//! F_k[n]              ← F_{k−1}[n] + [flagged] · new_k[n]   false attribution, per sample
//! q_k[n]              ← kept_k[n], F_{k−1}[n] (soco) or F_k[n] (paper)
//! ```
//!
//! The set update at step `k` needs the data-set indicator `s_k`, but no mask ever needs a flag,
//! so all forward passes can run first, in any order and on any shard. Protocol:
//!
//! 1. **map** (every shard, every (sample, step)): [`Soundness::masks`] → impute → model →
//!    value; [`SoundnessStats::add_values`]; keep `(value, new)` per (sample, step).
//! 2. **reduce** the counts (merge the shards' stats) → [`SoundnessStats::decisions`], a cheap
//!    sequential fold over steps → broadcast one [`Flag`] per step.
//! 3. **apply** (every shard): [`SoundnessStats::apply`] turns each sample's `(value, new)` and
//!    the flags into its ratio curve and folds the ratios into that shard's stats.
//! 4. **reduce**: merge all shards' stats → [`SoundnessStats::curve`].
//!
//! The round-by-round form (map step `k` → reduce its [`StepCounts`] → [`decide`] flag `k` →
//! [`SampleState::advance`]) is the same computation with one barrier per step; `decide` and
//! `SampleState` are its primitives and `apply` is built from them.
//!
//! Completeness has no cross-sample dependency: one clean forward pass per sample
//! ([`CompletenessStats::add_clean`], shared by all thresholds) and one per threshold.

mod completeness;
mod exact;
mod flags;
mod soundness;
mod soundness_stats;

pub use completeness::{Completeness, CompletenessCurve, CompletenessStats};
pub use exact::ExactSum;
pub use flags::{decide, Flag, SampleState, StepDecision};
pub use soundness::Soundness;
pub use soundness_stats::{Applied, SoundnessCurve, SoundnessStats};

use crate::error::{check_finite, CoreError, Result};

/// Accuracy gain below which newly included features count as false attribution (ε, §4.2 and
/// App. E of the paper; `cls_threshold` in soco).
pub const EPS: f64 = 0.01;
/// soco skips every set update while the data-set indicator is `<=` this (`cls_result_start`,
/// spec §2 fact 5). Not in the paper.
pub const SOCO_START: f64 = 0.04;
/// soco's guard against division by zero, in accuracy (`n / (N + 1e-6)`, spec §1) and in the
/// soundness ratio (`/(R + 1e-6)`, spec §2).
pub const SOCO_TINY: f64 = 1e-6;

/// Which algorithm text to follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
  /// Algorithms 3 and 4 of the paper.
  Paper,
  /// The authors' `soco` code (`vision_soundness.py`, `vision_completeness.py`).
  Soco,
}

/// What the model's answer for one sample is measured by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Indicator {
  /// Whether the prediction is correct (value 0 or 1); the data-set indicator is accuracy.
  Accuracy,
  /// The true-class score (soco's `PredScore`: the raw logit); the data-set indicator is its
  /// mean, and soundness flags each sample by its own score gain (spec §2 fact 8).
  Score,
}

impl Mode {
  fn code(self) -> u8 {
    match self {
      Mode::Paper => 0,
      Mode::Soco => 1,
    }
  }
  fn from_code(c: u8) -> Option<Mode> {
    [Mode::Paper, Mode::Soco]
      .into_iter()
      .find(|m| m.code() == c)
  }
}

impl Indicator {
  fn code(self) -> u8 {
    match self {
      Indicator::Accuracy => 0,
      Indicator::Score => 1,
    }
  }
  fn from_code(c: u8) -> Option<Indicator> {
    [Indicator::Accuracy, Indicator::Score]
      .into_iter()
      .find(|m| m.code() == c)
  }
}

/// Sufficient statistics of the model's answers at one step, over any subset of samples.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StepCounts {
  samples: u64,
  /// Correct predictions (accuracy indicator).
  hits: u64,
  /// Sum of scores (score indicator).
  score: ExactSum,
}

impl StepCounts {
  /// Adds one value per sample; nothing is added unless every value is valid.
  ///
  /// # Errors
  /// `NON_FINITE` (arg `values`) for NaN/Inf; `INVALID_OPTION` (arg `values`) for an accuracy
  /// value other than 0 or 1.
  pub fn add_values(&mut self, indicator: Indicator, values: &[f64]) -> Result<()> {
    check_values(indicator, values)?;
    self.samples += values.len() as u64;
    match indicator {
      Indicator::Accuracy => self.hits += values.iter().filter(|&&v| v == 1.0).count() as u64,
      Indicator::Score => values.iter().for_each(|&v| self.score.add(v)),
    }
    Ok(())
  }

  pub fn merge(&mut self, other: &StepCounts) {
    self.samples += other.samples;
    self.hits += other.hits;
    self.score.merge(&other.score);
  }

  pub fn samples(&self) -> u64 {
    self.samples
  }

  /// Correct predictions counted so far (accuracy indicator).
  pub fn hits(&self) -> u64 {
    self.hits
  }

  /// The data-set indicator: accuracy (`hits / N`; soco: `hits / (N + 1e-6)`, spec §1) or the
  /// mean score (exact sum, rounded once, divided by `N`).
  ///
  /// # Errors
  /// `EMPTY_INPUT` (arg `values`) when no sample was added.
  pub fn value(&self, mode: Mode, indicator: Indicator) -> Result<f64> {
    if self.samples == 0 {
      return Err(CoreError::EmptyInput { arg: "values" });
    }
    let n = self.samples as f64;
    Ok(match (indicator, mode) {
      (Indicator::Accuracy, Mode::Paper) => self.hits as f64 / n,
      (Indicator::Accuracy, Mode::Soco) => self.hits as f64 / (n + SOCO_TINY),
      (Indicator::Score, _) => self.score.value() / n,
    })
  }

  fn write(&self, out: &mut Vec<u8>) {
    out.extend(self.samples.to_le_bytes());
    out.extend(self.hits.to_le_bytes());
    out.extend(self.score.to_le_bytes());
  }

  fn read(r: &mut Reader) -> Result<StepCounts> {
    Ok(StepCounts {
      samples: r.u64()?,
      hits: r.u64()?,
      score: r.exact()?,
    })
  }
}

fn check_values(indicator: Indicator, values: &[f64]) -> Result<()> {
  if let Some(index) = values.iter().position(|v| !v.is_finite()) {
    return Err(CoreError::NonFinite {
      arg: "values",
      index,
    });
  }
  if indicator == Indicator::Accuracy {
    if let Some(i) = values.iter().position(|&v| v != 0.0 && v != 1.0) {
      return Err(CoreError::param(
        "values",
        format!(
          "accuracy values must be 0 or 1 (correct); got {} at index {i}",
          values[i]
        ),
      ));
    }
  }
  Ok(())
}

/// Number of maps of `pixels` values each in `maps`.
fn map_count(maps: &[f32], pixels: usize) -> Result<usize> {
  if pixels == 0 {
    return Err(CoreError::EmptyInput { arg: "pixels" });
  }
  if !maps.len().is_multiple_of(pixels) {
    return Err(CoreError::shape(
      "maps",
      format!("a multiple of {pixels} (H·W) values"),
      maps.len(),
    ));
  }
  check_finite("maps", maps)?;
  Ok(maps.len() / pixels)
}

/// soco reads attribution maps as uint8 PNGs (spec §1); in soco mode a map must hold integers
/// 0..=255 (see [`quantize_u8`]) so that thresholds and ties behave as on the authors' data.
fn check_u8_maps(maps: &[f32]) -> Result<()> {
  match maps
    .iter()
    .position(|&v| !(0.0..=255.0).contains(&v) || v.fract() != 0.0)
  {
    Some(i) => Err(CoreError::param(
      "maps",
      format!(
        "soco mode takes uint8 maps (integers 0..=255, see quantize); got {} at flat index {i}",
        maps[i]
      ),
    )),
    None => Ok(()),
  }
}

/// The authors' conversion of a per-pixel map to uint8 (spec §1,
/// `tools/get_ig_ds_gb_smaps.py`): per map min–max to [0, 1] in f32, clamp, `× 255`, truncate.
/// A constant map becomes all zeros (the reference divides 0 by 0 there). The channel reduction
/// before it (`mean |attr|`) and the resizing after it are the caller's.
///
/// # Errors
/// As for the mask functions: `EMPTY_INPUT` (`pixels`), `SHAPE_MISMATCH`, `NON_FINITE` (`maps`).
pub fn quantize_u8(maps: &[f32], pixels: usize) -> Result<Vec<f32>> {
  map_count(maps, pixels)?;
  let mut out = vec![0f32; maps.len()];
  for (map, q) in maps.chunks_exact(pixels).zip(out.chunks_exact_mut(pixels)) {
    let min = map.iter().copied().fold(f32::INFINITY, f32::min);
    let max = map.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if max > min {
      for (q, &v) in q.iter_mut().zip(map) {
        let x = ((v - min) / (max - min)).clamp(0.0, 1.0);
        *q = f32::from((x * 255.0) as u8);
      }
    }
  }
  Ok(out)
}

/// Header of serialized statistics: magic, version, metric, mode, indicator, steps.
const MAGIC: &[u8; 4] = b"XSOC";
const VERSION: u8 = 1;

fn write_header(out: &mut Vec<u8>, metric: u8, mode: Mode, indicator: Indicator, steps: usize) {
  out.extend(MAGIC);
  out.extend([VERSION, metric, mode.code(), indicator.code()]);
  out.extend((steps as u32).to_le_bytes());
}

fn bad_bytes(reason: impl Into<String>) -> CoreError {
  CoreError::param("bytes", reason)
}

/// Cursor over serialized statistics; every short read is an `INVALID_OPTION` on `bytes`.
struct Reader<'a> {
  bytes: &'a [u8],
}

impl<'a> Reader<'a> {
  /// Checks the header and returns `(mode, indicator, steps)`.
  fn open(bytes: &'a [u8], metric: u8) -> Result<(Reader<'a>, Mode, Indicator, usize)> {
    let mut r = Reader { bytes };
    if r.take(4)? != MAGIC {
      return Err(bad_bytes("not serialized soco statistics"));
    }
    let h = r.take(4)?;
    if h[0] != VERSION || h[1] != metric {
      return Err(bad_bytes(format!(
        "unsupported version {} or metric {}",
        h[0], h[1]
      )));
    }
    let mode = Mode::from_code(h[2]).ok_or_else(|| bad_bytes("unknown mode"))?;
    let indicator = Indicator::from_code(h[3]).ok_or_else(|| bad_bytes("unknown indicator"))?;
    let steps = r.u32()? as usize;
    Ok((r, mode, indicator, steps))
  }

  fn take(&mut self, n: usize) -> Result<&'a [u8]> {
    if self.bytes.len() < n {
      return Err(bad_bytes("truncated"));
    }
    let (head, rest) = self.bytes.split_at(n);
    self.bytes = rest;
    Ok(head)
  }

  fn u8(&mut self) -> Result<u8> {
    Ok(self.take(1)?[0])
  }

  fn u32(&mut self) -> Result<u32> {
    let b = self.take(4)?;
    Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
  }

  fn u64(&mut self) -> Result<u64> {
    let mut a = [0u8; 8];
    a.copy_from_slice(self.take(8)?);
    Ok(u64::from_le_bytes(a))
  }

  fn exact(&mut self) -> Result<ExactSum> {
    ExactSum::from_le_bytes(self.take(ExactSum::BYTES)?).ok_or_else(|| bad_bytes("truncated"))
  }

  fn finish(&self) -> Result<()> {
    if self.bytes.is_empty() {
      Ok(())
    } else {
      Err(bad_bytes(format!("{} trailing bytes", self.bytes.len())))
    }
  }
}

#[cfg(test)]
mod tests;
