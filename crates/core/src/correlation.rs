//! Correlations of two series: Pearson's r, Spearman's ρ (Pearson's r of average ranks, as
//! scipy's `spearmanr`) and Kendall's τ-b (the `kendalls` crate, Knight's O(n log n) algorithm),
//! and the share of pairs two series order alike. The faithfulness metrics correlate attribution
//! sums with the model's changes; the QGE study correlates quality estimates with the truth.
//! An undefined correlation is NaN with its reason ([`Undefined`]), never a silent NaN.

use crate::error::{expect_len, CoreError, Result};

/// Why a correlation is undefined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Undefined {
  Defined = 0,
  /// Fewer than two points.
  TooFew = 1,
  /// The first series is constant.
  ConstantFirst = 2,
  /// The second series is constant.
  ConstantSecond = 3,
  /// A value is NaN or infinite.
  NonFinite = 4,
}

/// Pearson's r of two series (two-pass, centred, in f64), or NaN and the reason.
pub fn pearson(a: &[f64], b: &[f64]) -> (f64, Undefined) {
  let n = a.len().min(b.len());
  if n < 2 {
    return (f64::NAN, Undefined::TooFew);
  }
  if a.iter().chain(b).any(|v| !v.is_finite()) {
    return (f64::NAN, Undefined::NonFinite);
  }
  if a.iter().all(|&v| v == a[0]) {
    return (f64::NAN, Undefined::ConstantFirst);
  }
  if b.iter().all(|&v| v == b[0]) {
    return (f64::NAN, Undefined::ConstantSecond);
  }
  let ma = a.iter().sum::<f64>() / n as f64;
  let mb = b.iter().sum::<f64>() / n as f64;
  let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
  for (&x, &y) in a.iter().zip(b) {
    let (dx, dy) = (x - ma, y - mb);
    sab += dx * dy;
    saa += dx * dx;
    sbb += dy * dy;
  }
  let r = sab / (saa * sbb).sqrt();
  (r.clamp(-1.0, 1.0), Undefined::Defined)
}

/// Ranks 1…n, ties sharing their average rank.
pub fn average_ranks(v: &[f64]) -> Vec<f64> {
  let mut idx: Vec<usize> = (0..v.len()).collect();
  idx.sort_by(|&i, &j| v[i].total_cmp(&v[j]));
  let mut ranks = vec![0f64; v.len()];
  let mut i = 0;
  while i < idx.len() {
    let mut j = i + 1;
    while j < idx.len() && v[idx[j]] == v[idx[i]] {
      j += 1;
    }
    // Positions i..j (0-based) share the mean of ranks i+1..=j.
    let r = (i + 1 + j) as f64 / 2.0;
    idx[i..j].iter().for_each(|&k| ranks[k] = r);
    i = j;
  }
  ranks
}

/// Spearman's ρ: Pearson's r of the average ranks, or NaN and the reason.
pub fn spearman(a: &[f64], b: &[f64]) -> (f64, Undefined) {
  if a.iter().chain(b).any(|v| !v.is_finite()) {
    return (f64::NAN, Undefined::NonFinite);
  }
  pearson(&average_ranks(a), &average_ranks(b))
}

/// Row-wise correlations of `[n, k]` arrays: values and reasons (see [`Undefined`]).
///
/// # Errors
/// `SHAPE_MISMATCH` when the lengths differ or are not a multiple of `k`.
pub fn row_correlations(a: &[f64], b: &[f64], k: usize, rank: bool) -> Result<(Vec<f64>, Vec<u8>)> {
  expect_len("b", b.len(), a.len())?;
  if k == 0 || !a.len().is_multiple_of(k) {
    return Err(CoreError::shape(
      "a",
      format!("a multiple of k = {k}"),
      a.len(),
    ));
  }
  let (values, reasons) = a
    .chunks_exact(k)
    .zip(b.chunks_exact(k))
    .map(|(x, y)| {
      let (r, why) = if rank { spearman(x, y) } else { pearson(x, y) };
      (r, why as u8)
    })
    .unzip();
  Ok((values, reasons))
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

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn correlations() {
    let (r, why) = pearson(&[1.0, 2.0, 3.0], &[2.0, 4.0, 7.0]);
    assert_eq!(why, Undefined::Defined);
    assert!((r - 0.993_399_267_798_783).abs() < 1e-12);
    assert_eq!(
      pearson(&[1.0, 1.0], &[1.0, 2.0]).1,
      Undefined::ConstantFirst
    );
    assert_eq!(
      pearson(&[1.0, 2.0], &[3.0, 3.0]).1,
      Undefined::ConstantSecond
    );
    assert_eq!(pearson(&[1.0], &[3.0]).1, Undefined::TooFew);
    assert_eq!(average_ranks(&[3.0, 1.0, 3.0, 2.0]), [3.5, 1.0, 3.5, 2.0]);
    let (rho, _) = spearman(&[1.0, 2.0, 3.0, 4.0], &[1.0, 3.0, 2.0, 4.0]);
    assert!((rho - 0.8).abs() < 1e-12);
    let (v, w) = row_correlations(&[1.0, 2.0, 5.0, 5.0], &[1.0, 2.0, 1.0, 2.0], 2, false).unwrap();
    assert!((v[0] - 1.0).abs() < 1e-12 && v[1].is_nan());
    assert_eq!((w[0], w[1]), (0, 2));
  }

  #[test]
  fn hand_worked_kendall_and_pairs() {
    let t = [1.0, 2.0, 3.0, 4.0];
    assert_eq!(kendall_tau_b(&t, &[1.0, 2.0, 4.0, 3.0]), 4.0 / 6.0); // 5 concordant, 1 discordant
    assert_eq!(ordered_pairs(&t, &[1.0, 2.0, 4.0, 3.0]), 5.0 / 6.0);
    // τ-b with ties: x = [1, 2, 2, 3], y = [1, 2, 3, 4]: 5 concordant, 0 discordant, one tie in x
    let tau = kendall_tau_b(&[1.0, 2.0, 2.0, 3.0], &t);
    assert!((tau - 5.0 / (5.0f64 * 6.0).sqrt()).abs() < 1e-12, "{tau}");
  }
}
