//! Comparing explanation methods on per-sample scores: a percentile bootstrap confidence interval
//! of the mean and a paired sign-flip permutation test, both seeded through `Rng::keyed`
//! (`Purpose::Resample`; the sample slot holds the caller's key of the comparison).

use crate::error::{CoreError, Result};
use crate::rng::{Purpose, Rng};

fn finite(values: &[f64]) -> Vec<f64> {
  values.iter().copied().filter(|v| v.is_finite()).collect()
}

/// `[lo, hi]` of the percentile bootstrap interval of the mean of the finite `values` at
/// `confidence`: `resamples` means of draws with replacement, each resample `r` keyed by
/// `(seed, key, Resample, r)`; quantiles by linear interpolation. NaN for no finite value.
pub fn bootstrap_ci(
  values: &[f64],
  resamples: usize,
  confidence: f64,
  seed: u64,
  key: u64,
) -> Result<[f64; 2]> {
  if !(confidence > 0.0 && confidence < 1.0) {
    return Err(CoreError::param("confidence", "must be in (0, 1)"));
  }
  if resamples == 0 {
    return Err(CoreError::param("resamples", "must be at least 1"));
  }
  let v = finite(values);
  if v.is_empty() {
    return Ok([f64::NAN, f64::NAN]);
  }
  let n = v.len();
  let mut means: Vec<f64> = (0..resamples)
    .map(|r| {
      let mut rng = Rng::keyed(seed, key, Purpose::Resample, r as u64);
      (0..n).map(|_| v[rng.below(n as u64) as usize]).sum::<f64>() / n as f64
    })
    .collect();
  means.sort_by(f64::total_cmp);
  let q = |p: f64| {
    let pos = p * (resamples - 1) as f64;
    let (i, f) = (pos.floor() as usize, pos - pos.floor());
    means[i] + f * (means[(i + 1).min(resamples - 1)] - means[i])
  };
  let tail = (1.0 - confidence) / 2.0;
  Ok([q(tail), q(1.0 - tail)])
}

/// Two-sided p-value of a paired sign-flip permutation test of mean(a − b) = 0 over the samples
/// where both are finite: `(1 + #{|mean of sign-flipped differences| ≥ |observed|}) / (resamples + 1)`,
/// flips of resample `r` keyed by `(seed, key, Resample, r)`. NaN for no pair.
pub fn paired_permutation_p(
  a: &[f64],
  b: &[f64],
  resamples: usize,
  seed: u64,
  key: u64,
) -> Result<f64> {
  if a.len() != b.len() {
    return Err(CoreError::shape(
      "b",
      format!("{} values", a.len()),
      b.len(),
    ));
  }
  if resamples == 0 {
    return Err(CoreError::param("resamples", "must be at least 1"));
  }
  let d: Vec<f64> = a
    .iter()
    .zip(b)
    .filter(|(x, y)| x.is_finite() && y.is_finite())
    .map(|(x, y)| x - y)
    .collect();
  if d.is_empty() {
    return Ok(f64::NAN);
  }
  let observed = d.iter().sum::<f64>().abs();
  // A tolerance for sums that differ only by rounding of the same terms in another order.
  let tol = 1e-12 * d.iter().map(|v| v.abs()).sum::<f64>();
  let extreme = (0..resamples)
    .filter(|&r| {
      let mut rng = Rng::keyed(seed, key, Purpose::Resample, r as u64);
      let s: f64 = d
        .iter()
        .map(|&v| if rng.next_u64() >> 63 == 1 { -v } else { v })
        .sum();
      s.abs() >= observed - tol
    })
    .count();
  Ok((1 + extreme) as f64 / (resamples + 1) as f64)
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn bootstrap_interval_brackets_the_mean_and_is_keyed() {
    let v: Vec<f64> = (0..50).map(|i| (i % 7) as f64).collect();
    let mean = v.iter().sum::<f64>() / 50.0;
    let [lo, hi] = bootstrap_ci(&v, 2000, 0.95, 1, 3).unwrap();
    assert!(lo < mean && mean < hi);
    // Standard error ≈ 2/√50 ≈ 0.28: the 95 % interval is about ±0.55 wide.
    assert!((hi - lo - 2.0 * 1.96 * 0.2828).abs() < 0.15, "{lo} {hi}");
    assert_eq!(bootstrap_ci(&v, 2000, 0.95, 1, 3).unwrap(), [lo, hi]);
    assert_ne!(bootstrap_ci(&v, 2000, 0.95, 1, 4).unwrap(), [lo, hi]);
    let constant = bootstrap_ci(&[2.0, 2.0, f64::NAN], 10, 0.9, 0, 0).unwrap();
    assert_eq!(constant, [2.0, 2.0]);
    assert!(bootstrap_ci(&[f64::NAN], 10, 0.9, 0, 0).unwrap()[0].is_nan());
    assert_eq!(
      bootstrap_ci(&v, 10, 1.0, 0, 0).unwrap_err().code(),
      "INVALID_OPTION"
    );
  }

  #[test]
  fn permutation_test_separates_a_shift_from_noise() {
    let a: Vec<f64> = (0..40).map(|i| ((i * 37) % 11) as f64).collect();
    let shifted: Vec<f64> = a.iter().map(|v| v + 1.0).collect();
    let p = paired_permutation_p(&shifted, &a, 999, 0, 1).unwrap();
    assert!((p - 0.001).abs() < 1e-12, "{p}"); // every flip has a smaller |sum|
    let same = paired_permutation_p(&a, &a, 999, 0, 1).unwrap();
    assert_eq!(same, 1.0);
    assert_eq!(
      paired_permutation_p(&a, &a[1..], 9, 0, 0)
        .unwrap_err()
        .code(),
      "SHAPE_MISMATCH"
    );
  }
}
