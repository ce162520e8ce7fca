//! Baselines ("imputers" of the constant kind): the values an occluded feature takes.
//!
//! A baseline is computed **once per sample from the unperturbed input** and every occlusion step
//! copies from that snapshot (SRG PR #374, "constant imputer as in the paper"), so stochastic
//! baselines are drawn once and a step never depends on the previous steps' perturbations.

use crate::error::{check_finite, check_sample_range, expect_len, CoreError, Result};
use crate::rng::{Purpose, Rng};
use std::sync::atomic::{AtomicBool, Ordering};

/// Largest blur σ accepted. The kernel has `2·⌈3σ⌉ + 1` taps, allocated and applied per pixel:
/// an unbounded σ would exhaust memory (an abort, not an error) long before it changed the
/// result, since with clamped edges a blur much wider than the image is already nearly constant.
pub const MAX_BLUR_SIGMA: f32 = 1e4;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Baseline {
  /// Every occluded entry takes this value.
  Constant(f32),
  /// The sample's minimum over all entries (Quantus's "black").
  Min,
  /// The sample's maximum over all entries (Quantus's "white").
  Max,
  /// The sample's mean over all entries (Quantus's "mean").
  Mean,
  /// The mean of each channel of the sample.
  ChannelMean,
  /// A Gaussian blur of the sample, per channel, kernel truncated at 3σ, edges clamped.
  Blur { sigma: f32 },
  /// Seeded i.i.d. uniform noise in `[low, high)`, one draw per entry, from the stream
  /// `Rng::keyed(seed, global sample index, Purpose::Baseline, 0)`.
  Uniform { low: f32, high: f32, seed: u64 },
}

impl Baseline {
  pub fn validate(&self) -> Result<()> {
    match *self {
      Baseline::Constant(v) if !v.is_finite() => Err(CoreError::param(
        "baseline",
        "a constant baseline must be finite",
      )),
      Baseline::Blur { sigma }
        if !(sigma.is_finite() && sigma > 0.0 && sigma <= MAX_BLUR_SIGMA) =>
      {
        Err(CoreError::param(
          "baseline.sigma",
          format!("must be in (0, {MAX_BLUR_SIGMA}], got {sigma}"),
        ))
      }
      Baseline::Uniform { low, high, .. }
        if !(low.is_finite() && high.is_finite() && low < high) =>
      {
        Err(CoreError::param(
          "baseline",
          format!("uniform needs low < high, got [{low}, {high})"),
        ))
      }
      _ => Ok(()),
    }
  }

  /// Baseline of one sample `x` (`[C, H, W]`) into `out`. `sample` is the sample's index in the
  /// whole data set (never its position in a batch or shard): it keys the random stream.
  pub fn fill(
    &self,
    x: &[f32],
    channels: usize,
    height: usize,
    width: usize,
    sample: u64,
    out: &mut [f32],
  ) {
    let pixels = height * width;
    match *self {
      Baseline::Constant(v) => out.fill(v),
      Baseline::Min => out.fill(x.iter().copied().fold(f32::INFINITY, f32::min)),
      Baseline::Max => out.fill(x.iter().copied().fold(f32::NEG_INFINITY, f32::max)),
      Baseline::Mean => out.fill(mean(x)),
      Baseline::ChannelMean => {
        for (xc, oc) in x.chunks(pixels).zip(out.chunks_mut(pixels)).take(channels) {
          oc.fill(mean(xc));
        }
      }
      Baseline::Blur { sigma } => {
        let kernel = gaussian_kernel(sigma);
        for (xc, oc) in x.chunks(pixels).zip(out.chunks_mut(pixels)).take(channels) {
          blur_channel(xc, height, width, &kernel, oc);
        }
      }
      Baseline::Uniform { low, high, seed } => {
        let mut rng = Rng::keyed(seed, sample, Purpose::Baseline, 0);
        let span = f64::from(high) - f64::from(low);
        out
          .iter_mut()
          .for_each(|o| *o = (f64::from(low) + span * rng.uniform()) as f32);
      }
    }
  }
}

