//! Localisation statistics: how an attribution map sits on a ground-truth object mask (pointing
//! game, relevance mass and rank accuracy, top-k intersection, attribution localisation, ROC AUC).
//! No model is involved; each sample is one pass (or one sort) over its `H·W` pixels.
//!
//! A pixel's relevance is the sum over the attribution's channels of the transformed values
//! (identity, `|a|`, or `max(a, 0)`), so a `[N, 1, H, W]` map is used as is.

use crate::error::{check_finite, expect_len, CoreError, Result};

/// What is done to every attribution value before the channels are summed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transform {
  Identity,
  Abs,
  /// `max(a, 0)`: positive relevance only.
  Positive,
}

/// Which statistic to compute per sample, and the columns it writes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stat {
  /// `[hit, maxLocation, tiedMaxima, maskSize]`. The maximum is the first maximal pixel in
  /// row-major order; it hits when a mask pixel lies within Euclidean distance `tolerance` of it.
  /// `any_tie` (Quantus): a hit when any tied maximum lies inside the mask (no tolerance).
  Pointing { tolerance: f64, any_tie: bool },
  /// `[inside, total, maskSize]`: relevance inside the mask and in the whole map.
  Mass,
  /// `[hits, maskSize]`: mask pixels among the `maskSize` most relevant pixels (ties to the lower index).
  Rank,
  /// `[hits, k', maskSize]`: mask pixels among the `k' = min(k, H·W)` most relevant pixels.
  TopK { k: usize },
  /// `[auc, maskSize]`: ROC AUC of the relevance as a score for "inside the mask" (ties count ½).
  Auc,
}

impl Stat {
  pub fn width(&self) -> usize {
    match self {
      Stat::Pointing { .. } => 4,
      Stat::Mass | Stat::TopK { .. } => 3,
      Stat::Rank | Stat::Auc => 2,
    }
  }
}

/// Shape of the inputs: `samples` maps of `attr_channels × height × width` values.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
  pub samples: usize,
  pub attr_channels: usize,
  pub height: usize,
  pub width: usize,
}

/// Per-sample statistics `[samples, stat.width()]` of attributions `a` against `masks`
/// (`[samples, height, width]`, nonzero = inside the object).
pub fn localisation(
  a: &[f32],
  masks: &[u8],
  shape: Shape,
  transform: Transform,
  stat: Stat,
) -> Result<Vec<f64>> {
  let pixels = shape.height * shape.width;
  if pixels == 0 || shape.attr_channels == 0 {
    return Err(CoreError::EmptyInput { arg: "a" });
  }
  expect_len("a", a.len(), shape.samples * shape.attr_channels * pixels)?;
  expect_len("masks", masks.len(), shape.samples * pixels)?;
  check_finite("a", a)?;
  if let Stat::Pointing { tolerance, .. } = stat {
    if !(tolerance.is_finite() && tolerance >= 0.0) {
      return Err(CoreError::param("tolerance", "must be a finite number ≥ 0"));
    }
  }
  let width = stat.width();
  let mut out = vec![0.0; shape.samples * width];
  let mut map = vec![0.0f64; pixels];
  let mut order: Vec<u32> = Vec::new();
  for n in 0..shape.samples {
    let sample = &a[n * shape.attr_channels * pixels..(n + 1) * shape.attr_channels * pixels];
    map.iter_mut().for_each(|v| *v = 0.0);
    for c in 0..shape.attr_channels {
      for (p, m) in map.iter_mut().enumerate() {
        let v = f64::from(sample[c * pixels + p]);
        *m += match transform {
          Transform::Identity => v,
          Transform::Abs => v.abs(),
          Transform::Positive => v.max(0.0),
        };
      }
    }
    let mask = &masks[n * pixels..(n + 1) * pixels];
    let size = mask.iter().filter(|&&m| m != 0).count();
    let row = &mut out[n * width..(n + 1) * width];
    match stat {
      Stat::Pointing { tolerance, any_tie } => {
        let (hit, at, ties) = pointing(&map, mask, shape.width, tolerance, any_tie);
        row.copy_from_slice(&[
          f64::from(u8::from(hit)),
          at as f64,
          ties as f64,
          size as f64,
        ]);
      }
      Stat::Mass => {
        let inside: f64 = map
          .iter()
          .zip(mask)
          .filter(|(_, &m)| m != 0)
          .map(|(v, _)| v)
          .sum();
        let total: f64 = map.iter().sum();
        row.copy_from_slice(&[inside, total, size as f64]);
      }
      Stat::Rank => {
        let hits = top_hits(&map, mask, size, &mut order);
        row.copy_from_slice(&[hits as f64, size as f64]);
      }
      Stat::TopK { k } => {
        let k = k.min(pixels);
        let hits = top_hits(&map, mask, k, &mut order);
        row.copy_from_slice(&[hits as f64, k as f64, size as f64]);
      }
      Stat::Auc => row.copy_from_slice(&[roc_auc(&map, mask), size as f64]),
    }
  }
  Ok(out)
}

