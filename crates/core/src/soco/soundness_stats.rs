//! Soundness (Algorithm 3), the map / reduce bookkeeping: [`SoundnessStats`], the mergeable
//! accumulator of one shard (the model's answers per step, then the samples' ratios), its
//! serialized form, and the data-set curve. Separate from the masks and the decisions because it
//! is the only part that crosses shards and machines.

use super::flags::{decide, Flag, SampleState, StepDecision};
use super::soundness::{check_step, step_count, Soundness};
use super::{check_values, write_header, ExactSum, Indicator, Mode, Reader, StepCounts};
use crate::error::{expect_len, CoreError, Result};

const METRIC: u8 = 1;

/// Per-sample output of [`SoundnessStats::apply`].
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
  /// `[samples, steps]`: each sample's soundness ratio per step (NaN where undefined).
  pub ratios: Vec<f64>,
  /// `[samples]`: attribution of each sample's false-attribution set after the last step.
  pub false_attr: Vec<f64>,
}

/// The data-set soundness curve.
#[derive(Debug, Clone, PartialEq)]
pub struct SoundnessCurve {
  /// Mask ratio per step.
  pub ratios: Vec<f64>,
  /// Accuracy (or mean score) per step: the x of the paper's plot.
  pub indicator: Vec<f64>,
  /// Mean per-sample soundness ratio per step (over samples where it is defined): the y.
  pub soundness: Vec<f64>,
  pub flags: Vec<Flag>,
  /// Samples whose newly included features were flagged, per step.
  pub flagged: Vec<u64>,
  /// Samples whose ratio is undefined (no attribution included yet, paper), per step.
  pub undefined: Vec<u64>,
  pub samples: u64,
}

impl SoundnessCurve {
  /// `(accuracy, soundness)` pairs, as the paper plots them.
  #[cfg(test)]
  pub fn points(&self) -> Vec<(f64, f64)> {
    self
      .indicator
      .iter()
      .copied()
      .zip(self.soundness.iter().copied())
      .collect()
  }
}

#[derive(Debug, Clone, Default, PartialEq)]
struct StepStats {
  counts: StepCounts,
  /// Samples whose ratio was folded in, and the flag they were given.
  applied: u64,
  flag: Option<Flag>,
  defined: u64,
  flagged: u64,
  ratio: ExactSum,
}

/// Mergeable accumulator of one shard (or of several merged): per step, the counts of the
/// model's answers and the sums of the samples' ratios.
#[derive(Debug, Clone, PartialEq)]
pub struct SoundnessStats {
  mode: Mode,
  indicator: Indicator,
  steps: Vec<StepStats>,
}

impl SoundnessStats {
  pub fn new(mode: Mode, indicator: Indicator) -> Self {
    SoundnessStats {
      mode,
      indicator,
      steps: vec![StepStats::default(); step_count(mode)],
    }
  }

  pub fn mode(&self) -> Mode {
    self.mode
  }

  pub fn indicator(&self) -> Indicator {
    self.indicator
  }

  /// Number of steps.
  pub fn steps(&self) -> usize {
    self.steps.len()
  }

  /// Counts of the answers at `step` (panics if `step >= steps()`: tests only).
  #[cfg(test)]
  pub fn counts(&self, step: usize) -> &StepCounts {
    &self.steps[step].counts
  }

  /// Map phase: adds the model's answers at `step` (one value per sample: correctness 0/1, or
  /// the true-class score).
  ///
  /// # Errors
  /// `INVALID_OPTION` (`step`, `values`), `NON_FINITE` (`values`).
  pub fn add_values(&mut self, step: usize, values: &[f64]) -> Result<()> {
    check_step(self.mode, step)?;
    self.steps[step].counts.add_values(self.indicator, values)
  }

  /// Adds everything `other` accumulated. Associative and commutative, exactly.
  ///
  /// # Errors
  /// `INVALID_OPTION` (arg `other`) for a different mode or indicator, or if the two applied
  /// different flags at a step (they were given different decisions); `self` is then unchanged.
  pub fn merge(&mut self, other: &SoundnessStats) -> Result<()> {
    if (self.mode, self.indicator) != (other.mode, other.indicator) {
      return Err(CoreError::param(
        "other",
        "statistics of a different mode or indicator",
      ));
    }
    for (k, (a, b)) in self.steps.iter().zip(&other.steps).enumerate() {
      if let (Some(x), Some(y)) = (a.flag, b.flag) {
        if x != y {
          return Err(CoreError::param(
            "other",
            format!("step {k} was applied with flags {x:?} and {y:?}"),
          ));
        }
      }
    }
    for (a, b) in self.steps.iter_mut().zip(&other.steps) {
      a.counts.merge(&b.counts);
      a.applied += b.applied;
      a.flag = a.flag.or(b.flag);
      a.defined += b.defined;
      a.flagged += b.flagged;
      a.ratio.merge(&b.ratio);
    }
    Ok(())
  }

