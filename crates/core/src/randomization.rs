//! Randomization sanity checks: random other classes (RandomLogit, DataRandomization), the
//! similarity of two explanations per sample (Spearman, Pearson, SSIM as scikit-image computes it
//! on flattened maps), and the random weights of a randomized layer (MPRT). Every draw is keyed.

use rayon::prelude::*;

use crate::correlation::{pearson, spearman};
use crate::error::{expect_len, CoreError, Result};
use crate::rng::{Purpose, Rng};

/// How two explanations of one sample are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Similarity {
  Spearman,
  Pearson,
  Ssim,
  /// (H(b) − H(a)) / H(a), H the entropy of a 100-bin histogram (eMPRT's complexity rise).
  EntropyRise,
}

/// One class other than `labels[i]` per sample, uniform over the `classes − 1` others, keyed by
/// `(seed, first_sample + i)`: `others[below(classes − 1)]`, the same index into the other classes
/// that quantus.RandomLogit 0.6 draws with `randint(0, classes − 1)` (per batch position there).
pub fn other_classes(
  labels: &[i32],
  classes: usize,
  seed: u64,
  first_sample: u64,
) -> Result<Vec<i32>> {
  if classes < 2 {
    return Err(CoreError::param(
      "numClasses",
      "needs at least 2 classes to pick another one",
    ));
  }
  labels
    .iter()
    .enumerate()
    .map(|(i, &y)| {
      if y < 0 || y as usize >= classes {
        return Err(CoreError::param(
          "y",
          format!("label {y} of sample {i} is not below numClasses = {classes}"),
        ));
      }
      let off = Rng::keyed(seed, first_sample + i as u64, Purpose::Class, 0)
        .below(classes as u64 - 1) as i32;
      Ok(if off >= y { off + 1 } else { off })
    })
    .collect()
}

/// Structural similarity of two 1-D signals as `skimage.metrics.structural_similarity` computes
/// it: a uniform window of 7 with sample covariance (factor 7/6), K1 = 0.01, K2 = 0.03,
/// `data_range` = max − min over both signals, averaged over the positions whose window lies
/// inside the signal (3 … L − 4). NaN for fewer than 7 values or two equal constant signals.
pub fn ssim_1d(a: &[f64], b: &[f64]) -> f64 {
  const WIN: usize = 7;
  let len = a.len();
  if len < WIN || b.len() != len {
    return f64::NAN;
  }
  let (lo, hi) = a
    .iter()
    .chain(b)
    .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
      (lo.min(v), hi.max(v))
    });
  let range = hi - lo;
  let (c1, c2) = ((0.01 * range).powi(2), (0.03 * range).powi(2));
  let cov_norm = WIN as f64 / (WIN as f64 - 1.0);
  let mut total = 0.0;
  for start in 0..=len - WIN {
    let (wa, wb) = (&a[start..start + WIN], &b[start..start + WIN]);
    let n = WIN as f64;
    let (ua, ub) = (wa.iter().sum::<f64>() / n, wb.iter().sum::<f64>() / n);
    let uaa = wa.iter().map(|v| v * v).sum::<f64>() / n;
    let ubb = wb.iter().map(|v| v * v).sum::<f64>() / n;
    let uab = wa.iter().zip(wb).map(|(x, y)| x * y).sum::<f64>() / n;
    let (va, vb, vab) = (
      cov_norm * (uaa - ua * ua),
      cov_norm * (ubb - ub * ub),
      cov_norm * (uab - ua * ub),
    );
    total +=
      ((2.0 * ua * ub + c1) * (2.0 * vab + c2)) / ((ua * ua + ub * ub + c1) * (va + vb + c2));
  }
  total / (len - WIN + 1) as f64
}

/// How each map is prepared before the comparison: `|v|` first when `abs`, then divided by its
/// own max |v| when `normalise` (a zero map stays zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Prepare {
  pub abs: bool,
  pub normalise: bool,
}

fn prepared(v: &[f32], p: Prepare) -> Vec<f64> {
  let mut out: Vec<f64> = v
    .iter()
    .map(|&x| {
      if p.abs {
        f64::from(x).abs()
      } else {
        f64::from(x)
      }
    })
    .collect();
  if p.normalise {
    let max = out.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    if max > 0.0 {
      out.iter_mut().for_each(|x| *x /= max);
    }
  }
  out
}