/// `(hit, location of the first maximum, number of tied maxima)`.
fn pointing(
  map: &[f64],
  mask: &[u8],
  width: usize,
  tolerance: f64,
  any_tie: bool,
) -> (bool, usize, usize) {
  let max = map.iter().copied().fold(f64::NEG_INFINITY, f64::max);
  let at = map.iter().position(|&v| v == max).unwrap_or(0);
  let ties = map.iter().filter(|&&v| v == max).count();
  if any_tie {
    let hit = map.iter().zip(mask).any(|(&v, &m)| v == max && m != 0);
    return (hit, at, ties);
  }
  let height = map.len() / width;
  let (r0, c0) = ((at / width) as i64, (at % width) as i64);
  let reach = tolerance.floor() as i64;
  let hit = (r0 - reach).max(0)..=(r0 + reach).min(height as i64 - 1);
  let hit = hit.into_iter().any(|r| {
    ((c0 - reach).max(0)..=(c0 + reach).min(width as i64 - 1)).any(|c| {
      let (dr, dc) = ((r - r0) as f64, (c - c0) as f64);
      mask[r as usize * width + c as usize] != 0 && dr * dr + dc * dc <= tolerance * tolerance
    })
  });
  (hit, at, ties)
}

/// Mask pixels among the `k` most relevant pixels (descending, ties to the lower index).
fn top_hits(map: &[f64], mask: &[u8], k: usize, order: &mut Vec<u32>) -> usize {
  order.clear();
  order.extend(0..map.len() as u32);
  // A stable sort keeps equal values in index order.
  order.sort_by(|&i, &j| map[j as usize].total_cmp(&map[i as usize]));
  order[..k]
    .iter()
    .filter(|&&p| mask[p as usize] != 0)
    .count()
}

/// ROC AUC = Mann–Whitney U / (positives · negatives), with average ranks for ties (the area
/// under the ROC curve through every distinct threshold, as `sklearn.metrics.roc_curve` + `auc`).
/// NaN when the mask is empty or covers the whole map.
fn roc_auc(map: &[f64], mask: &[u8]) -> f64 {
  let positives = mask.iter().filter(|&&m| m != 0).count();
  let negatives = map.len() - positives;
  if positives == 0 || negatives == 0 {
    return f64::NAN;
  }
  let mut order: Vec<u32> = (0..map.len() as u32).collect();
  order.sort_by(|&i, &j| map[i as usize].total_cmp(&map[j as usize]));
  let mut rank_sum = 0.0;
  let mut i = 0;
  while i < order.len() {
    let mut j = i;
    while j + 1 < order.len() && map[order[j + 1] as usize] == map[order[i] as usize] {
      j += 1;
    }
    let rank = (i + j) as f64 / 2.0 + 1.0;
    rank_sum += rank
      * order[i..=j]
        .iter()
        .filter(|&&p| mask[p as usize] != 0)
        .count() as f64;
    i = j + 1;
  }
  let (p, q) = (positives as f64, negatives as f64);
  (rank_sum - p * (p + 1.0) / 2.0) / (p * q)
}

#[cfg(test)]
mod tests {
  use super::*;

  const SHAPE: Shape = Shape {
    samples: 1,
    attr_channels: 1,
    height: 3,
    width: 3,
  };

  fn run(a: &[f32], mask: &[u8], stat: Stat) -> Vec<f64> {
    localisation(a, mask, SHAPE, Transform::Identity, stat).unwrap()
  }