  /// Reduce phase: the decision of every step, in order, up to the first step without values.
  /// Call it on the merged counts of *all* shards.
  ///
  /// # Errors
  /// `SHAPE_MISMATCH` (`values`) if steps saw different numbers of samples, or a step has values
  /// after a step without; `EMPTY_INPUT` if the first step has none.
  pub fn decisions(&self) -> Result<Vec<StepDecision>> {
    let filled = self
      .steps
      .iter()
      .take_while(|s| s.counts.samples() > 0)
      .count();
    if let Some(k) = self.steps[filled..]
      .iter()
      .position(|s| s.counts.samples() > 0)
    {
      return Err(CoreError::shape(
        "values",
        format!("values at step {filled}"),
        format!("none, but values at step {}", filled + k),
      ));
    }
    let mut out = Vec::with_capacity(filled);
    for k in 0..filled.max(1) {
      let prev = k.checked_sub(1).map(|p| &self.steps[p].counts);
      out.push(decide(
        self.mode,
        self.indicator,
        prev,
        &self.steps[k].counts,
      )?);
    }
    Ok(out)
  }

  /// Apply phase, all steps at once: runs every sample of this shard through the flags of all
  /// steps and folds its ratios into `self`. `values` and `new` are `[samples, steps]` (each
  /// sample's row over the steps), as produced in the map phase.
  ///
  /// # Errors
  /// `SHAPE_MISMATCH` (`flags`, `values`, `new`); `NON_FINITE` (`values`, `new`);
  /// `INVALID_OPTION` for invalid values, a negative `new`, a flag the indicator cannot produce,
  /// or a flag that differs from one applied before at the same step. Nothing is changed then.
  pub fn apply(&mut self, flags: &[Flag], values: &[f64], new: &[f64]) -> Result<Applied> {
    let s = self.steps.len();
    expect_len("flags", flags.len(), s)?;
    if !values.len().is_multiple_of(s) {
      return Err(CoreError::shape(
        "values",
        format!("[samples, {s}]"),
        values.len(),
      ));
    }
    expect_len("new", new.len(), values.len())?;
    self.check_apply(flags, values, new)?;
    let samples = values.len() / s;
    let mut applied = Applied {
      ratios: vec![0.0; values.len()],
      false_attr: vec![0.0; samples],
    };
    for n in 0..samples {
      let mut state = SampleState::default();
      for (k, &flag) in flags.iter().enumerate() {
        let (q, flagged) = state.advance(self.mode, flag, values[n * s + k], new[n * s + k]);
        self.fold(k, flag, q, flagged);
        applied.ratios[n * s + k] = q;
      }
      applied.false_attr[n] = state.false_attr;
    }
    Ok(applied)
  }

  /// Apply phase, one step (the round-by-round form): advances `states` (one per sample of this
  /// shard, starting from `SampleState::default()`) by `step` and returns their ratios.
  ///
  /// # Errors
  /// As [`SoundnessStats::apply`], plus `INVALID_OPTION` (`step`).
  ///
  /// Tests only: they check that [`SoundnessStats::apply`] equals this form step by step.
  #[cfg(test)]
  pub fn apply_step(
    &mut self,
    step: usize,
    flag: Flag,
    states: &mut [SampleState],
    values: &[f64],
    new: &[f64],
  ) -> Result<Vec<f64>> {
    check_step(self.mode, step)?;
    expect_len("values", values.len(), states.len())?;
    expect_len("new", new.len(), states.len())?;
    self.check_flag(step, flag)?;
    check_values(self.indicator, values)?;
    check_new(new)?;
    let mut ratios = Vec::with_capacity(states.len());
    for ((state, &v), &a) in states.iter_mut().zip(values).zip(new) {
      let (q, flagged) = state.advance(self.mode, flag, v, a);
      self.fold(step, flag, q, flagged);
      ratios.push(q);
    }
    Ok(ratios)
  }

  fn check_apply(&self, flags: &[Flag], values: &[f64], new: &[f64]) -> Result<()> {
    for (k, &flag) in flags.iter().enumerate() {
      self.check_flag(k, flag)?;
    }
    check_values(self.indicator, values)?;
    check_new(new)
  }