/// Discrete entropy (natural log) of the histogram of `v` in `bins` equal bins over its own range,
/// as `scipy.stats.entropy(np.histogram(v, bins)[0])`: a constant signal has one full bin, H = 0.
pub fn histogram_entropy(v: &[f64], bins: usize) -> f64 {
  let (lo, hi) = v
    .iter()
    .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
      (lo.min(x), hi.max(x))
    });
  if v.is_empty() || bins == 0 || lo == hi {
    return 0.0;
  }
  let mut counts = vec![0usize; bins];
  let scale = bins as f64 / (hi - lo);
  for &x in v {
    let k = (((x - lo) * scale) as usize).min(bins - 1);
    counts[k] += 1;
  }
  let n = v.len() as f64;
  -counts
    .iter()
    .filter(|&&c| c > 0)
    .map(|&c| {
      let p = c as f64 / n;
      p * p.ln()
    })
    .sum::<f64>()
}

/// Per sample `[similarity, mean |a − b|]` of explanations `a` and `b` (`[samples, len]`), each
/// prepared by `prepare`.
pub fn compare_rows(
  a: &[f32],
  b: &[f32],
  samples: usize,
  similarity: Similarity,
  prepare: Prepare,
) -> Result<Vec<f64>> {
  if samples == 0 {
    return Err(CoreError::EmptyInput { arg: "a" });
  }
  let len = a.len() / samples;
  expect_len("a", a.len(), samples * len)?;
  expect_len("b", b.len(), samples * len)?;
  let mut out = Vec::with_capacity(2 * samples);
  for s in 0..samples {
    let x = prepared(&a[s * len..(s + 1) * len], prepare);
    let y = prepared(&b[s * len..(s + 1) * len], prepare);
    out.push(match similarity {
      Similarity::Spearman => spearman(&x, &y).0,
      Similarity::Pearson => pearson(&x, &y).0,
      Similarity::Ssim => ssim_1d(&x, &y),
      Similarity::EntropyRise => {
        let h = histogram_entropy(&x, 100);
        if h == 0.0 {
          f64::NAN
        } else {
          (histogram_entropy(&y, 100) - h) / h
        }
      }
    });
    out.push(x.iter().zip(&y).map(|(p, q)| (p - q).abs()).sum::<f64>() / len as f64);
  }
  Ok(out)
}

/// Fills `out` with U(−bound, bound) draws keyed by `(seed, layer, tensor)`: the weights of one
/// tensor of one randomized layer (PyTorch's default `reset_parameters` range for `bound = 1/√fan_in`).
pub fn random_weights(
  out: &mut [f32],
  bound: f64,
  seed: u64,
  layer: u64,
  tensor: u64,
) -> Result<()> {
  if !(bound.is_finite() && bound >= 0.0) {
    return Err(CoreError::param("bound", "must be a finite number ≥ 0"));
  }
  let mut rng = Rng::keyed(seed, layer, Purpose::Weights, tensor);
  out
    .iter_mut()
    .for_each(|v| *v = ((2.0 * rng.uniform() - 1.0) * bound) as f32);
  Ok(())
}

