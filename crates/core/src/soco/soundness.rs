//! Soundness (Algorithm 3), the schedule: which pixels each step imputes. The masks depend on
//! the attribution map and the step alone (LeRF by area, ties in a keyed random order), never on
//! the model's answers, so every step's forward passes can run first, on any shard; what the
//! answers then decide lives in `flags.rs`, and the data-set bookkeeping in `soundness_stats.rs`.
//! See the parent module for the protocol.

use std::cmp::Ordering;

use super::{check_u8_maps, map_count, Mode};
use crate::error::{check_sample_range, expect_len, CoreError, Result};
use crate::rng::{Purpose, Rng};

/// Schedule and masks of the soundness metric. `seed` only orders tied attribution values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Soundness {
  pub mode: Mode,
  pub seed: u64,
}

/// Number of steps of `mode`.
pub(super) fn step_count(mode: Mode) -> usize {
  match mode {
    Mode::Paper => 99,
    // Config {start: 0.98, end: 0.02, step: -0.01}, end excluded (spec §2).
    Mode::Soco => 96,
  }
}

pub(super) fn check_step(mode: Mode, step: usize) -> Result<()> {
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
  use super::*;

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

  #[test]
  fn tie_order_is_fixed_across_steps_in_paper_mode_and_fresh_in_soco() {
    // All pixels tied: which are masked is the tie order alone.
    let pixels = 100;
    let masks_at = |mode, map: &[f32], step| {
      let (mut m, mut new) = (vec![0u8; pixels], [0.0]);
      Soundness { mode, seed: 5 }
        .masks(map, pixels, 17, step, &mut m, &mut new)
        .unwrap();
      m
    };
    let nested = |mode, map: &[f32]| {
      (1..60).all(|k| {
        let (before, now) = (masks_at(mode, map, k - 1), masks_at(mode, map, k));
        now.iter().zip(&before).all(|(&n, &b)| n <= b)
      })
    };
    // Paper: one order per sample for every step, so the masked sets shrink by nesting.
    assert!(nested(Mode::Paper, &[0.5; 100]));
    // Soco: a fresh order per step (torch.randperm per step), so they do not.
    assert!(!nested(Mode::Soco, &[128.0; 100]));
  }
}
