//! Rows and statistics of the correlation-type faithfulness metrics: random feature subsets
//! (FaithfulnessCorrelation), non-cumulative groups of ranked features (FaithfulnessEstimate,
//! MonotonicityCorrelation), Quantus's Monotonicity rows, and per-sample Pearson / Spearman
//! correlations.
//!
//! Every random draw is `Rng::keyed(seed, first_sample + local sample, purpose, step)`, so a row
//! depends on the sample's global index only — never on the batch or shard it is built in.

use crate::error::{check_finite, expect_len, CoreError, Result};
use crate::layout::Layout;
use crate::rng::{Purpose, Rng};

/// Checks `x` and `baselines` (`[samples, C·H·W]`) and the output buffer.
fn check_rows(
  x: &[f32],
  baselines: &[f32],
  samples: usize,
  row_len: usize,
  rows: usize,
  out: &[f32],
) -> Result<()> {
  expect_len("x", x.len(), samples * row_len)?;
  expect_len("baselines", baselines.len(), samples * row_len)?;
  expect_len("out", out.len(), rows * row_len)
}

fn check_subset(features: usize, subset_size: usize) -> Result<()> {
  if subset_size == 0 || subset_size >= features {
    return Err(CoreError::param(
      "subsetSize",
      format!("expected 1 ≤ subsetSize < F = {features}, got {subset_size}"),
    ));
  }
  Ok(())
}

/// The subset of run `run` of global sample `sample`: `subset_size` distinct features of
/// `0..features`, `Rng::keyed(seed, sample, Subset, run).subset(features, subset_size)`.
pub fn subset(
  seed: u64,
  sample: u64,
  run: u64,
  features: usize,
  subset_size: usize,
  out: &mut Vec<u32>,
) {
  Rng::keyed(seed, sample, Purpose::Subset, run).subset(features, subset_size, out);
}

/// Fills `out` with one row per `(sample, run)` pair (`pairs` flat, local sample indices): the
/// sample's input with the entries of its subset of that run replaced by its baseline.
///
/// # Errors
/// `SHAPE_MISMATCH` for inconsistent lengths; `INVALID_OPTION` for a subset size not in
/// `1..F` or a sample out of range.
#[allow(clippy::too_many_arguments)]
pub fn fill_subset_rows(
  x: &[f32],
  baselines: &[f32],
  samples: usize,
  row_len: usize,
  seed: u64,
  first_sample: u64,
  subset_size: usize,
  pairs: &[u32],
  out: &mut [f32],
) -> Result<()> {
  if !pairs.len().is_multiple_of(2) {
    return Err(CoreError::shape("rows", "(sample, run) pairs", pairs.len()));
  }
  check_rows(x, baselines, samples, row_len, pairs.len() / 2, out)?;
  check_subset(row_len, subset_size)?;
  let mut idx = Vec::with_capacity(row_len);
  for (p, row) in pairs.chunks_exact(2).zip(out.chunks_exact_mut(row_len)) {
    let (s, run) = (p[0] as usize, u64::from(p[1]));
    if s >= samples {
      return Err(CoreError::param(
        "rows",
        format!("sample {s} out of range ({samples} samples)"),
      ));
    }
    let (xs, bs) = (
      &x[s * row_len..][..row_len],
      &baselines[s * row_len..][..row_len],
    );
    row.copy_from_slice(xs);
    subset(
      seed,
      first_sample + s as u64,
      run,
      row_len,
      subset_size,
      &mut idx,
    );
    for &i in &idx {
      row[i as usize] = bs[i as usize];
    }
  }
  Ok(())
}

/// `[samples, runs]` sums of the (entry-layout, channel-broadcast) attribution over each
/// `(sample, run)` subset of [`fill_subset_rows`].
///
/// # Errors
/// `SHAPE_MISMATCH` for a wrong length of `a`; `NON_FINITE` for NaN/Inf in `a`;
/// `INVALID_OPTION` for a subset size not in `1..F`.
pub fn subset_sums(
  a: &[f32],
  samples: usize,
  layout: &Layout,
  seed: u64,
  first_sample: u64,
  runs: usize,
  subset_size: usize,
) -> Result<Vec<f64>> {
  expect_len("a", a.len(), samples * layout.attr_len())?;
  check_finite("a", a)?;
  let features = layout.features();
  check_subset(features, subset_size)?;
  let mut scores = vec![0f32; features];
  let mut idx = Vec::with_capacity(features);
  let mut out = vec![0f64; samples * runs];
  for (s, sums) in out.chunks_exact_mut(runs.max(1)).enumerate().take(samples) {
    layout.feature_scores(
      &a[s * layout.attr_len()..][..layout.attr_len()],
      &mut scores,
    );
    for (run, sum) in sums.iter_mut().enumerate() {
      subset(
        seed,
        first_sample + s as u64,
        run as u64,
        features,
        subset_size,
        &mut idx,
      );
      *sum = idx.iter().map(|&i| f64::from(scores[i as usize])).sum();
    }
  }
  Ok(out)
}