/// Baselines of a batch `x` of shape `[n, c, h, w]`; same shape out. Sample `i` of the batch is
/// sample `first_sample + i` of the whole data set, so a shard's baselines equal the whole set's.
///
/// # Errors
/// `SHAPE_MISMATCH` if `x` does not match the shape, `NON_FINITE` for NaN/Inf in `x`,
/// `INVALID_OPTION` for an invalid baseline.
pub fn batch(
  x: &[f32],
  shape: [usize; 4],
  baseline: &Baseline,
  first_sample: u64,
) -> Result<Vec<f32>> {
  batch_until(x, shape, baseline, first_sample, &AtomicBool::new(false))
}

/// [`batch`] that checks `stop` before each channel of each sample and returns `ABORTED` once it
/// is raised: a wide blur costs `O(σ)` per pixel, tens of milliseconds per channel at the largest
/// σ, so an abort is honoured within one channel's time instead of the whole data set's.
pub fn batch_until(
  x: &[f32],
  shape: [usize; 4],
  baseline: &Baseline,
  first_sample: u64,
  stop: &AtomicBool,
) -> Result<Vec<f32>> {
  let [n, c, h, w] = shape;
  let total = [n, c, h, w]
    .iter()
    .try_fold(1usize, |acc, &d| acc.checked_mul(d))
    .ok_or_else(|| {
      CoreError::shape(
        "shape",
        "an element count that fits in usize",
        format!("{shape:?}"),
      )
    })?;
  expect_len("x", x.len(), total)?;
  check_sample_range(first_sample, n)?;
  check_finite("x", x)?;
  baseline.validate()?;
  let row = c * h * w;
  let mut out = vec![0f32; x.len()];
  if row == 0 {
    return Ok(out);
  }
  let stopped = || stop.load(Ordering::Relaxed);
  for (i, (xs, os)) in x.chunks(row).zip(out.chunks_mut(row)).enumerate() {
    if stopped() {
      return Err(CoreError::Aborted);
    }
    if let Baseline::Blur { sigma } = *baseline {
      let kernel = gaussian_kernel(sigma);
      for (xc, oc) in xs.chunks(h * w).zip(os.chunks_mut(h * w)) {
        if stopped() {
          return Err(CoreError::Aborted);
        }
        blur_channel(xc, h, w, &kernel, oc);
      }
    } else {
      baseline.fill(xs, c, h, w, first_sample + i as u64, os);
    }
  }
  Ok(out)
}

fn mean(x: &[f32]) -> f32 {
  (x.iter().map(|&v| f64::from(v)).sum::<f64>() / x.len().max(1) as f64) as f32
}

/// Normalised Gaussian weights for offsets `-r..=r`, `r = ceil(3σ)`.
pub fn gaussian_kernel(sigma: f32) -> Vec<f32> {
  let sigma = f64::from(sigma);
  let radius = (3.0 * sigma).ceil() as i64;
  let weights: Vec<f64> = (-radius..=radius)
    .map(|d| (-((d * d) as f64) / (2.0 * sigma * sigma)).exp())
    .collect();
  let total: f64 = weights.iter().sum();
  weights.iter().map(|w| (w / total) as f32).collect()
}