  #[test]
  fn pointing_hits_within_tolerance_only() {
    let a = [0.0, 0.0, 9.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
    let mask = [0, 0, 0, 0, 0, 0, 1, 0, 0]; // pixel (2, 0); max at (0, 2): distance √8
    let stat = |tolerance| Stat::Pointing {
      tolerance,
      any_tie: false,
    };
    assert_eq!(run(&a, &mask, stat(2.0)), vec![0.0, 2.0, 1.0, 1.0]);
    assert_eq!(run(&a, &mask, stat(2.9))[0], 1.0);
  }

  #[test]
  fn pointing_ties_first_maximum_or_any() {
    let a = [5.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 5.0];
    let mask = [0, 0, 0, 0, 0, 0, 0, 0, 1];
    let first = run(
      &a,
      &mask,
      Stat::Pointing {
        tolerance: 0.0,
        any_tie: false,
      },
    );
    assert_eq!(first, vec![0.0, 0.0, 2.0, 1.0]);
    let any = run(
      &a,
      &mask,
      Stat::Pointing {
        tolerance: 0.0,
        any_tie: true,
      },
    );
    assert_eq!(any[0], 1.0);
  }

  #[test]
  fn rank_topk_mass_auc_by_hand() {
    let a = [9.0, 8.0, 1.0, 7.0, 2.0, 3.0, 4.0, 5.0, 6.0];
    let mask = [1, 0, 0, 1, 0, 0, 0, 0, 1]; // values 9, 7, 6
    assert_eq!(run(&a, &mask, Stat::Rank), vec![2.0, 3.0]); // top 3 = 9, 8, 7
    assert_eq!(run(&a, &mask, Stat::TopK { k: 20 }), vec![3.0, 9.0, 3.0]);
    assert_eq!(run(&a, &mask, Stat::Mass), vec![22.0, 45.0, 3.0]);
    // Of the negatives {8, 1, 2, 3, 4, 5}, 9 beats 6, 7 and 6 beat 5 each: U = 16.
    assert_eq!(run(&a, &mask, Stat::Auc), vec![16.0 / 18.0, 3.0]);
  }

  #[test]
  fn auc_counts_ties_half_and_is_nan_for_one_class() {
    let a = [1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
    let mask = [1, 0, 0, 0, 0, 0, 0, 0, 0];
    // The positive beats 7 zeros and ties the other 1: U = 7.5 over 1 · 8 pairs.
    assert_eq!(run(&a, &mask, Stat::Auc)[0], 7.5 / 8.0);
    assert!(run(&a, &[1; 9], Stat::Auc)[0].is_nan());
    assert!(run(&a, &[0; 9], Stat::Auc)[0].is_nan());
  }

  #[test]
  fn sums_transformed_channels_and_refuses_bad_input() {
    let shape = Shape {
      attr_channels: 2,
      ..SHAPE
    };
    let a: Vec<f32> = (0..18)
      .map(|i| {
        if i == 4 {
          3.0
        } else if i == 13 {
          -4.0
        } else {
          0.0
        }
      })
      .collect();
    let mask = [0, 0, 0, 0, 1, 0, 0, 0, 0];
    let abs = localisation(&a, &mask, shape, Transform::Abs, Stat::Mass).unwrap();
    assert_eq!(abs, vec![7.0, 7.0, 1.0]);
    let pos = localisation(&a, &mask, shape, Transform::Positive, Stat::Mass).unwrap();
    assert_eq!(pos, vec![3.0, 3.0, 1.0]);
    let mut bad = a.clone();
    bad[3] = f32::NAN;
    assert_eq!(
      localisation(&bad, &mask, shape, Transform::Abs, Stat::Mass)
        .unwrap_err()
        .code(),
      "NON_FINITE"
    );
    assert_eq!(
      localisation(&a[1..], &mask, shape, Transform::Abs, Stat::Mass)
        .unwrap_err()
        .code(),
      "SHAPE_MISMATCH"
    );
    let stat = Stat::Pointing {
      tolerance: -1.0,
      any_tie: false,
    };
    assert_eq!(
      localisation(&a, &mask, shape, Transform::Abs, stat)
        .unwrap_err()
        .code(),
      "INVALID_OPTION"
    );
  }
}