/// What replaces the features of a group.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum GroupFill {
  /// The sample's baseline snapshot.
  Baseline,
  /// One scalar per `(sample, group, repetition)`:
  /// `low + (high − low) · Rng::keyed(seed, sample, Perturbation, group · reps + rep).uniform()`.
  Uniform {
    low: f64,
    high: f64,
    seed: u64,
    reps: u64,
  },
}

/// The scalar of [`GroupFill::Uniform`] for global sample `sample`, group and repetition.
pub fn group_uniform(low: f64, high: f64, seed: u64, sample: u64, step: u64) -> f32 {
  (low + (high - low) * Rng::keyed(seed, sample, Purpose::Perturbation, step).uniform()) as f32
}

/// Ranked position `k` of a sample's order (descending), counted from the end when `ascending`.
#[inline]
fn ranked(order: &[u32], k: usize, ascending: bool) -> usize {
  if ascending {
    order[order.len() - 1 - k] as usize
  } else {
    order[k] as usize
  }
}

/// Inputs of the group rows: data, baseline snapshots and descending feature orders (sums and
/// Quantus's Monotonicity rows read only the orders: `x` and `baselines` may be empty there).
pub struct Groups<'a> {
  pub x: &'a [f32],
  pub baselines: &'a [f32],
  /// Descending orders `[samples, F]` (see [`crate::order`]).
  pub order: &'a [u32],
  pub samples: usize,
  pub layout: Layout,
  /// Features per group; the last group may be shorter.
  pub group_size: usize,
  /// Groups of the least relevant features first.
  pub ascending: bool,
  pub first_sample: u64,
}

impl Groups<'_> {
  /// Number of groups, `⌈F / group_size⌉`.
  pub fn groups(&self) -> usize {
    self.layout.features().div_ceil(self.group_size.max(1))
  }

  /// Checks the inputs of the rows: `x`, `baselines` and what [`Self::validate_order`] checks.
  fn validate(&self) -> Result<()> {
    let row = self.layout.row_len();
    expect_len("x", self.x.len(), self.samples * row)?;
    expect_len("baselines", self.baselines.len(), self.samples * row)?;
    self.validate_order()
  }

  /// Checks the orders and the group size (all that sums and Quantus's rows read).
  fn validate_order(&self) -> Result<()> {
    expect_len(
      "order",
      self.order.len(),
      self.samples * self.layout.features(),
    )?;
    if self.group_size == 0 || self.group_size > self.layout.features() {
      return Err(CoreError::param(
        "featuresInStep",
        format!(
          "expected 1 ≤ featuresInStep ≤ F = {}, got {}",
          self.layout.features(),
          self.group_size
        ),
      ));
    }
    Ok(())
  }

  /// Ranked positions `[start, end)` of group `g`.
  fn span(&self, g: usize) -> (usize, usize) {
    let f = self.layout.features();
    (
      (g * self.group_size).min(f),
      ((g + 1) * self.group_size).min(f),
    )
  }
}

