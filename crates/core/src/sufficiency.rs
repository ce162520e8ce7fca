//! Sufficiency (Dasgupta, Frost & Moshkovitz, ICML 2022) over a whole data set: for each sample,
//! the share of its neighbours — the other samples whose explanation lies within a normalised
//! standardised-Euclidean distance `threshold` of its own — that the model assigns the same class.
//!
//! The hot loop is the pairwise distance, `N²·F`. It never stores the `N × N` matrix: one pass
//! finds the largest distance (the normaliser), a second counts neighbours; every pair's distance
//! is a sequential sum over features, so both passes see bit-identical values and the result does
//! not depend on the thread count.

use rayon::prelude::*;

use crate::error::{expect_len, CoreError, Result};

/// How explanations are compared.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
  /// The whole data set at once: each explanation divided by its own max |a| (when `normalise`),
  /// variance `V_f` with `ddof = 1` over the `N` samples, constant features left out, no
  /// neighbour → NaN.
  DataSet,
  /// quantus.Sufficiency 0.6: one max |a| over all samples in float32 (when `normalise`), then
  /// groups of `batch_size` consecutive samples, each with SciPy's `seuclidean` variance
  /// `var(vstack([A, A]), ddof = 1)` (a constant feature makes every distance NaN), no neighbour → 0.
  Quantus { batch_size: usize },
}

/// What is compared and how.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
  /// Largest normalised distance of a neighbour.
  pub threshold: f64,
  /// Compare |a|.
  pub abs: bool,
  /// Divide by max |a| (per sample, or over everything with [`Mode::Quantus`]).
  pub normalise: bool,
  pub mode: Mode,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Sufficiency {
  /// Per sample: share of neighbours with the same predicted class.
  pub scores: Vec<f64>,
  /// Per sample: number of neighbours.
  pub neighbours: Vec<f64>,
}

/// Sufficiency of `n` explanations `a` (`[n, f]`, row-major) with predicted classes `predicted`.
///
/// # Errors
/// `SHAPE_MISMATCH` for inconsistent lengths, `NON_FINITE` for a NaN/Inf attribution,
/// `INVALID_OPTION` for a threshold that is not finite or a batch size of 0.
pub fn sufficiency(
  a: &[f64],
  n: usize,
  f: usize,
  predicted: &[i32],
  options: Options,
) -> Result<Sufficiency> {
  let Options {
    threshold,
    abs,
    normalise,
    mode,
  } = options;
  expect_len("a", a.len(), n * f)?;
  expect_len("predicted", predicted.len(), n)?;
  if let Some(index) = a.iter().position(|v| !v.is_finite()) {
    return Err(CoreError::NonFinite { arg: "a", index });
  }
  if !threshold.is_finite() {
    return Err(CoreError::param("threshold", "must be finite"));
  }
  match mode {
    Mode::DataSet => Ok(data_set(a, n, f, predicted, threshold, abs, normalise)),
    Mode::Quantus { batch_size } => {
      if batch_size == 0 {
        return Err(CoreError::param("batchSize", "must be ≥ 1"));
      }
      Ok(quantus(
        a, n, f, predicted, threshold, abs, normalise, batch_size,
      ))
    }
  }
}

/// Largest value with NaN propagation (`np.max`).
fn nan_max(a: f64, b: f64) -> f64 {
  if a.is_nan() || b.is_nan() {
    f64::NAN
  } else {
    a.max(b)
  }
}

/// Max distance over the pairs of `0..n` (and the zero diagonal), then each sample's neighbours
/// (`d / max ≤ threshold`, `j ≠ i`) and how many of them share its class. Each pair is computed
/// once per pass; the counts are integers, so their parallel merge is exact.
fn neighbourhoods(
  n: usize,
  d2: impl Fn(usize, usize) -> f64 + Sync,
  predicted: &[i32],
  threshold: f64,
) -> Vec<(usize, usize)> {
  let max = (0..n)
    .into_par_iter()
    .map(|i| ((i + 1)..n).fold(0.0, |m, j| nan_max(m, d2(i, j).sqrt())))
    .reduce(|| 0.0, nan_max);
  let add = |mut acc: Vec<(usize, usize)>, other: Vec<(usize, usize)>| {
    for (a, b) in acc.iter_mut().zip(other) {
      a.0 += b.0;
      a.1 += b.1;
    }
    acc
  };
  (0..n)
    .into_par_iter()
    .fold(
      || vec![(0usize, 0usize); n],
      |mut acc, i| {
        for j in (i + 1)..n {
          let d = d2(i, j).sqrt();
          // normalise_by_max leaves an all-zero array unchanged.
          let normalised = if max == 0.0 { d } else { d / max };
          if normalised <= threshold {
            let same = usize::from(predicted[i] == predicted[j]);
            acc[i].0 += 1;
            acc[i].1 += same;
            acc[j].0 += 1;
            acc[j].1 += same;
          }
        }
        acc
      },
    )
    .reduce(|| vec![(0, 0); n], add)
}

