//! Completeness (Algorithm 4): MoRF masks by value, and the (threshold, indicator difference)
//! curve. No cross-sample dependency: every sample contributes one clean answer and one answer
//! per threshold, reduced by plain counting.

use super::{check_u8_maps, map_count, write_header, Indicator, Mode, Reader, StepCounts};
use crate::error::{expect_len, CoreError, Result};

const METRIC: u8 = 2;
const STEPS: usize = 9;

/// Schedule and masks of the completeness metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Completeness {
  pub mode: Mode,
}

fn check_step(step: usize) -> Result<()> {
  if step < STEPS {
    Ok(())
  } else {
    Err(CoreError::param(
      "step",
      format!("must be < {STEPS} steps, got {step}"),
    ))
  }
}

impl Completeness {
  pub fn steps(&self) -> usize {
    STEPS
  }

  /// Attribution threshold `t` at `step`: T = {0.9, 0.8, …, 0.1} (Alg. 4). soco iterates mask
  /// ratios r = 0.1 … 0.9 and uses t = 1 − r (spec §3): the same order; these are the nominal t.
  pub fn threshold(&self, step: usize) -> f64 {
    (9 - step as i64) as f64 / 10.0
  }

  pub fn thresholds(&self) -> Vec<f64> {
    (0..STEPS).map(|k| self.threshold(k)).collect()
  }

  /// Writes into `masks` (`[n, pixels]`, 1 = impute) the pixels imputed at `step` and returns
  /// how many each map has (0: the imputed image is the clean one).
  ///
  /// * Paper: `a > t` ("perturb pixels whose attribution exceed t", Alg. 2 line 3 and Alg. 4
  ///   line 8; App. F's "[t, 1]" would read `>=`). Maps are meant to lie in [0, 1]; since every
  ///   t lies in (0, 1), values outside behave as if clamped.
  /// * Soco: `v > max(map) · (1 − r)`, the threshold relative to the map's own maximum and
  ///   formed in float32 as torch does (`uint8 max × float → float32`, spec §3): at r = 0.4 the
  ///   value 153 of a map with max 255 is kept (it would be imputed in float64).
  ///
  /// # Errors
  /// `EMPTY_INPUT` (`pixels`); `SHAPE_MISMATCH` (`maps`, `masks`); `NON_FINITE` (`maps`);
  /// `INVALID_OPTION` for `step` out of range or (soco) a value that is not an integer 0..=255.
  pub fn masks(
    &self,
    maps: &[f32],
    pixels: usize,
    step: usize,
    masks: &mut [u8],
  ) -> Result<Vec<u32>> {
    let n = map_count(maps, pixels)?;
    check_step(step)?;
    if u32::try_from(pixels).is_err() {
      return Err(CoreError::param(
        "pixels",
        format!("{pixels} pixels per map; counts are u32"),
      ));
    }
    if self.mode == Mode::Soco {
      check_u8_maps(maps)?;
    }
    expect_len("masks", masks.len(), maps.len())?;
    let mut counts = Vec::with_capacity(n);
    for (map, mask) in maps
      .chunks_exact(pixels)
      .zip(masks.chunks_exact_mut(pixels))
    {
      counts.push(match self.mode {
        Mode::Paper => {
          let t = self.threshold(step);
          fill(mask, map, |v| f64::from(v) > t)
        }
        Mode::Soco => {
          let r = (step + 1) as f64 / 10.0; // np.arange(0.1, 1.0, 0.1).round(5)
          let max = map.iter().copied().fold(0.0f32, f32::max);
          let thr = max * (1.0 - r) as f32;
          fill(mask, map, |v| v > thr)
        }
      });
    }
    Ok(counts)
  }
}

/// Sets `mask[i] = imputed(map[i])`; returns the number imputed.
fn fill(mask: &mut [u8], map: &[f32], imputed: impl Fn(f32) -> bool) -> u32 {
  mask
    .iter_mut()
    .zip(map)
    .map(|(m, &v)| {
      *m = u8::from(imputed(v));
      u32::from(*m)
    })
    .sum()
}

/// The data-set completeness curve.
#[derive(Debug, Clone, PartialEq)]
pub struct CompletenessCurve {
  /// Attribution threshold per step (0.9 … 0.1): the x of the paper's plot.
  pub thresholds: Vec<f64>,
  /// Accuracy (or mean score) on the clean inputs, `s_0`.
  pub clean: f64,
  /// Accuracy (or mean score) after imputing the attributed pixels, per step.
  pub indicator: Vec<f64>,
  /// `s_0 − s_t` per step: the y of the paper's plot (higher: more complete).
  pub difference: Vec<f64>,
  pub samples: u64,
}

