//! Soundness (Algorithm 3): LeRF masks by area, the false-attribution bookkeeping, and the
//! (indicator, soundness) curve. See the parent module for the protocol.

use std::cmp::Ordering;

use super::{
  check_u8_maps, check_values, map_count, write_header, ExactSum, Indicator, Mode, Reader,
  StepCounts, EPS, SOCO_START, SOCO_TINY,
};
use crate::error::{check_sample_range, expect_len, CoreError, Result};
use crate::rng::{Purpose, Rng};

const METRIC: u8 = 1;

/// Schedule and masks of the soundness metric. `seed` only orders tied attribution values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Soundness {
  pub mode: Mode,
  pub seed: u64,
}

/// Number of steps of `mode`.
fn step_count(mode: Mode) -> usize {
  match mode {
    Mode::Paper => 99,
    // Config {start: 0.98, end: 0.02, step: -0.01}, end excluded (spec §2).
    Mode::Soco => 96,
  }
}

fn check_step(mode: Mode, step: usize) -> Result<()> {
  if step < step_count(mode) {
    Ok(())
  } else {
    Err(CoreError::param(
      "step",
      format!("must be < {} steps, got {step}", step_count(mode)),
    ))
  }
}

impl Soundness {
  pub fn steps(&self) -> usize {
    step_count(self.mode)
  }

  /// Mask ratio by area (fraction of pixels imputed) at `step`: the paper's
  /// M = {0.99, 0.98, …, 0.01}; soco's `np.arange(0.98, 0.02, -0.01).round(5)` = 0.98 … 0.03
  /// (spec §2). Both are the doubles nearest to `(99 − k)/100` resp. `(98 − k)/100`.
  pub fn ratio(&self, step: usize) -> f64 {
    let top = match self.mode {
      Mode::Paper => 99,
      Mode::Soco => 98,
    };
    (top - step as i64) as f64 / 100.0
  }

  /// All ratios, one per step.
  pub fn ratios(&self) -> Vec<f64> {
    (0..self.steps()).map(|k| self.ratio(k)).collect()
  }

  /// Pixels imputed at `step`, of `pixels`. Paper: ⌊pixels · ratio⌋ exactly. Soco:
  /// `int(D * r)` on the float64 product (spec §2 fact 6: D = 200, r = 0.58 gives 115).
  pub fn masked(&self, step: usize, pixels: usize) -> usize {
    match self.mode {
      Mode::Paper => ((pixels as u128 * (99 - step as u128)) / 100) as usize,
      Mode::Soco => (pixels as f64 * self.ratio(step)) as usize,
    }
  }

  /// Pixels imputed before `step` (the previous ratio; 1.0 before the first step, Alg. 3 line 5).
  fn masked_before(&self, step: usize, pixels: usize) -> usize {
    if step == 0 {
      pixels
    } else {
      self.masked(step - 1, pixels)
    }
  }

  /// Step key of the tie-breaking order at `step` (its stream is
  /// `Rng::keyed(seed, global sample, Purpose::Ties, tie_step(step))`). Paper: one order per
  /// sample for every step, so the included sets are nested (Algorithm 1's `Expand` grows
  /// `A_inc`). Soco: a fresh order at every step, as its new `torch.randperm` per step (spec §2
  /// fact 7; torch's bits are not reproduced).
  fn tie_step(&self, step: usize) -> u64 {
    match self.mode {
      Mode::Paper => 0,
      Mode::Soco => step as u64 + 1,
    }
  }

  /// For every map of `maps` (`[n, pixels]`; sample `i` has global index `first_sample + i`),
  /// writes into `masks` (`[n, pixels]`, 1 = impute) the pixels imputed at `step`: the
  /// `masked(step)` lowest-attribution pixels (LeRF by area), ties in a random order keyed by
  /// `(seed, global index)`. Writes into `new` (`[n]`) the attribution of the pixels included
  /// at this step (`|ΔA|_η`; soco: in units of `map / 255`, spec §2).
  ///
  /// # Errors
  /// `EMPTY_INPUT` (`pixels` = 0); `SHAPE_MISMATCH` (`maps`, `masks`, `new`); `NON_FINITE`
  /// (`maps`); `INVALID_OPTION` for `step` out of range, a negative value (paper; η ≥ 0, §4.1)
  /// or a value that is not an integer 0..=255 (soco).
  pub fn masks(
    &self,
    maps: &[f32],
    pixels: usize,
    first_sample: u64,
    step: usize,
    masks: &mut [u8],
    new: &mut [f64],
  ) -> Result<()> {
    let n = map_count(maps, pixels)?;
    check_step(self.mode, step)?;
    check_sample_range(first_sample, n)?;
    match self.mode {
      Mode::Paper => {
        if let Some(i) = maps.iter().position(|&v| v < 0.0) {
          return Err(CoreError::param(
            "maps",
            format!(
              "attribution must be >= 0 (the paper clips it, App. G.1); got {} at flat index {i}",
              maps[i]
            ),
          ));
        }
      }
      Mode::Soco => check_u8_maps(maps)?,
    }
    expect_len("masks", masks.len(), maps.len())?;
    expect_len("new", new.len(), n)?;
    let (masked, before) = (self.masked(step, pixels), self.masked_before(step, pixels));
    let mut scratch = Vec::with_capacity(pixels);
    for (i, ((map, mask), new)) in maps
      .chunks_exact(pixels)
      .zip(masks.chunks_exact_mut(pixels))
      .zip(new.iter_mut())
      .enumerate()
    {
      let global = first_sample + i as u64;
      let rng = Rng::keyed(self.seed, global, Purpose::Ties, self.tie_step(step));
      *new = self.lerf_step(map, masked, before, rng, &mut scratch, mask);
    }
    Ok(())
  }

