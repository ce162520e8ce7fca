//! Soundness (Algorithm 3), the decisions: whether the features a step newly includes are false
//! attribution ([`decide`], a data-set quantity reduced from all shards' counts) and how each
//! sample's false-attribution set and soundness ratio follow from that ([`SampleState`]). Kept
//! apart from the masks (`soundness.rs`), which never need a decision, and from the mergeable
//! statistics (`soundness_stats.rs`), which are built from these two primitives.

use super::{Indicator, Mode, StepCounts, EPS, SOCO_START, SOCO_TINY};
use crate::error::{CoreError, Result};

/// Which samples' newly included features are flagged as false attribution at a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
  /// None.
  Clear,
  /// All samples (accuracy indicator: the gain is a data-set quantity).
  All,
  /// Each sample whose own score gain is below ε (score indicator).
  OwnGain,
}

impl Flag {
  /// Stable code: 0 `Clear`, 1 `All`, 2 `OwnGain`.
  pub fn code(self) -> u8 {
    match self {
      Flag::Clear => 0,
      Flag::All => 1,
      Flag::OwnGain => 2,
    }
  }

  pub fn from_code(c: u8) -> Option<Flag> {
    [Flag::Clear, Flag::All, Flag::OwnGain]
      .into_iter()
      .find(|f| f.code() == c)
  }
}

/// The reduced outcome of one step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepDecision {
  /// Data-set accuracy (or mean score) `s_k`.
  pub indicator: f64,
  pub flag: Flag,
}

/// Is a gain below ε? Paper: `<` (Alg. 3 line 16). Soco: `<=` (spec §2 fact 4).
fn small_gain(mode: Mode, gain: f64) -> bool {
  match mode {
    Mode::Paper => gain < EPS,
    Mode::Soco => gain <= EPS,
  }
}

/// The flag of a step from the reduced counts of this step and of the previous one (`None` at
/// the first step, where the previous indicator is 0: Alg. 3 line 6, soco `prev_cls_result = 0`).
///
/// # Errors
/// `EMPTY_INPUT` if `counts` is empty; `SHAPE_MISMATCH` (arg `values`) if the two steps saw
/// different numbers of samples.
pub fn decide(
  mode: Mode,
  indicator: Indicator,
  prev: Option<&StepCounts>,
  counts: &StepCounts,
) -> Result<StepDecision> {
  let s = counts.value(mode, indicator)?;
  if let Some(p) = prev {
    if p.samples() != counts.samples() {
      return Err(CoreError::shape(
        "values",
        format!("{} samples at every step", p.samples()),
        counts.samples(),
      ));
    }
  }
  let s_prev = prev.map_or(Ok(0.0), |p| p.value(mode, indicator))?;
  // soco updates nothing while the indicator is <= 0.04 (spec §2 fact 5); not in the paper.
  let guarded = mode == Mode::Soco && s <= SOCO_START;
  let flag = match indicator {
    _ if guarded => Flag::Clear,
    Indicator::Score => Flag::OwnGain,
    Indicator::Accuracy => {
      let small = match mode {
        // (h_k − h_{k−1}) / N < 1/100, in integers: no rounding at a gain of exactly ε.
        Mode::Paper => {
          let gain = i128::from(counts.hits()) - i128::from(prev.map_or(0, StepCounts::hits));
          100 * gain < i128::from(counts.samples())
        }
        // Python floats, as soco: `acc_k − acc_{k−1} <= 0.01` with `acc = n / (N + 1e-6)`.
        Mode::Soco => small_gain(mode, s - s_prev),
      };
      if small {
        Flag::All
      } else {
        Flag::Clear
      }
    }
  };
  Ok(StepDecision { indicator: s, flag })
}

/// What one sample carries from step to step.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SampleState {
  /// `|A_inc|_η`: attribution of the features included so far (running sum of `new`).
  pub kept: f64,
  /// `|Â|_η`: attribution of the included features flagged as false.
  pub false_attr: f64,
  /// This sample's value at the previous step (0 before the first).
  pub prev: f64,
}

impl SampleState {
  /// Includes `new`, applies `flag`, and returns the sample's soundness ratio at this step
  /// (NaN where undefined) and whether its new features were flagged.
  pub fn advance(&mut self, mode: Mode, flag: Flag, value: f64, new: f64) -> (f64, bool) {
    self.kept += new;
    let flagged = match flag {
      Flag::Clear => false,
      Flag::All => true,
      Flag::OwnGain => match mode {
        Mode::Paper => small_gain(mode, value - self.prev),
        // soco compares float32 logits with the float32 threshold (torch, spec §2 fact 8).
        Mode::Soco => (value as f32 - self.prev as f32) <= EPS as f32,
      },
    };
    self.prev = value;
    let q = match mode {
      // One-step lag: the ratio uses F from earlier steps only, and `/(R + 1e-6)` (spec §2
      // fact 2, `compute_attr_ratio` runs before `_update_false_attr`).
      Mode::Soco => (self.kept - self.false_attr) / (self.kept + SOCO_TINY),
      Mode::Paper => f64::NAN,
    };
    if flagged {
      self.false_attr += new;
    }
    match mode {
      Mode::Soco => (q, flagged),
      // Alg. 3 lines 16–22: q after this step's update; 0/0 (nothing attributed) is undefined.
      Mode::Paper if self.kept > 0.0 => ((self.kept - self.false_attr) / self.kept, flagged),
      Mode::Paper => (f64::NAN, flagged),
    }
  }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
  use super::*;

