//! From model outputs to curves, and from curves to areas.

use crate::error::{checked_len, expect_len, CoreError, Result};

/// Picks the score of each row's target class from raw model outputs `[rows, classes]`, optionally
/// through a numerically stable softmax (f64), and records each row's argmax (first maximum).
/// A negative target selects the argmax class itself.
///
/// # Errors
/// `SHAPE_MISMATCH` (arg `output`) if the output is not `[rows, classes]`; `NON_FINITE`
/// (arg `output`) for a NaN/Inf logit; `INVALID_OPTION` (arg `y`) for a target ≥ `classes`.
pub fn score_rows(
  output: &[f32],
  classes: usize,
  targets: &[i32],
  softmax: bool,
  scores: &mut [f64],
  argmax: &mut [i32],
) -> Result<()> {
  let rows = targets.len();
  if classes == 0 || i32::try_from(classes).is_err() {
    return Err(CoreError::shape(
      "output",
      "[rows, K] with 1 ≤ K < 2^31 (labels are i32)",
      format!("K = {classes}"),
    ));
  }
  expect_len(
    "output",
    output.len(),
    checked_len("output", rows, classes)?,
  )?;
  expect_len("scores", scores.len(), rows)?;
  expect_len("argmax", argmax.len(), rows)?;
  for (i, row) in output.chunks(classes).enumerate() {
    if let Some(j) = row.iter().position(|v| !v.is_finite()) {
      return Err(CoreError::NonFinite {
        arg: "output",
        index: i * classes + j,
      });
    }
    let (best, &max) =
      row.iter().enumerate().fold(
        (0, &row[0]),
        |acc, (j, v)| if *v > *acc.1 { (j, v) } else { acc },
      );
    let target = match targets[i] {
      t if t < 0 => best,
      t if t as usize >= classes => {
        return Err(CoreError::param(
          "y",
          format!("label {t} is out of range for {classes} classes"),
        ));
      }
      t => t as usize,
    };
    argmax[i] = best as i32;
    scores[i] = if softmax {
      let max = f64::from(max);
      let total: f64 = row.iter().map(|&v| (f64::from(v) - max).exp()).sum();
      (f64::from(row[target]) - max).exp() / total
    } else {
      f64::from(row[target])
    };
  }
  Ok(())
}

/// Trapezoidal area under `y` sampled at increasing `x`.
///
/// ```text
/// AUC = Σ_k (x_{k+1} − x_k) · (y_k + y_{k+1}) / 2
/// ```
pub fn trapezoid(y: &[f64], x: &[f64]) -> f64 {
  y.windows(2)
    .zip(x.windows(2))
    .map(|(y, x)| (x[1] - x[0]) * (y[0] + y[1]) / 2.0)
    .sum()
}

/// `np.trapz(y, dx=1)`: `Σ y − (y_first + y_last) / 2` (Quantus's `calculate_auc`).
pub fn trapezoid_unit(y: &[f64]) -> f64 {
  match y {
    [] => 0.0,
    [_] => 0.0,
    [first, .., last] => y.iter().sum::<f64>() - (first + last) / 2.0,
  }
}

/// Areas of `curves` (`[n, k]`, row-major) on a shared grid `x` (`k` points), or with unit
/// spacing when `x` is empty.
pub fn areas(curves: &[f64], x: &[f64], k: usize) -> Result<Vec<f64>> {
  if k == 0 || !curves.len().is_multiple_of(k) {
    return Err(CoreError::shape(
      "curves",
      format!("a multiple of {k} points"),
      curves.len(),
    ));
  }
  if !x.is_empty() {
    expect_len("x", x.len(), k)?;
    // `partial_cmp` so that a NaN in the grid is rejected too.
    if x
      .windows(2)
      .any(|w| w[1].partial_cmp(&w[0]).is_none_or(|o| o.is_lt()))
    {
      return Err(CoreError::param("x", "grid must be non-decreasing"));
    }
  }
  Ok(
    curves
      .chunks(k)
      .map(|c| {
        if x.is_empty() {
          trapezoid_unit(c)
        } else {
          trapezoid(c, x)
        }
      })
      .collect(),
  )
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn trapezoid_hand_worked() {
    // (0,1) → (0.5,0.5) → (1,0): two trapezoids of 0.375 and 0.125.
    assert!((trapezoid(&[1.0, 0.5, 0.0], &[0.0, 0.5, 1.0]) - 0.5).abs() < 1e-15);
    // Uneven grid: (0,0) → (0.25,1) → (1,1): 0.125 + 0.75.
    assert!((trapezoid(&[0.0, 1.0, 1.0], &[0.0, 0.25, 1.0]) - 0.875).abs() < 1e-15);
    assert!((trapezoid_unit(&[1.0, 2.0, 4.0]) - 4.5).abs() < 1e-15);
    assert_eq!(trapezoid_unit(&[3.0]), 0.0);
  }

  #[test]
  fn softmax_scores_and_argmax() {
    let out = [0.0, 2.0f32.ln(), 100.0, 101.0];
    let (mut s, mut a) = ([0.0; 2], [0; 2]);
    score_rows(&out, 2, &[1, -1], true, &mut s, &mut a).unwrap();
    assert!((s[0] - 2.0 / 3.0).abs() < 1e-7);
    assert!((s[1] - 1.0 / (1.0 + (-1f64).exp())).abs() < 1e-12);
    assert_eq!(a, [1, 1]);
    score_rows(&out, 2, &[0, 0], false, &mut s, &mut a).unwrap();
    assert_eq!(s, [0.0, 100.0]);
  }

  #[test]
  fn bad_outputs_and_labels_are_typed_errors() {
    let (mut s, mut a) = ([0.0; 1], [0; 1]);
    assert_eq!(
      score_rows(&[1.0, f32::NAN], 2, &[0], true, &mut s, &mut a)
        .unwrap_err()
        .code(),
      "NON_FINITE"
    );
    let err = score_rows(&[1.0, 2.0], 2, &[2], true, &mut s, &mut a).unwrap_err();
    assert_eq!((err.code(), err.arg()), ("INVALID_OPTION", "y"));
    assert_eq!(
      score_rows(&[1.0, 2.0, 3.0], 2, &[0], true, &mut s, &mut a)
        .unwrap_err()
        .code(),
      "SHAPE_MISMATCH"
    );
  }

  #[test]
  fn classes_beyond_i32_labels_are_rejected() {
    let err = score_rows(&[], 1 << 31, &[], false, &mut [], &mut []).unwrap_err();
    assert_eq!((err.code(), err.arg()), ("SHAPE_MISMATCH", "output"));
  }
}
