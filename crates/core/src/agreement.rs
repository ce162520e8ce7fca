//! How well an estimate of explanation quality agrees with the truth: the measures of the Quality
//! Gap Estimator's paper (§4, `2-measure-performance.py`), over the values of one input's many
//! random explanations. Kendall's τ-b comes from the `kendalls` crate (an O(n log n)
//! implementation of Knight's algorithm); Spearman's ρ is Pearson's r of average ranks.

use crate::error::{expect_len, CoreError, Result};
use crate::rng::{Purpose, Rng};

/// Average ranks (1-based; tied values share the mean of their ranks), as scipy's `rankdata`.
pub fn average_ranks(v: &[f64]) -> Vec<f64> {
  let mut idx: Vec<usize> = (0..v.len()).collect();
  idx.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
  let mut ranks = vec![0.0; v.len()];
  let mut i = 0;
  while i < idx.len() {
    let mut j = i + 1;
    while j < idx.len() && v[idx[j]] == v[idx[i]] {
      j += 1;
    }
    let rank = (i + j + 1) as f64 / 2.0; // mean of ranks i+1 … j
    idx[i..j].iter().for_each(|&k| ranks[k] = rank);
    i = j;
  }
  ranks
}

/// Pearson's r (NaN when either side is constant).
pub fn pearson(a: &[f64], b: &[f64]) -> f64 {
  let n = a.len() as f64;
  let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
  let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
  for (x, y) in a.iter().zip(b) {
    let (dx, dy) = (x - ma, y - mb);
    sab += dx * dy;
    saa += dx * dx;
    sbb += dy * dy;
  }
  if saa == 0.0 || sbb == 0.0 {
    f64::NAN
  } else {
    sab / (saa * sbb).sqrt()
  }
}

/// Spearman's ρ: Pearson's r of the average ranks.
pub fn spearman(a: &[f64], b: &[f64]) -> f64 {
  pearson(&average_ranks(a), &average_ranks(b))
}

/// Kendall's τ-b (NaN for fewer than two values or a constant side).
pub fn kendall_tau_b(a: &[f64], b: &[f64]) -> f64 {
  kendalls::tau_b_with_comparator(a, b, |x: &f64, y: &f64| x.total_cmp(y))
    .map_or(f64::NAN, |(tau, _)| tau)
}

/// The share of pairs the estimate orders as the truth does, over all pairs the truth does not
/// tie (the exact value of the paper's sampled "correct orderings"; a tie in the estimate counts
/// as wrong). NaN when the truth ties every pair.
pub fn ordered_pairs(truth: &[f64], estimate: &[f64]) -> f64 {
  let (mut right, mut pairs) = (0u64, 0u64);
  for i in 0..truth.len() {
    for j in i + 1..truth.len() {
      let t = truth[i].total_cmp(&truth[j]);
      if t.is_ne() {
        pairs += 1;
        right += u64::from(estimate[i].total_cmp(&estimate[j]) == t);
      }
    }
  }
  if pairs == 0 {
    f64::NAN
  } else {
    right as f64 / pairs as f64
  }
}

/// Kendall's τ-b, Spearman's ρ and the ordered-pair share of `estimate` against `truth`.
///
/// # Errors
/// `SHAPE_MISMATCH` for arrays of different lengths, `NON_FINITE` for NaN/Inf.
pub fn agreement(truth: &[f64], estimate: &[f64]) -> Result<[f64; 3]> {
  expect_len("estimate", estimate.len(), truth.len())?;
  if let Some(i) = truth.iter().chain(estimate).position(|v| !v.is_finite()) {
    return Err(CoreError::NonFinite {
      arg: if i < truth.len() { "truth" } else { "estimate" },
      index: i % truth.len().max(1),
    });
  }
  Ok([
    kendall_tau_b(truth, estimate),
    spearman(truth, estimate),
    ordered_pairs(truth, estimate),
  ])
}

/// The random baseline QB_K of every value of `q` (one input's metric values over its random
/// explanations): `q[i]` minus the mean of `k` values drawn uniformly with replacement from `q`
/// (the draw may pick `i` itself, as in the paper's code). Draw `i` of sample `sample` comes from
/// `Rng::keyed(seed, sample, Purpose::Resample, i)`, so it does not change with `k`'s neighbours.
///
/// # Errors
/// `INVALID_OPTION` for an empty `q` or `k = 0`.
pub fn random_baseline_gaps(q: &[f64], k: usize, seed: u64, sample: u64) -> Result<Vec<f64>> {
  if q.is_empty() || k == 0 {
    return Err(CoreError::param(
      "k",
      "needs at least one value and one draw",
    ));
  }
  Ok(
    q.iter()
      .enumerate()
      .map(|(i, &qi)| {
        let mut rng = Rng::keyed(seed, sample, Purpose::Resample, i as u64);
        let sum: f64 = (0..k).map(|_| q[rng.below(q.len() as u64) as usize]).sum();
        qi - sum / k as f64
      })
      .collect(),
  )
}

