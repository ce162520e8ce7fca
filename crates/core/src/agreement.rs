//! How well an estimate of explanation quality agrees with the truth: the measures of the Quality
//! Gap Estimator's paper (§4, `2-measure-performance.py`), over the values of one input's many
//! random explanations, and the random baselines QB_K it compares QGE with.

use crate::correlation::{kendall_tau_b, ordered_pairs, spearman};
use crate::error::{expect_len, CoreError, Result};
use crate::rng::{Purpose, Rng};

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
    spearman(truth, estimate).0,
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
  if methods == 0 || scores.is_empty() || reps == 0 || !scores.len().is_multiple_of(methods) {
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
