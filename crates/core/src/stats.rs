//! Reductions of per-sample scores into data-set statistics.

/// Mean and population standard deviation of the finite values, and how many were skipped
/// (NaN marks an undefined per-sample score; the aggregate says how many it left out).
pub fn mean_std_skipnan(values: &[f64]) -> (f64, f64, usize) {
  let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
  let skipped = values.len() - finite.len();
  if finite.is_empty() {
    return (f64::NAN, f64::NAN, skipped);
  }
  let n = finite.len() as f64;
  let mean = finite.iter().sum::<f64>() / n;
  let var = finite.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
  (mean, var.sqrt(), skipped)
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn skips_nan_and_reports_it() {
    let (m, s, k) = mean_std_skipnan(&[1.0, f64::NAN, 3.0]);
    assert_eq!((m, s, k), (2.0, 1.0, 1));
    assert!(mean_std_skipnan(&[]).0.is_nan());
  }
}
