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
}