/// Noisy copies of SmoothMPRT (Hedström et al. 2024): row `i` is sample `rows[2i]` (local index)
/// plus Gaussian noise of draw `rows[2i + 1]`, `σ_n·z` with `σ_n = magnitude·(max x_n − min x_n)`
/// and standard normals `z` from `Rng::keyed(seed, first_sample + sample, Perturbation, draw)` in
/// entry order (the same stream as `explainers::noisy_rows`' Gaussian noise). The noise is computed
/// in f64, rounded to f32 and added in f32. Draw `clean` (when given) is the input itself
/// (Quantus's last, noise-free draw).
#[allow(clippy::too_many_arguments)]
pub fn smooth_rows(
  x: &[f32],
  samples: usize,
  first_sample: u64,
  seed: u64,
  magnitude: f64,
  clean: Option<u32>,
  rows: &[u32],
  out: &mut [f32],
) -> Result<()> {
  if samples == 0 {
    return Err(CoreError::EmptyInput { arg: "x" });
  }
  if !(magnitude.is_finite() && magnitude >= 0.0) {
    return Err(CoreError::param(
      "noiseMagnitude",
      "must be a finite number ≥ 0",
    ));
  }
  let len = x.len() / samples;
  expect_len("x", x.len(), samples * len)?;
  expect_len("out", out.len(), rows.len() / 2 * len)?;
  if let Some(pair) = rows
    .chunks(2)
    .find(|p| p.len() < 2 || p[0] as usize >= samples)
  {
    return Err(CoreError::param(
      "rows",
      format!("sample {} is outside {samples} samples", pair[0]),
    ));
  }
  if len == 0 {
    return Ok(());
  }
  out
    .par_chunks_mut(len)
    .zip(rows.par_chunks(2))
    .for_each(|(row, pair)| {
      let s = pair[0] as usize;
      let src = &x[s * len..][..len];
      if clean == Some(pair[1]) {
        row.copy_from_slice(src);
        return;
      }
      let (lo, hi) = src
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
          (lo.min(v), hi.max(v))
        });
      let sigma = magnitude * (f64::from(hi) - f64::from(lo));
      let mut z = Rng::keyed(
        seed,
        first_sample + s as u64,
        Purpose::Perturbation,
        u64::from(pair[1]),
      )
      .normals();
      for (o, &v) in row.iter_mut().zip(src) {
        *o = v + (sigma * z.next_normal()) as f32;
      }
    });
  Ok(())
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn other_classes_are_uniform_over_the_others_and_keyed() {
    let labels = vec![2; 3000];
    let c = other_classes(&labels, 4, 7, 0).unwrap();
    assert!(c.iter().all(|&k| k != 2 && (0..4).contains(&k)));
    for k in [0, 1, 3] {
      let share = c.iter().filter(|&&v| v == k).count() as f64 / 3000.0;
      assert!((share - 1.0 / 3.0).abs() < 0.04, "class {k}: {share}");
    }
    assert_eq!(other_classes(&labels[10..20], 4, 7, 10).unwrap(), c[10..20]);
    assert_eq!(
      other_classes(&[0], 1, 0, 0).unwrap_err().code(),
      "INVALID_OPTION"
    );
    assert_eq!(
      other_classes(&[5], 4, 0, 0).unwrap_err().code(),
      "INVALID_OPTION"
    );
  }

  #[test]
  fn ssim_of_identical_signals_is_one_and_matches_a_hand_window() {
    let a: Vec<f64> = (0..9).map(|i| (i * i % 5) as f64).collect();
    assert!((ssim_1d(&a, &a) - 1.0).abs() < 1e-12);
    // One full window (L = 7): the formula by hand.
    let x = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
    let y = [6.0, 5.0, 4.0, 3.0, 2.0, 1.0, 0.0];
    let (c1, c2) = ((0.01f64 * 6.0).powi(2), (0.03f64 * 6.0).powi(2));
    let var = 28.0 / 6.0; // sample variance of 0…6
    let expected = ((2.0 * 9.0 + c1) * (-2.0 * var + c2)) / ((18.0 + c1) * (2.0 * var + c2));
    assert!((ssim_1d(&x, &y) - expected).abs() < 1e-12);
    assert!(ssim_1d(&x[..6], &y[..6]).is_nan());
  }

  #[test]
  fn compare_rows_gives_similarity_and_mean_abs_change() {
    let a = [1.0, 2.0, 3.0, 4.0, 1.0, 2.0, 3.0, 4.0];
    let b = [2.0, 4.0, 6.0, 8.0, 4.0, 3.0, 2.0, 1.0];
    let raw = Prepare::default();
    let out = compare_rows(&a, &b, 2, Similarity::Spearman, raw).unwrap();
    assert_eq!(out, vec![1.0, 2.5, -1.0, 2.0]);
    assert!((compare_rows(&a, &b, 2, Similarity::Pearson, raw).unwrap()[0] - 1.0).abs() < 1e-12);
    // Normalised by their max, a and b of sample 0 are the same map.
    let norm = Prepare {
      abs: true,
      normalise: true,
    };
    assert_eq!(
      compare_rows(&a, &b, 2, Similarity::Spearman, norm).unwrap()[1],
      0.0
    );
    let err = compare_rows(&a, &b[1..], 2, Similarity::Pearson, raw).unwrap_err();
    assert_eq!(err.code(), "SHAPE_MISMATCH");
  }

  #[test]
  fn histogram_entropy_by_hand() {
    // Two equal halves at the ends of the range: two full bins, H = ln 2.
    let v = [0.0, 0.0, 1.0, 1.0];
    assert!((histogram_entropy(&v, 100) - 2f64.ln()).abs() < 1e-12);
    assert_eq!(histogram_entropy(&[3.0; 5], 100), 0.0);
    // 100 evenly spread values: one per bin, H = ln 100.
    let spread: Vec<f64> = (0..100).map(f64::from).collect();
    assert!((histogram_entropy(&spread, 100) - 100f64.ln()).abs() < 1e-12);
    let out = compare_rows(
      &[0.0, 0.0, 1.0, 1.0],
      &[0.0, 1.0, 2.0, 3.0],
      1,
      Similarity::EntropyRise,
      Prepare::default(),
    )
    .unwrap();
    assert!((out[0] - (4f64.ln() - 2f64.ln()) / 2f64.ln()).abs() < 1e-12);
  }

  #[test]
  fn random_weights_are_keyed_and_bounded() {
    let (mut w1, mut w2) = (vec![0f32; 100], vec![0f32; 100]);
    random_weights(&mut w1, 0.5, 3, 1, 0).unwrap();
    random_weights(&mut w2, 0.5, 3, 1, 0).unwrap();
    assert_eq!(w1, w2);
    assert!(w1.iter().all(|v| v.abs() <= 0.5));
    random_weights(&mut w2, 0.5, 3, 2, 0).unwrap();
    assert_ne!(w1, w2);
  }

  #[test]
  fn smooth_rows_scale_keyed_normals_by_each_samples_range() {
    // Two samples of 4 values: ranges 3 and 0.5.
    let x = [0.0f32, 1.0, 2.0, 3.0, 1.0, 1.5, 1.25, 1.0];
    let rows = [0u32, 0, 1, 0, 0, 1, 0, 2];
    let mut out = vec![0f32; 16];
    smooth_rows(&x, 2, 5, 9, 0.1, Some(2), &rows, &mut out).unwrap();
    // Row 3 is draw 2 of sample 0: the clean input.
    assert_eq!(&out[12..16], &x[..4]);
    for (r, &(s, draw)) in [(0usize, 0u64), (1, 0), (0, 1)].iter().enumerate() {
      let sigma = 0.1 * if s == 0 { 3.0 } else { 0.5 };
      let mut z = Rng::keyed(9, 5 + s as u64, Purpose::Perturbation, draw).normals();
      for j in 0..4 {
        let expected = x[s * 4 + j] + (sigma * z.next_normal()) as f32;
        assert_eq!(out[r * 4 + j], expected, "row {r} entry {j}");
      }
    }
    // The same draw of the same global sample in another shard: the same row.
    let mut shard = vec![0f32; 4];
    smooth_rows(&x[4..], 1, 6, 9, 0.1, None, &[0, 0], &mut shard).unwrap();
    assert_eq!(&shard[..], &out[4..8]);
    assert_eq!(
      smooth_rows(&x, 2, 0, 0, f64::NAN, None, &rows, &mut out)
        .unwrap_err()
        .code(),
      "INVALID_OPTION"
    );
    assert_eq!(
      smooth_rows(&x, 2, 0, 0, 0.1, None, &[2, 0], &mut out[..4])
        .unwrap_err()
        .code(),
      "INVALID_OPTION"
    );
  }

  #[test]
  fn smooth_noise_is_the_stream_the_python_mirror_draws() {
    // scripts/keyed_rng.py's ziggurat for Rng.keyed(5, 0, PERTURBATION, 0), recorded in
    // __test__/fixtures/quantus/randomisation.json ("normalsSample0Draw0"): handed to Quantus.
    let expected = [
      -1.1548545128781382,
      0.3034786579225682,
      0.29349372799557627,
      1.4374678591620795,
      -0.9975227224158535,
    ];
    let got: Vec<f64> = Rng::keyed(5, 0, Purpose::Perturbation, 0)
      .normals()
      .take(5)
      .collect();
    assert_eq!(got, expected);
  }
}