/// Fills `out` with one row per `(sample, group, rep)` triple: the sample's input with only the
/// features of that group (non-cumulative) replaced as `fill` says.
///
/// # Errors
/// `SHAPE_MISMATCH` for inconsistent lengths; `INVALID_OPTION` for a bad group size or a triple
/// out of range.
pub fn fill_group_rows(
  src: &Groups,
  fill: GroupFill,
  triples: &[u32],
  out: &mut [f32],
) -> Result<()> {
  src.validate()?;
  if !triples.len().is_multiple_of(3) {
    return Err(CoreError::shape(
      "rows",
      "(sample, group, rep) triples",
      triples.len(),
    ));
  }
  let row_len = src.layout.row_len();
  let features = src.layout.features();
  expect_len("out", out.len(), triples.len() / 3 * row_len)?;
  let groups = src.groups();
  for (t, row) in triples.chunks_exact(3).zip(out.chunks_exact_mut(row_len)) {
    let (s, g, rep) = (t[0] as usize, t[1] as usize, u64::from(t[2]));
    let rep_ok = match fill {
      GroupFill::Uniform { reps, .. } => rep < reps,
      GroupFill::Baseline => true,
    };
    if s >= src.samples || g >= groups || !rep_ok {
      return Err(CoreError::param("rows", format!("row {t:?} out of range")));
    }
    row.copy_from_slice(&src.x[s * row_len..][..row_len]);
    let order = &src.order[s * features..][..features];
    let (start, end) = src.span(g);
    match fill {
      GroupFill::Baseline => {
        let b = &src.baselines[s * row_len..][..row_len];
        for k in start..end {
          src
            .layout
            .for_each_index(ranked(order, k, src.ascending), |i| row[i] = b[i]);
        }
      }
      GroupFill::Uniform {
        low,
        high,
        seed,
        reps,
      } => {
        let sample = src.first_sample + s as u64;
        let v = group_uniform(low, high, seed, sample, g as u64 * reps + rep);
        for k in start..end {
          src
            .layout
            .for_each_index(ranked(order, k, src.ascending), |i| row[i] = v);
        }
      }
    }
  }
  Ok(())
}

/// `[samples, groups]` sums of the feature attributions (`|a|` with `abs`) over each group of
/// [`fill_group_rows`].
///
/// # Errors
/// As [`fill_group_rows`]; `NON_FINITE` for NaN/Inf in `a`.
pub fn group_sums(src: &Groups, a: &[f32], abs: bool) -> Result<Vec<f64>> {
  src.validate_order()?;
  expect_len("a", a.len(), src.samples * src.layout.attr_len())?;
  check_finite("a", a)?;
  let features = src.layout.features();
  let groups = src.groups();
  let mut scores = vec![0f32; features];
  let mut out = vec![0f64; src.samples * groups];
  for (s, sums) in out.chunks_exact_mut(groups).enumerate() {
    let attr = &a[s * src.layout.attr_len()..][..src.layout.attr_len()];
    src.layout.feature_scores(attr, &mut scores);
    let order = &src.order[s * features..][..features];
    for (g, sum) in sums.iter_mut().enumerate() {
      let (start, end) = src.span(g);
      *sum = (start..end)
        .map(|k| {
          let v = f64::from(scores[ranked(order, k, src.ascending)]);
          if abs {
            v.abs()
          } else {
            v
          }
        })
        .sum();
    }
  }
  Ok(out)
}

