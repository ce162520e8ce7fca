//! Stable feature ranking: most important first, ties broken by the lower feature index.
//!
//! Quantus sorts with numpy's unstable quicksort (quantus-semantics §0.3), so its tie order is an
//! accident of the implementation; SRG (Quantus PR #374) and xai-eval use a stable order, and LIF
//! is the *exact reverse* of MIF so that both curves see the same tie-breaking.

use crate::error::{check_finite, checked_len, expect_len, zeroed, CoreError, Result};
use crate::layout::Layout;

/// Ranks the features of one sample: `out[r]` is the index of the feature of rank `r`.
/// With `abs`, features rank by `|a|`. Assumes finite scores.
pub fn rank(scores: &[f32], abs: bool, out: &mut [u32]) {
  rank_with(scores, abs, &mut Vec::new(), out);
}

/// Sort key of a finite score: integers in the scores' order (−0 and +0 alike), so ranking is a
/// plain integer sort.
fn ordered(v: f32) -> u32 {
  let bits = (v + 0.0).to_bits(); // −0 + 0 = +0
  if bits >> 31 == 1 {
    !bits
  } else {
    bits | 1 << 31
  }
}

/// [`rank`] with a reusable buffer for the keys. Each key packs the descending score (high half)
/// and the feature index (low half), so an unstable sort of the keys is the stable descending
/// order, ties to the lower index; integer keys sort several times faster than comparing floats
/// through a closure (this sort is most of `prepare`'s time on the small CNN).
fn rank_with(scores: &[f32], abs: bool, keys: &mut Vec<u64>, out: &mut [u32]) {
  keys.clear();
  keys.extend(scores.iter().enumerate().map(|(i, &v)| {
    let v = if abs { v.abs() } else { v };
    (u64::from(!ordered(v)) << 32) | i as u64
  }));
  keys.sort_unstable();
  for (o, k) in out.iter_mut().zip(keys.iter()) {
    *o = *k as u32;
  }
}

/// Orders for `n` samples: `[n, F]` feature indices, `F = layout.features()`.
///
/// # Errors
/// `SHAPE_MISMATCH` if `a` is not `n · layout.attr_len()` long; `NON_FINITE` for NaN/Inf in `a`;
/// `INVALID_OPTION` (`layout`) for more features than a `u32` index can name.
pub fn rank_batch(a: &[f32], n: usize, layout: &Layout, abs: bool) -> Result<Vec<u32>> {
  expect_len("a", a.len(), checked_len("a", n, layout.attr_len())?)?;
  check_finite("a", a)?;
  let f = layout.features();
  if u32::try_from(f).is_err() {
    return Err(CoreError::param(
      "layout",
      format!("{f} features per sample; orders index them with u32"),
    ));
  }
  let mut order = zeroed("order", checked_len("order", n, f)?)?;
  let mut scores = vec![0f32; f];
  let mut keys = Vec::with_capacity(f);
  for (sample_a, sample_order) in a.chunks(layout.attr_len().max(1)).zip(order.chunks_mut(f)) {
    layout.feature_scores(sample_a, &mut scores);
    rank_with(&scores, abs, &mut keys, sample_order);
  }
  Ok(order)
}

#[cfg(test)]
mod tests {
  use std::cmp::Ordering;

  use super::*;
  use crate::layout::FeatureUnit;

  fn ranked(scores: &[f32], abs: bool) -> Vec<u32> {
    let mut out = vec![0; scores.len()];
    rank(scores, abs, &mut out);
    out
  }

  #[test]
  fn descending_with_ties_to_lower_index() {
    assert_eq!(ranked(&[0.5, 2.0, 0.5, -1.0, 2.0], false), [1, 4, 0, 2, 3]);
  }

  #[test]
  fn abs_ranks_by_magnitude() {
    assert_eq!(ranked(&[0.5, -3.0, 1.0], true), [1, 2, 0]);
  }

  /// The comparator sort the integer keys replace, as the reference.
  fn by_comparison(scores: &[f32], abs: bool) -> Vec<u32> {
    let key = |i: u32| {
      if abs {
        scores[i as usize].abs()
      } else {
        scores[i as usize]
      }
    };
    let mut out: Vec<u32> = (0..scores.len() as u32).collect();
    out.sort_by(|&i, &j| {
      key(j)
        .partial_cmp(&key(i))
        .unwrap_or(Ordering::Equal)
        .then(i.cmp(&j))
    });
    out
  }

  #[test]
  fn integer_keys_agree_with_the_float_comparison() {
    // Seeded scores with many ties, both signs, zeros of both signs, tiny and huge magnitudes.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = || {
      state ^= state << 13;
      state ^= state >> 7;
      state ^= state << 17;
      state
    };
    let pool = [
      0.0,
      -0.0,
      1.0,
      -1.0,
      0.5,
      -0.5,
      1e-30,
      -1e-30,
      3e38,
      -3e38,
      f32::MIN_POSITIVE,
      2.5,
    ];
    for _ in 0..200 {
      let n = (next() % 300) as usize;
      let scores: Vec<f32> = (0..n)
        .map(|_| {
          let r = next();
          if r % 3 == 0 {
            pool[(r >> 8) as usize % pool.len()]
          } else {
            ((r >> 11) as f64 / (1u64 << 53) as f64 * 8.0 - 4.0) as f32
          }
        })
        .collect();
      for abs in [false, true] {
        assert_eq!(
          ranked(&scores, abs),
          by_comparison(&scores, abs),
          "{scores:?} abs={abs}"
        );
      }
    }
  }

  #[test]
  fn signed_zeros_tie() {
    assert_eq!(ranked(&[-0.0, 0.0, -0.0], false), [0, 1, 2]);
  }

  #[test]
  fn broadcast_copies_are_adjacent_in_channel_order() {
    let l = Layout::new(2, 3, 1, FeatureUnit::Entry).unwrap();
    let order = rank_batch(&[0.1, 0.9, 0.5], 1, &l, false).unwrap();
    assert_eq!(order, [1, 4, 2, 5, 0, 3]);
  }

  #[test]
  fn non_finite_attribution_is_reported_with_index() {
    let l = Layout::new(1, 3, 1, FeatureUnit::Entry).unwrap();
    let err = rank_batch(&[0.1, f32::NAN, 0.5], 1, &l, false).unwrap_err();
    assert_eq!(err.code(), "NON_FINITE");
  }

  #[test]
  fn more_features_than_u32_can_name_is_an_error() {
    let l = Layout::new(1 << 33, 1, 1, FeatureUnit::Entry).unwrap();
    let err = rank_batch(&[], 0, &l, false).unwrap_err();
    assert_eq!((err.code(), err.arg()), ("INVALID_OPTION", "layout"));
  }
}