/// Mergeable accumulator of one shard (or of several merged).
#[derive(Debug, Clone, PartialEq)]
pub struct CompletenessStats {
  mode: Mode,
  indicator: Indicator,
  clean: StepCounts,
  steps: Vec<StepCounts>,
}

impl CompletenessStats {
  pub fn new(mode: Mode, indicator: Indicator) -> Self {
    CompletenessStats {
      mode,
      indicator,
      clean: StepCounts::default(),
      steps: vec![StepCounts::default(); STEPS],
    }
  }

  pub fn mode(&self) -> Mode {
    self.mode
  }

  pub fn indicator(&self) -> Indicator {
    self.indicator
  }

  /// Adds the answers on the clean inputs, one per sample. soco recomputes the clean accuracy
  /// at every threshold (spec §3, 18·N forward passes); for a deterministic model that is the
  /// same number, so one clean pass per sample serves all thresholds here.
  ///
  /// # Errors
  /// `NON_FINITE`, `INVALID_OPTION` (arg `values`).
  pub fn add_clean(&mut self, values: &[f64]) -> Result<()> {
    self.clean.add_values(self.indicator, values)
  }

  /// Adds the answers on the inputs imputed at `step`, one per sample.
  ///
  /// # Errors
  /// `INVALID_OPTION` (`step`, `values`), `NON_FINITE` (`values`).
  pub fn add_values(&mut self, step: usize, values: &[f64]) -> Result<()> {
    check_step(step)?;
    self.steps[step].add_values(self.indicator, values)
  }

  /// Adds everything `other` accumulated. Associative and commutative, exactly.
  ///
  /// # Errors
  /// `INVALID_OPTION` (arg `other`) for a different mode or indicator.
  pub fn merge(&mut self, other: &CompletenessStats) -> Result<()> {
    if (self.mode, self.indicator) != (other.mode, other.indicator) {
      return Err(CoreError::param(
        "other",
        "statistics of a different mode or indicator",
      ));
    }
    self.clean.merge(&other.clean);
    self
      .steps
      .iter_mut()
      .zip(&other.steps)
      .for_each(|(a, b)| a.merge(b));
    Ok(())
  }

  /// The data-set curve, from fully merged statistics.
  ///
  /// # Errors
  /// `EMPTY_INPUT` (`values`) without clean answers; `SHAPE_MISMATCH` (`values`) if a step saw a
  /// different number of samples than the clean pass.
  pub fn curve(&self) -> Result<CompletenessCurve> {
    let clean = self.clean.value(self.mode, self.indicator)?;
    let n = self.clean.samples();
    let mut c = CompletenessCurve {
      thresholds: Completeness { mode: self.mode }.thresholds(),
      clean,
      indicator: Vec::with_capacity(STEPS),
      difference: Vec::with_capacity(STEPS),
      samples: n,
    };
    for (k, st) in self.steps.iter().enumerate() {
      if st.samples() != n {
        return Err(CoreError::shape(
          "values",
          format!("{n} samples at step {k}"),
          st.samples(),
        ));
      }
      let s = st.value(self.mode, self.indicator)?;
      c.indicator.push(s);
      c.difference.push(clean - s);
    }
    Ok(c)
  }

  /// Serialized form, to merge across machines.
  pub fn to_bytes(&self) -> Vec<u8> {
    let mut out = Vec::new();
    write_header(&mut out, METRIC, self.mode, self.indicator, STEPS);
    self.clean.write(&mut out);
    self.steps.iter().for_each(|s| s.write(&mut out));
    out
  }

  /// # Errors
  /// `INVALID_OPTION` (arg `bytes`) unless `bytes` came from [`CompletenessStats::to_bytes`].
  pub fn from_bytes(bytes: &[u8]) -> Result<CompletenessStats> {
    let (mut r, mode, indicator, steps) = Reader::open(bytes, METRIC)?;
    if steps != STEPS {
      return Err(CoreError::param("bytes", format!("{steps} steps")));
    }
    let mut out = CompletenessStats::new(mode, indicator);
    out.clean = StepCounts::read(&mut r)?;
    for st in &mut out.steps {
      *st = StepCounts::read(&mut r)?;
    }
    r.finish()?;
    Ok(out)
  }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
  use super::*;