/// Quantus 0.6.0's Monotonicity rows for a uniform baseline, one per `(sample, step)` pair: every
/// entry starts at `u(0)`, and the groups `0..=step` of the ascending order are set, group `j` to
/// `u(j + 1)`, with `u(m) = low + (high − low) · Rng::keyed(seed, sample, Perturbation, m).uniform()`
/// (Quantus never puts the input back: a row holds no entry of `x`).
///
/// # Errors
/// `SHAPE_MISMATCH` for inconsistent lengths; `INVALID_OPTION` for a pair out of range.
pub fn fill_quantus_monotonicity_rows(
  src: &Groups,
  low: f64,
  high: f64,
  seed: u64,
  pairs: &[u32],
  out: &mut [f32],
) -> Result<()> {
  src.validate_order()?;
  if !pairs.len().is_multiple_of(2) {
    return Err(CoreError::shape(
      "rows",
      "(sample, step) pairs",
      pairs.len(),
    ));
  }
  let row_len = src.layout.row_len();
  let features = src.layout.features();
  expect_len("out", out.len(), pairs.len() / 2 * row_len)?;
  let groups = src.groups();
  for (p, row) in pairs.chunks_exact(2).zip(out.chunks_exact_mut(row_len)) {
    let (s, step) = (p[0] as usize, p[1] as usize);
    if s >= src.samples || step >= groups {
      return Err(CoreError::param("rows", format!("row {p:?} out of range")));
    }
    let sample = src.first_sample + s as u64;
    row.fill(group_uniform(low, high, seed, sample, 0));
    let order = &src.order[s * features..][..features];
    for g in 0..=step {
      let v = group_uniform(low, high, seed, sample, g as u64 + 1);
      let (start, end) = src.span(g);
      for k in start..end {
        src
          .layout
          .for_each_index(ranked(order, k, src.ascending), |i| row[i] = v);
      }
    }
  }
  Ok(())
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::layout::FeatureUnit;

  #[test]
  fn subset_rows_replace_exactly_the_keyed_subset() {
    let x: Vec<f32> = (0..20).map(|v| v as f32).collect();
    let b = vec![-1.0; 20];
    let mut out = vec![0.0; 2 * 10];
    fill_subset_rows(&x, &b, 2, 10, 7, 2, 4, &[1, 2, 0, 0], &mut out).unwrap();
    // Global sample 3, run 2: pinned in rng.rs as [9, 4, 5, 1].
    let replaced: Vec<usize> = (0..10).filter(|&i| out[i] == -1.0).collect();
    assert_eq!(replaced, [1, 4, 5, 9]);
    assert_eq!(out[0], 10.0);
    assert_eq!(out[10..].iter().filter(|&&v| v == -1.0).count(), 4);
    assert_eq!(
      fill_subset_rows(&x, &b, 2, 10, 7, 2, 10, &[0, 0], &mut out[..10])
        .unwrap_err()
        .code(),
      "INVALID_OPTION"
    );
  }

  #[test]
  fn subset_sums_follow_the_same_subsets() {
    let l = Layout::new(1, 10, 1, FeatureUnit::Entry).unwrap();
    let a: Vec<f32> = (0..20).map(|v| v as f32).collect();
    let sums = subset_sums(&a, 2, &l, 7, 2, 3, 4).unwrap();
    // Global sample 3 is local sample 1 (values 10…19), run 2: entries 9, 4, 5, 1.
    assert_eq!(sums[3 + 2], 19.0 + 14.0 + 15.0 + 11.0);
  }

  #[test]
  fn group_rows_and_sums() {
    let l = Layout::new(1, 5, 1, FeatureUnit::Entry).unwrap();
    let x = [1.0, 2.0, 3.0, 4.0, 5.0];
    let b = [0.0; 5];
    let a = [0.3, 0.1, 0.5, -0.2, 0.4];
    let order = [2, 4, 0, 1, 3];
    let src = Groups {
      x: &x,
      baselines: &b,
      order: &order,
      samples: 1,
      layout: l,
      group_size: 2,
      ascending: false,
      first_sample: 0,
    };
    let mut out = vec![0.0; 3 * 5];
    fill_group_rows(
      &src,
      GroupFill::Baseline,
      &[0, 0, 0, 0, 1, 0, 0, 2, 0],
      &mut out,
    )
    .unwrap();
    assert_eq!(
      out,
      [1.0, 2.0, 0.0, 4.0, 0.0, 0.0, 0.0, 3.0, 4.0, 5.0, 1.0, 2.0, 3.0, 0.0, 5.0]
    );
    let sums = group_sums(&src, &a, false).unwrap();
    assert!((sums[0] - 0.9).abs() < 1e-6 && (sums[1] - 0.4).abs() < 1e-6);
    let up = Groups {
      ascending: true,
      ..src
    };
    let sums = group_sums(&up, &a, true).unwrap();
    assert!((sums[0] - 0.3).abs() < 1e-6 && (sums[1] - 0.7).abs() < 1e-6);
    let fill = GroupFill::Uniform {
      low: 2.0,
      high: 3.0,
      seed: 1,
      reps: 2,
    };
    fill_group_rows(&up, fill, &[0, 1, 1], &mut out[..5]).unwrap();
    let v = group_uniform(2.0, 3.0, 1, 0, 3);
    assert_eq!(out[..5], [v, 2.0, 3.0, 4.0, v]);
  }

  #[test]
  fn quantus_monotonicity_rows_hold_no_input() {
    let l = Layout::new(1, 4, 1, FeatureUnit::Entry).unwrap();
    let x = [9.0; 4];
    let order = [0, 1, 2, 3];
    let src = Groups {
      x: &x,
      baselines: &x,
      order: &order,
      samples: 1,
      layout: l,
      group_size: 2,
      ascending: true,
      first_sample: 5,
    };
    let mut out = vec![0.0; 8];
    fill_quantus_monotonicity_rows(&src, 0.0, 1.0, 0, &[0, 0, 0, 1], &mut out).unwrap();
    let u = |m| group_uniform(0.0, 1.0, 0, 5, m);
    assert_eq!(out, [u(0), u(0), u(1), u(1), u(2), u(2), u(1), u(1)]);
  }
}