  fn check_flag(&self, step: usize, flag: Flag) -> Result<()> {
    let possible = match self.indicator {
      Indicator::Accuracy => flag != Flag::OwnGain,
      Indicator::Score => flag != Flag::All,
    };
    if !possible {
      return Err(CoreError::param(
        "flags",
        format!(
          "{flag:?} at step {step} is impossible under {:?}",
          self.indicator
        ),
      ));
    }
    match self.steps[step].flag {
      Some(f) if f != flag => Err(CoreError::param(
        "flags",
        format!("step {step} was applied with {f:?} before, now {flag:?}"),
      )),
      _ => Ok(()),
    }
  }

  fn fold(&mut self, step: usize, flag: Flag, q: f64, flagged: bool) {
    let st = &mut self.steps[step];
    st.flag = Some(flag);
    st.applied += 1;
    st.flagged += u64::from(flagged);
    if q.is_finite() {
      st.defined += 1;
      st.ratio.add(q);
    }
  }

  /// The data-set curve, from fully merged statistics.
  ///
  /// # Errors
  /// As [`SoundnessStats::decisions`], and `INVALID_OPTION` (arg `stats`) if a step has no
  /// values, if not every sample's ratios were folded in, or if the applied flags are not the
  /// ones the merged counts decide.
  pub fn curve(&self) -> Result<SoundnessCurve> {
    let decisions = self.decisions()?;
    if decisions.len() < self.steps.len() {
      return Err(CoreError::param(
        "stats",
        format!("no values at step {}", decisions.len()),
      ));
    }
    let n = self.steps[0].counts.samples();
    let sched = Soundness {
      mode: self.mode,
      seed: 0,
    };
    let mut c = SoundnessCurve {
      ratios: sched.ratios(),
      indicator: Vec::new(),
      soundness: Vec::new(),
      flags: Vec::new(),
      flagged: Vec::new(),
      undefined: Vec::new(),
      samples: n,
    };
    for (k, (st, d)) in self.steps.iter().zip(&decisions).enumerate() {
      if st.applied != n {
        return Err(CoreError::param(
          "stats",
          format!(
            "step {k}: ratios of {} of {n} samples; apply() every shard before the final merge",
            st.applied
          ),
        ));
      }
      if st.flag != Some(d.flag) {
        return Err(CoreError::param(
          "stats",
          format!(
            "step {k}: applied {:?}, but the merged counts decide {:?}",
            st.flag, d.flag
          ),
        ));
      }
      c.indicator.push(d.indicator);
      c.soundness.push(if st.defined > 0 {
        st.ratio.value() / st.defined as f64
      } else {
        f64::NAN
      });
      c.flags.push(d.flag);
      c.flagged.push(st.flagged);
      c.undefined.push(n - st.defined);
    }
    Ok(c)
  }

  /// Serialized form, to merge across machines.
  pub fn to_bytes(&self) -> Vec<u8> {
    let mut out = Vec::new();
    write_header(
      &mut out,
      METRIC,
      self.mode,
      self.indicator,
      self.steps.len(),
    );
    for st in &self.steps {
      st.counts.write(&mut out);
      out.extend(st.applied.to_le_bytes());
      out.push(st.flag.map_or(u8::MAX, Flag::code));
      out.extend(st.defined.to_le_bytes());
      out.extend(st.flagged.to_le_bytes());
      out.extend(st.ratio.to_le_bytes());
    }
    out
  }

  /// # Errors
  /// `INVALID_OPTION` (arg `bytes`) unless `bytes` came from [`SoundnessStats::to_bytes`].
  pub fn from_bytes(bytes: &[u8]) -> Result<SoundnessStats> {
    let (mut r, mode, indicator, steps) = Reader::open(bytes, METRIC)?;
    if steps != step_count(mode) {
      return Err(CoreError::param(
        "bytes",
        format!("{steps} steps for {mode:?}"),
      ));
    }
    let mut out = SoundnessStats::new(mode, indicator);
    for st in &mut out.steps {
      st.counts = StepCounts::read(&mut r)?;
      st.applied = r.u64()?;
      st.flag = match r.u8()? {
        u8::MAX => None,
        c => Some(Flag::from_code(c).ok_or_else(|| CoreError::param("bytes", "unknown flag"))?),
      };
      st.defined = r.u64()?;
      st.flagged = r.u64()?;
      st.ratio = r.exact()?;
    }
    r.finish()?;
    Ok(out)
  }
}

fn check_new(new: &[f64]) -> Result<()> {
  if let Some(index) = new.iter().position(|v| !v.is_finite()) {
    return Err(CoreError::NonFinite { arg: "new", index });
  }
  match new.iter().position(|&v| v < 0.0) {
    Some(i) => Err(CoreError::param(
      "new",
      format!("attribution must be >= 0; got {} at index {i}", new[i]),
    )),
    None => Ok(()),
  }
}