  fn masks(mode: Mode, map: &[f32], step: usize) -> Vec<u8> {
    let mut m = vec![9; map.len()];
    Completeness { mode }
      .masks(map, map.len(), step, &mut m)
      .unwrap();
    m
  }

  #[test]
  fn paper_thresholds_are_strict_and_absolute() {
    let c = Completeness { mode: Mode::Paper };
    assert_eq!(
      c.thresholds(),
      [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1]
    );
    let map = [0.95, 0.5, 0.05]; // a 3×1 map
    assert_eq!(masks(Mode::Paper, &map, 0), [1, 0, 0]); // t = 0.9
    assert_eq!(masks(Mode::Paper, &map, 4), [1, 0, 0]); // t = 0.5: 0.5 is not above it
    assert_eq!(masks(Mode::Paper, &map, 5), [1, 1, 0]); // t = 0.4
    assert_eq!(masks(Mode::Paper, &map, 8), [1, 1, 0]); // t = 0.1
    assert_eq!(masks(Mode::Paper, &[2.0, -1.0, 0.3], 0), [1, 0, 0]); // as if clamped
  }

  #[test]
  fn soco_thresholds_relative_to_max_in_float32() {
    let map = [255.0, 153.0, 51.0];
    assert_eq!(masks(Mode::Soco, &map, 0), [1, 0, 0]); // r = 0.1: > 229.5
    assert_eq!(masks(Mode::Soco, &map, 3), [1, 0, 0]); // r = 0.4: 255 · 0.6f32 = 153.0, kept
    assert_eq!(masks(Mode::Soco, &map, 4), [1, 1, 0]); // r = 0.5: > 127.5
    assert_eq!(masks(Mode::Soco, &map, 7), [1, 1, 0]); // r = 0.8: 51.0, kept
    assert_eq!(masks(Mode::Soco, &map, 8), [1, 1, 1]); // r = 0.9: > 25.5
    assert_eq!(masks(Mode::Soco, &[10.0, 6.0, 5.0], 3), [1, 0, 0]); // relative: 10 · 0.6f32 rounds to 6.0, 6 kept
    assert_eq!(masks(Mode::Soco, &[0.0, 0.0, 0.0], 8), [0, 0, 0]); // max 0: nothing imputed
    let counts = Completeness { mode: Mode::Soco }.masks(
      &[255.0, 153.0, 51.0, 0.0, 0.0, 9.0],
      3,
      8,
      &mut [0; 6],
    );
    assert_eq!(counts.unwrap(), [3, 1]);
  }

  #[test]
  fn curve_by_hand_and_errors() {
    // 4 samples: clean correct 3; at t = 0.9 … 0.1 correct 3, 2, 2, 1, 1, 1, 0, 0, 0.
    let correct = [3, 2, 2, 1, 1, 1, 0, 0, 0];
    let row = |h: usize| -> Vec<f64> { (0..4).map(|i| if i < h { 1.0 } else { 0.0 }).collect() };
    for mode in [Mode::Paper, Mode::Soco] {
      let mut st = CompletenessStats::new(mode, Indicator::Accuracy);
      assert_eq!(st.curve().unwrap_err().code(), "EMPTY_INPUT");
      st.add_clean(&row(3)).unwrap();
      for (k, &h) in correct.iter().enumerate() {
        st.add_values(k, &row(h)).unwrap();
      }
      let c = st.curve().unwrap();
      let n = if mode == Mode::Paper { 4.0 } else { 4.0 + 1e-6 };
      let want: Vec<f64> = correct.iter().map(|&h| 3.0 / n - h as f64 / n).collect();
      assert_eq!((c.clean, c.difference, c.samples), (3.0 / n, want, 4));
      st.add_values(0, &[1.0]).unwrap();
      assert_eq!(st.curve().unwrap_err().code(), "SHAPE_MISMATCH");
    }
    let mut st = CompletenessStats::new(Mode::Paper, Indicator::Accuracy);
    assert_eq!(st.add_values(9, &[1.0]).unwrap_err().arg(), "step");
    assert_eq!(st.add_clean(&[0.5]).unwrap_err().code(), "INVALID_OPTION");
    assert_eq!(st.add_clean(&[f64::NAN]).unwrap_err().code(), "NON_FINITE");
    let other = CompletenessStats::new(Mode::Soco, Indicator::Accuracy);
    assert_eq!(st.merge(&other).unwrap_err().arg(), "other");
  }
}