/// `Σ (u − v)²` in eight fixed lanes (vectorisable, and the same for every call: deterministic).
fn squared_distance(u: &[f64], v: &[f64]) -> f64 {
  let mut lanes = [0f64; 8];
  let (uc, vc) = (u.chunks_exact(8), v.chunks_exact(8));
  let (ur, vr) = (uc.remainder(), vc.remainder());
  for (a, b) in uc.zip(vc) {
    for k in 0..8 {
      let d = a[k] - b[k];
      lanes[k] += d * d;
    }
  }
  let mut tail = 0f64;
  for (a, b) in ur.iter().zip(vr) {
    tail += (a - b) * (a - b);
  }
  ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3]))
    + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]))
    + tail
}

fn data_set(
  a: &[f64],
  n: usize,
  f: usize,
  predicted: &[i32],
  threshold: f64,
  abs: bool,
  normalise: bool,
) -> Sufficiency {
  let mut z = a.to_vec();
  if f > 0 {
    for row in z.chunks_mut(f) {
      let max = row.iter().fold(0f64, |m, v| m.max(v.abs()));
      if normalise && max > 0.0 {
        row.iter_mut().for_each(|v| *v /= max);
      }
      if abs {
        row.iter_mut().for_each(|v| *v = v.abs());
      }
    }
  }
  // Standardise: divide each feature by its sample standard deviation; drop constant features.
  let mut kept = Vec::new();
  let mut scale = Vec::new();
  if n >= 2 {
    for k in 0..f {
      let mean = (0..n).map(|i| z[i * f + k]).sum::<f64>() / n as f64;
      let var = (0..n).map(|i| (z[i * f + k] - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
      if var > 0.0 {
        kept.push(k);
        scale.push(1.0 / var.sqrt());
      }
    }
  }
  let g = kept.len();
  let mut s = vec![0f64; n * g];
  for i in 0..n {
    for (t, (&k, &w)) in kept.iter().zip(&scale).enumerate() {
      s[i * g + t] = z[i * f + k] * w;
    }
  }
  let d2 = |i: usize, j: usize| squared_distance(&s[i * g..][..g], &s[j * g..][..g]);
  let counts = neighbourhoods(n, d2, predicted, threshold);
  Sufficiency {
    scores: counts
      .iter()
      .map(|&(c, s)| {
        if c == 0 {
          f64::NAN
        } else {
          s as f64 / c as f64
        }
      })
      .collect(),
    neighbours: counts.iter().map(|&(c, _)| c as f64).collect(),
  }
}

#[allow(clippy::too_many_arguments)]
fn quantus(
  a: &[f64],
  n: usize,
  f: usize,
  predicted: &[i32],
  threshold: f64,
  abs: bool,
  normalise: bool,
  batch_size: usize,
) -> Sufficiency {
  // normalise_by_max over the whole array, in float32 as numpy divides float32 arrays.
  let a32: Vec<f32> = a.iter().map(|&v| v as f32).collect();
  let max = a32.iter().fold(0f32, |m, v| m.max(v.abs()));
  let m: Vec<f64> = a32
    .iter()
    .map(|&v| {
      let v = if normalise && max != 0.0 { v / max } else { v };
      f64::from(if abs { v.abs() } else { v })
    })
    .collect();
  let mut scores = Vec::with_capacity(n);
  let mut neighbours = Vec::with_capacity(n);
  let mut start = 0;
  while start < n {
    let end = (start + batch_size).min(n);
    let b = end - start;
    let rows = &m[start * f..end * f];
    // SciPy's default V for cdist(A, A, 'seuclidean'): var(vstack([A, A]), axis=0, ddof=1).
    let var: Vec<f64> = (0..f)
      .map(|k| {
        let mean = (0..b).map(|i| rows[i * f + k]).sum::<f64>() / b as f64;
        let ss = (0..b)
          .map(|i| (rows[i * f + k] - mean).powi(2))
          .sum::<f64>();
        2.0 * ss / (2 * b - 1) as f64
      })
      .collect();
    let d2 = |i: usize, j: usize| {
      let (u, v) = (&rows[i * f..][..f], &rows[j * f..][..f]);
      let mut s = 0f64;
      for k in 0..f {
        let d = u[k] - v[k];
        s += d * d / var[k];
      }
      s
    };
    // A batch of one: the diagonal alone, 0/0 = NaN in SciPy; nothing to count either way.
    let counts = neighbourhoods(b, d2, &predicted[start..end], threshold);
    for (c, s) in counts {
      scores.push(if c == 0 { 0.0 } else { s as f64 / c as f64 });
      neighbours.push(c as f64);
    }
    start = end;
  }
  Sufficiency { scores, neighbours }
}

#[cfg(test)]
mod tests {
  use super::*;

  fn opts(threshold: f64, abs: bool, normalise: bool, mode: Mode) -> Options {
    Options {
      threshold,
      abs,
      normalise,
      mode,
    }
  }

  #[test]
  fn neighbours_and_shares_on_a_line() {
    // One feature: 0, 1, 2, 10. Distances normalised by 10; threshold 0.25 links 0–1–2.
    let a = [0.0, 1.0, 2.0, 10.0];
    let r = sufficiency(
      &a,
      4,
      1,
      &[0, 0, 1, 1],
      opts(0.25, false, false, Mode::DataSet),
    )
    .unwrap();
    assert_eq!(r.neighbours, [2.0, 2.0, 2.0, 0.0]);
    assert_eq!(&r.scores[..3], &[0.5, 0.5, 0.0]);
    assert!(r.scores[3].is_nan());
  }

  #[test]
  fn data_set_mode_is_invariant_to_per_sample_scale_and_constant_features() {
    let a = [1.0, 5.0, 2.0, 5.0, 0.5, 5.0];
    let scaled = [3.0, 15.0, 2.0, 5.0, 1.0, 10.0];
    let p = [1, 1, 2];
    let r1 = sufficiency(&a, 3, 2, &p, opts(0.5, true, true, Mode::DataSet)).unwrap();
    let r2 = sufficiency(&scaled, 3, 2, &p, opts(0.5, true, true, Mode::DataSet)).unwrap();
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&r1.scores), bits(&r2.scores));
    assert_eq!(r1.neighbours, r2.neighbours);
    // The second feature is constant after normalisation: only the first one counts.
    assert_eq!(r1.neighbours, [1.0, 0.0, 1.0]);
  }

  #[test]
  fn quantus_mode_constant_feature_gives_zeros() {
    let a = [1.0, 5.0, 2.0, 5.0, 0.5, 5.0];
    let r = sufficiency(
      &a,
      3,
      2,
      &[0, 0, 0],
      opts(1.0, true, true, Mode::Quantus { batch_size: 64 }),
    )
    .unwrap();
    assert_eq!(r.scores, [0.0; 3]);
    assert_eq!(r.neighbours, [0.0; 3]);
  }

  #[test]
  fn quantus_mode_groups_consecutive_samples() {
    let a = [0.0, 1.0, 3.0, 0.0, 2.0, 2.5];
    let p = [0, 0, 1, 0, 0, 1];
    let whole = sufficiency(
      &a,
      6,
      1,
      &p,
      opts(0.9, false, false, Mode::Quantus { batch_size: 3 }),
    )
    .unwrap();
    let first = sufficiency(
      &a[..3],
      3,
      1,
      &p[..3],
      opts(0.9, false, false, Mode::Quantus { batch_size: 3 }),
    )
    .unwrap();
    assert_eq!(&whole.scores[..3], &first.scores[..]);
    // Batch 1: distances ∝ 1, 3, 2 → normalised 1/3, 1, 2/3: 0.9 links 0–1 and 1–2.
    assert_eq!(&first.neighbours[..], &[1.0, 2.0, 1.0]);
    assert_eq!(&first.scores[..], &[1.0, 0.5, 0.0]);
  }

  #[test]
  fn errors_are_typed() {
    let e = sufficiency(
      &[f64::NAN],
      1,
      1,
      &[0],
      opts(0.5, true, true, Mode::DataSet),
    )
    .unwrap_err();
    assert_eq!(e.code(), "NON_FINITE");
    let e = sufficiency(
      &[0.0],
      1,
      1,
      &[0],
      opts(0.5, true, true, Mode::Quantus { batch_size: 0 }),
    )
    .unwrap_err();
    assert_eq!(e.code(), "INVALID_OPTION");
    let e = sufficiency(&[0.0], 1, 2, &[0], opts(0.5, true, true, Mode::DataSet)).unwrap_err();
    assert_eq!(e.code(), "SHAPE_MISMATCH");
  }
}