/// Separable convolution of one `h × w` channel with clamped (edge-replicating) borders.
fn blur_channel(x: &[f32], h: usize, w: usize, kernel: &[f32], out: &mut [f32]) {
  let r = (kernel.len() / 2) as isize;
  let clamp = |i: isize, n: usize| i.clamp(0, n as isize - 1) as usize;
  let mut rows = vec![0f32; h * w];
  for y in 0..h {
    for x0 in 0..w {
      let mut acc = 0f64;
      for (k, &wk) in kernel.iter().enumerate() {
        acc += f64::from(wk) * f64::from(x[y * w + clamp(x0 as isize + k as isize - r, w)]);
      }
      rows[y * w + x0] = acc as f32;
    }
  }
  for y in 0..h {
    for x0 in 0..w {
      let mut acc = 0f64;
      for (k, &wk) in kernel.iter().enumerate() {
        acc += f64::from(wk) * f64::from(rows[clamp(y as isize + k as isize - r, h) * w + x0]);
      }
      out[y * w + x0] = acc as f32;
    }
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  fn one(b: Baseline, x: &[f32], c: usize, h: usize, w: usize) -> Vec<f32> {
    batch(x, [1, c, h, w], &b, 0).unwrap()
  }

  #[test]
  fn a_raised_stop_flag_ends_a_blur_with_aborted() {
    let x = vec![0.5f32; 2 * 3 * 8 * 8];
    let b = Baseline::Blur { sigma: 64.0 };
    let stop = AtomicBool::new(true);
    assert_eq!(
      batch_until(&x, [2, 3, 8, 8], &b, 0, &stop),
      Err(CoreError::Aborted)
    );
    stop.store(false, Ordering::Relaxed);
    assert_eq!(
      batch_until(&x, [2, 3, 8, 8], &b, 0, &stop),
      batch(&x, [2, 3, 8, 8], &b, 0)
    );
  }

  #[test]
  fn reductions_are_per_sample() {
    let x = [1.0, 2.0, 3.0, 6.0, /* sample 2 */ -1.0, 0.0, 0.0, 1.0];
    let out = batch(&x, [2, 1, 2, 2], &Baseline::Mean, 0).unwrap();
    assert_eq!(out, [3.0, 3.0, 3.0, 3.0, 0.0, 0.0, 0.0, 0.0]);
    assert_eq!(one(Baseline::Min, &x[..4], 1, 2, 2), [1.0; 4]);
    assert_eq!(one(Baseline::Max, &x[..4], 1, 2, 2), [6.0; 4]);
  }

  #[test]
  fn channel_mean_is_per_channel() {
    assert_eq!(
      one(Baseline::ChannelMean, &[1.0, 3.0, 10.0, 20.0], 2, 1, 2),
      [2.0, 2.0, 15.0, 15.0]
    );
  }

  #[test]
  fn blur_preserves_constants_and_mass_of_a_centred_impulse() {
    assert!(one(Baseline::Blur { sigma: 1.5 }, &[4.0; 25], 1, 5, 5)
      .iter()
      .all(|v| (v - 4.0).abs() < 1e-5));
    let mut impulse = vec![0.0; 15 * 15];
    impulse[7 * 15 + 7] = 1.0;
    let out = one(Baseline::Blur { sigma: 1.0 }, &impulse, 1, 15, 15);
    let total: f32 = out.iter().sum();
    assert!((total - 1.0).abs() < 1e-5);
    assert!(out[7 * 15 + 7] > out[7 * 15 + 8] && out[7 * 15 + 8] > out[7 * 15 + 9]);
  }

  #[test]
  fn uniform_is_seeded_per_sample_and_in_range() {
    let b = Baseline::Uniform {
      low: -1.0,
      high: 1.0,
      seed: 3,
    };
    let two = batch(&[0.0; 8], [2, 1, 2, 2], &b, 0).unwrap();
    let first = one(b, &[0.0; 4], 1, 2, 2);
    assert_eq!(&two[..4], &first[..]);
    assert_ne!(&two[..4], &two[4..]);
    assert!(two.iter().all(|v| (-1.0..1.0).contains(v)));
  }

  #[test]
  fn a_shard_draws_the_whole_sets_uniform_baselines() {
    let b = Baseline::Uniform {
      low: 0.0,
      high: 1.0,
      seed: 11,
    };
    let x = [0.0; 5 * 2 * 3];
    let whole = batch(&x, [5, 2, 1, 3], &b, 0).unwrap();
    let shard = batch(&x[2 * 6..4 * 6], [2, 2, 1, 3], &b, 2).unwrap();
    assert_eq!(&whole[2 * 6..4 * 6], &shard[..]);
    let mut one = [0.0; 6];
    b.fill(&x[..6], 2, 1, 3, 4, &mut one);
    assert_eq!(&whole[4 * 6..], &one[..]);
  }

  #[test]
  fn invalid_parameters_are_typed_errors() {
    assert_eq!(
      Baseline::Blur { sigma: 0.0 }.validate().unwrap_err().code(),
      "INVALID_OPTION"
    );
    let huge = Baseline::Blur { sigma: 1e30 };
    assert_eq!(huge.validate().unwrap_err().arg(), "baseline.sigma");
    assert_eq!(
      batch(&[f32::INFINITY], [1, 1, 1, 1], &Baseline::Mean, 0)
        .unwrap_err()
        .code(),
      "NON_FINITE"
    );
    assert_eq!(
      batch(&[0.0; 3], [1, 1, 2, 2], &Baseline::Mean, 0)
        .unwrap_err()
        .code(),
      "SHAPE_MISMATCH"
    );
  }
}