/// Paired bootstrap of per-sample scores: `scores` is `[methods, n]` row-major (finite values; the
/// caller drops samples where any method is undefined). Replicate `r` draws `n` sample indices
/// with replacement from `Rng::keyed(seed, r, Purpose::Resample, 0)` and takes every method's mean
/// over the SAME indices, so differences between methods are paired. Returns `[reps, methods]`.
///
/// # Errors
/// `INVALID_OPTION` for no methods, no samples, no replicates or a length that is not `methods × n`.
pub fn bootstrap_means(scores: &[f64], methods: usize, reps: usize, seed: u64) -> Result<Vec<f64>> {
  if methods == 0 || scores.is_empty() || reps == 0 || scores.len() % methods != 0 {
    return Err(CoreError::param(
      "scores",
      "needs methods × n values with n ≥ 1, and at least one replicate",
    ));
  }
  let n = scores.len() / methods;
  let mut out = vec![0.0; reps * methods];
  let mut pick = vec![0usize; n];
  for (r, means) in out.chunks_exact_mut(methods).enumerate() {
    let mut rng = Rng::keyed(seed, r as u64, Purpose::Resample, 0);
    for p in pick.iter_mut() {
      *p = rng.below(n as u64) as usize;
    }
    for (m, mean) in means.iter_mut().enumerate() {
      let row = &scores[m * n..(m + 1) * n];
      *mean = pick.iter().map(|&i| row[i]).sum::<f64>() / n as f64;
    }
  }
  Ok(out)
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn average_ranks_share_ties() {
    assert_eq!(
      average_ranks(&[10.0, 20.0, 10.0, 5.0]),
      vec![2.5, 4.0, 2.5, 1.0]
    );
  }

  #[test]
  fn hand_worked_correlations() {
    let t = [1.0, 2.0, 3.0, 4.0];
    assert_eq!(spearman(&t, &[10.0, 20.0, 30.0, 40.0]), 1.0);
    assert_eq!(spearman(&t, &[4.0, 3.0, 2.0, 1.0]), -1.0);
    assert_eq!(kendall_tau_b(&t, &[1.0, 2.0, 4.0, 3.0]), 4.0 / 6.0); // 5 concordant, 1 discordant
                                                                     // one swap of six pairs
    assert_eq!(ordered_pairs(&t, &[1.0, 2.0, 4.0, 3.0]), 5.0 / 6.0);
    assert!(spearman(&t, &[1.0; 4]).is_nan());
    // τ-b with ties: x = [1, 2, 2, 3], y = [1, 2, 3, 4]: 5 concordant, 0 discordant, one tie in x
    let tau = kendall_tau_b(&[1.0, 2.0, 2.0, 3.0], &t);
    assert!((tau - 5.0 / (5.0f64 * 6.0).sqrt()).abs() < 1e-12, "{tau}");
  }

  #[test]
  fn random_baseline_gaps_are_keyed_and_centred() {
    let q: Vec<f64> = (0..50).map(f64::from).collect();
    let a = random_baseline_gaps(&q, 3, 1, 7).unwrap();
    assert_eq!(a, random_baseline_gaps(&q, 3, 1, 7).unwrap());
    assert_ne!(a, random_baseline_gaps(&q, 3, 1, 8).unwrap());
    // with many draws the baseline approaches the pool mean (24.5)
    let many = random_baseline_gaps(&q, 5000, 1, 7).unwrap();
    assert!((many[0] + 24.5).abs() < 1.0, "{}", many[0]);
    assert_eq!(random_baseline_gaps(&q, 0, 1, 7).unwrap_err().arg(), "k");
  }

  #[test]
  fn agreement_checks_its_inputs() {
    assert_eq!(
      agreement(&[1.0, 2.0], &[1.0]).unwrap_err().code(),
      "SHAPE_MISMATCH"
    );
    assert_eq!(
      agreement(&[1.0, f64::NAN], &[1.0, 2.0]).unwrap_err().code(),
      "NON_FINITE"
    );
    assert_eq!(
      agreement(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]).unwrap(),
      [-1.0, -1.0, 0.0]
    );
  }
  #[test]
  fn bootstrap_means_are_paired_and_keyed() {
    // Two methods whose scores differ by exactly 1 on every sample: every replicate's difference is 1.
    let scores = [1.0, 2.0, 3.0, 4.0, 2.0, 3.0, 4.0, 5.0];
    let b = bootstrap_means(&scores, 2, 50, 7).unwrap();
    assert_eq!(b.len(), 100);
    for r in b.chunks_exact(2) {
      assert!((r[1] - r[0] - 1.0).abs() < 1e-12);
      assert!((1.0..=4.0).contains(&r[0]));
    }
    // Replicate r does not depend on how many replicates are asked for.
    assert_eq!(&bootstrap_means(&scores, 2, 10, 7).unwrap()[..], &b[..20]);
    assert_ne!(
      bootstrap_means(&scores, 2, 10, 8).unwrap(),
      b[..20].to_vec()
    );
    assert!(bootstrap_means(&scores, 3, 10, 7).is_err());
    assert!(bootstrap_means(&[], 1, 10, 7).is_err());
  }
}