  fn counts(hits: &[u64], n: u64) -> Vec<StepCounts> {
    hits
      .iter()
      .map(|&h| {
        let mut c = StepCounts::default();
        let v: Vec<f64> = (0..n).map(|i| if i < h { 1.0 } else { 0.0 }).collect();
        c.add_values(Indicator::Accuracy, &v).unwrap();
        c
      })
      .collect()
  }

  fn flags(mode: Mode, c: &[StepCounts]) -> Vec<Flag> {
    (0..c.len())
      .map(|k| {
        decide(
          mode,
          Indicator::Accuracy,
          k.checked_sub(1).map(|p| &c[p]),
          &c[k],
        )
        .unwrap()
        .flag
      })
      .collect()
  }

  #[test]
  fn paper_flags_at_exactly_eps_and_first_step() {
    // N = 100: gains of exactly one sample are ε = 0.01, not below it; 29 → 28 would round
    // below 0.01 in floats (0.29 − 0.28 = 0.00999…).
    let c = counts(&[28, 29, 29, 30, 40], 100);
    assert_eq!(
      flags(Mode::Paper, &c),
      [
        Flag::Clear,
        Flag::Clear,
        Flag::All,
        Flag::Clear,
        Flag::Clear
      ]
    );
    // First step compares with 0: flagged iff accuracy < 0.01.
    assert_eq!(flags(Mode::Paper, &counts(&[0, 5], 100))[0], Flag::All);
  }

  #[test]
  fn soco_flags_non_strict_with_start_guard() {
    // 50 → 51 of 100: 0.0099999999 <= 0.01 → flagged; 51 → 53: not.
    let c = counts(&[50, 51, 53, 53], 100);
    assert_eq!(
      flags(Mode::Soco, &c),
      [Flag::Clear, Flag::All, Flag::Clear, Flag::All]
    );
    // acc <= 0.04: nothing flagged, whatever the gain; the first step never is.
    let c = counts(&[0, 4, 4, 9, 9], 100);
    assert_eq!(
      flags(Mode::Soco, &c),
      [
        Flag::Clear,
        Flag::Clear,
        Flag::Clear,
        Flag::Clear,
        Flag::All
      ]
    );
  }

  #[test]
  fn advance_lag_and_ratios_by_hand() {
    // new = 2 then 1; flagged at step 0 only.
    let mut p = SampleState::default();
    assert_eq!(p.advance(Mode::Paper, Flag::All, 0.0, 2.0), (0.0, true)); // (2 − 2) / 2
    assert_eq!(
      p.advance(Mode::Paper, Flag::Clear, 0.0, 1.0),
      (1.0 / 3.0, false)
    ); // (3 − 2) / 3
    let mut s = SampleState::default();
    assert_eq!(
      s.advance(Mode::Soco, Flag::All, 0.0, 2.0),
      (2.0 / (2.0 + 1e-6), true)
    ); // F not yet
    assert_eq!(
      s.advance(Mode::Soco, Flag::Clear, 0.0, 1.0),
      (1.0 / (3.0 + 1e-6), false)
    );
    // Nothing attributed yet: undefined in the paper, 0 in soco.
    let (q, _) = SampleState::default().advance(Mode::Paper, Flag::Clear, 0.0, 0.0);
    assert!(q.is_nan());
    assert_eq!(
      SampleState::default()
        .advance(Mode::Soco, Flag::Clear, 0.0, 0.0)
        .0,
      0.0
    );
  }

  #[test]
  fn own_gain_per_sample() {
    let mut a = SampleState::default();
    assert!(!a.advance(Mode::Paper, Flag::OwnGain, 3.0, 1.0).1); // gain 3 from 0
    assert!(a.advance(Mode::Paper, Flag::OwnGain, 3.005, 1.0).1);
    assert!(a.advance(Mode::Paper, Flag::OwnGain, 2.0, 1.0).1); // a drop is a small gain too
    assert_eq!(a.false_attr, 2.0);
    let mut s = SampleState {
      prev: 1.0,
      ..Default::default()
    };
    assert!(
      s.advance(Mode::Soco, Flag::OwnGain, 1.0 + f64::from(0.01f32), 1.0)
        .1
    ); // <= in f32
  }
}