  /// One map: masks the `masked` lowest pixels, returns the attribution at sorted positions
  /// `masked..before` (the pixels included at this step).
  fn lerf_step(
    &self,
    map: &[f32],
    masked: usize,
    before: usize,
    mut rng: Rng,
    scratch: &mut Vec<(f32, u64, usize)>,
    mask: &mut [u8],
  ) -> f64 {
    scratch.clear();
    scratch.extend(map.iter().enumerate().map(|(i, &v)| (v, rng.next_u64(), i)));
    // Ascending attribution, ties by the random key (then index): a strict total order.
    let cmp = |a: &(f32, u64, usize), b: &(f32, u64, usize)| {
      a.0
        .partial_cmp(&b.0)
        .unwrap_or(Ordering::Equal)
        .then(a.1.cmp(&b.1))
        .then(a.2.cmp(&b.2))
    };
    if masked < scratch.len() {
      scratch.select_nth_unstable_by(masked, cmp);
    }
    mask.fill(0);
    scratch[..masked].iter().for_each(|e| mask[e.2] = 1);
    let rest = &mut scratch[masked..];
    let fresh = before - masked;
    if fresh < rest.len() {
      rest.select_nth_unstable_by(fresh, cmp);
    }
    // Sum in ascending value order: the value sequence (hence the bits) is tie-invariant.
    let fresh = &mut rest[..fresh];
    fresh.sort_unstable_by(cmp);
    let unit = |v: f32| match self.mode {
      Mode::Paper => f64::from(v),
      // soco: `smap.to(float32) / 255` (spec §2, compute_attr_ratio).
      Mode::Soco => f64::from(v / 255.0),
    };
    fresh.iter().map(|e| unit(e.0)).sum()
  }
}

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

  /// Counts of the answers at `step` (panics if `step >= steps()`).
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
  fn schedules() {
    let p = Soundness {
      mode: Mode::Paper,
      seed: 0,
    };
    let s = Soundness {
      mode: Mode::Soco,
      seed: 0,
    };
    assert_eq!((p.steps(), p.ratio(0), p.ratio(98)), (99, 0.99, 0.01));
    assert_eq!((s.steps(), s.ratio(0), s.ratio(95)), (96, 0.98, 0.03));
    assert_eq!(s.ratio(40), 0.58);
    // int(D * r) in float64 (spec §2 fact 6) vs the exact floor.
    assert_eq!(
      [s.masked(40, 200), s.masked(41, 200), s.masked(69, 200)],
      [115, 113, 57]
    );
    assert_eq!([p.masked(41, 200), p.masked(42, 200)], [116, 114]);
    assert_eq!((p.masked_before(0, 7), s.masked_before(0, 7)), (7, 7));
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

  #[test]
  fn masks_lerf_with_ties_and_new_attribution() {
    // 2×2 map, D = 4. Paper step 25: ratio 0.74 → 2 masked; before: 0.75 → 3 masked.
    let snd = Soundness {
      mode: Mode::Paper,
      seed: 3,
    };
    let map = [4.0, 1.0, 3.0, 2.0];
    let (mut m, mut new) = ([9u8; 4], [0.0; 1]);
    snd.masks(&map, 4, 0, 25, &mut m, &mut new).unwrap();
    assert_eq!((m, new[0]), ([0, 1, 0, 1], 3.0));
    snd.masks(&map, 4, 0, 0, &mut m, &mut new).unwrap();
    assert_eq!((m, new[0]), ([0, 1, 1, 1], 4.0)); // top 1 of 4 kept
    snd.masks(&map, 4, 0, 98, &mut m, &mut new).unwrap();
    assert_eq!((m, new[0]), ([0; 4], 0.0)); // ⌊0.04⌋ = 0 masked, nothing new since step 75
                                            // Ties: which tied pixel is masked is random but the new attribution is not.
    let tied = [1.0, 1.0, 1.0, 5.0];
    let mut seen = [false; 3];
    for seed in 0..40 {
      Soundness {
        mode: Mode::Paper,
        seed,
      }
      .masks(&tied, 4, 0, 25, &mut m, &mut new)
      .unwrap();
      assert_eq!(
        (m.iter().filter(|&&x| x == 1).count(), m[3], new[0]),
        (2, 0, 1.0)
      );
      (0..3).filter(|&i| m[i] == 0).for_each(|i| seen[i] = true);
    }
    assert_eq!(seen, [true; 3], "every tied pixel is sometimes kept");
  }

  #[test]
  fn soco_masks_use_uint8_units() {
    let snd = Soundness {
      mode: Mode::Soco,
      seed: 0,
    };
    let (mut m, mut new) = ([0u8; 4], [0.0; 1]);
    // Step 0: int(4 · 0.98) = 3 masked, the 255 kept: new = 255/255.
    snd
      .masks(&[255.0, 10.0, 20.0, 0.0], 4, 0, 0, &mut m, &mut new)
      .unwrap();
    assert_eq!((m, new[0]), ([0, 1, 1, 1], 1.0));
    snd
      .masks(&[255.0, 10.0, 20.0, 0.0], 4, 0, 24, &mut m, &mut new)
      .unwrap(); // int(4 · 0.74) = 2
    assert_eq!((m, new[0]), ([0, 1, 0, 1], f64::from(20.0f32 / 255.0)));
    let err = snd
      .masks(&[0.5, 0.0, 0.0, 0.0], 4, 0, 0, &mut m, &mut new)
      .unwrap_err();
    assert_eq!((err.code(), err.arg()), ("INVALID_OPTION", "maps"));
  }
}
