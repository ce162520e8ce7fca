//! Rows whose removed pixels are imputed rather than replaced by a baseline (ROAD, soundness,
//! completeness): many (sample, mask) rows at once, imputed in parallel.
//!
//! Every row carries a noise *stream*, derived from what the row is (its sample and mask), never
//! from where it lands in a batch, so the numbers do not depend on batch size or worker count.

use rayon::prelude::*;

use crate::error::{expect_len, CoreError, Result};
use crate::impute;
use crate::mask::{RowSpec, FROM_END};

/// Pixel masks (`1` = impute) of `rows`, `[rows, P]`: the `count` top-ranked pixels of the row's
/// sample in `order` (`[N, P]`), or the `count` bottom-ranked ones with [`FROM_END`].
///
/// # Errors
/// `SHAPE_MISMATCH` if `order` is not a multiple of `pixels`; `INVALID_OPTION` (arg `rows`) for a
/// sample or count out of range or a flag other than [`FROM_END`].
pub fn pixel_masks(order: &[u32], pixels: usize, rows: &[RowSpec]) -> Result<Vec<u8>> {
  if pixels == 0 || !order.len().is_multiple_of(pixels) {
    return Err(CoreError::shape(
      "order",
      format!("a multiple of H·W = {pixels}"),
      order.len(),
    ));
  }
  let samples = order.len() / pixels;
  let mut masks = vec![0u8; rows.len() * pixels];
  for (r, mask) in rows.iter().zip(masks.chunks_exact_mut(pixels)) {
    if r.sample as usize >= samples || r.count as usize > pixels || r.flags & !FROM_END != 0 {
      return Err(CoreError::param(
        "rows",
        format!("row {r:?} out of range ({samples} samples, {pixels} pixels)"),
      ));
    }
    let ranked = &order[r.sample as usize * pixels..][..pixels];
    let chosen = if r.flags & FROM_END != 0 {
      &ranked[pixels - r.count as usize..]
    } else {
      &ranked[..r.count as usize]
    };
    chosen.iter().for_each(|&p| mask[p as usize] = 1);
  }
  Ok(masks)
}

/// Noise stream of a ranked-pixel row: unique per (sample, count, flags).
pub fn stream_of(r: &RowSpec) -> u64 {
  (u64::from(r.sample) << 32) | (u64::from(r.count) << 2) | u64::from(r.flags & 3)
}

/// How masked pixels are filled.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fill {
  /// ROAD's noisy linear imputation with this noise level (images).
  NoisyLinear { noise: f32 },
  /// A constant in every channel, e.g. the data mean of standardised tabular features.
  Constant(f32),
}

/// Imputes row `i` = sample `samples[i]` of `x` (`shape = [N, C, H, W]`) under `masks[i]` into
/// `out[i]`, with noise stream `streams[i]` of `seed`. Rows run in parallel on rayon's pool.
///
/// # Errors
/// `SHAPE_MISMATCH` for inconsistent lengths, `INVALID_OPTION` for a sample out of range or a bad
/// mask or noise, `NON_FINITE` for NaN/Inf in `x`.
#[allow(clippy::too_many_arguments)]
pub fn impute_rows(
  x: &[f32],
  shape: [usize; 4],
  samples: &[u32],
  masks: &[u8],
  fill: Fill,
  seed: u64,
  streams: &[u64],
  out: &mut [f32],
) -> Result<()> {
  let [n, c, h, w] = shape;
  let (image, pixels) = (c * h * w, h * w);
  let rows = samples.len();
  expect_len("x", x.len(), n * image)?;
  expect_len("masks", masks.len(), rows * pixels)?;
  expect_len("streams", streams.len(), rows)?;
  expect_len("out", out.len(), rows * image)?;
  if let Some(i) = masks.iter().position(|&m| m > 1) {
    return Err(CoreError::param(
      "masks",
      format!(
        "values must be 0 (keep) or 1 (impute); got {} at flat index {i}",
        masks[i]
      ),
    ));
  }
  if let Some(s) = samples.iter().find(|&&s| s as usize >= n) {
    return Err(CoreError::param(
      "rows",
      format!("sample {s} out of range ({n} samples)"),
    ));
  }
  out
    .par_chunks_exact_mut(image)
    .zip(masks.par_chunks_exact(pixels))
    .zip(samples.par_iter().zip(streams.par_iter()))
    .try_for_each(|((o, m), (&s, &stream))| {
      let xi = &x[s as usize * image..][..image];
      match fill {
        Fill::NoisyLinear { noise } => {
          o.copy_from_slice(&impute::noisy_linear(xi, m, c, h, w, noise, seed, stream)?)
        }
        Fill::Constant(value) => {
          o.copy_from_slice(xi);
          for channel in o.chunks_exact_mut(pixels) {
            channel
              .iter_mut()
              .zip(m)
              .filter(|(_, &masked)| masked == 1)
              .for_each(|(v, _)| *v = value);
          }
        }
      }
      Ok(())
    })
}

#[cfg(test)]
mod tests {
  use super::*;

  fn rows(t: &[u32]) -> Vec<RowSpec> {
    RowSpec::parse(t).unwrap()
  }

  #[test]
  fn masks_take_the_top_or_bottom_of_each_ranking() {
    let order = [2, 0, 3, 1, 0, 1, 2, 3];
    let m = pixel_masks(
      &order,
      4,
      &rows(&[0, 2, 0, 0, 1, FROM_END, 1, 3, 0, 1, 0, 0]),
    )
    .unwrap();
    assert_eq!(m, [1, 0, 1, 0, 0, 1, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0]);
    assert!(pixel_masks(&order, 4, &rows(&[2, 1, 0])).is_err());
    assert!(pixel_masks(&order, 4, &rows(&[0, 5, 0])).is_err());
    assert!(pixel_masks(&order, 4, &rows(&[0, 1, 2])).is_err());
  }

  #[test]
  fn rows_equal_single_imputations_whatever_the_batch() {
    let (c, h, w) = (2, 5, 4);
    let x: Vec<f32> = (0..3 * c * h * w)
      .map(|i| ((i * 37) % 11) as f32 / 11.0)
      .collect();
    let order: Vec<u32> = (0..3)
      .flat_map(|s| (0..20u32).map(move |p| (p * 7 + s) % 20))
      .collect();
    let spec = rows(&[2, 5, 0, 0, 10, FROM_END, 1, 19, 0, 2, 5, 0]);
    let masks = pixel_masks(&order, h * w, &spec).unwrap();
    let samples: Vec<u32> = spec.iter().map(|r| r.sample).collect();
    let streams: Vec<u64> = spec.iter().map(stream_of).collect();
    let mut out = vec![0.0; spec.len() * c * h * w];
    impute_rows(
      &x,
      [3, c, h, w],
      &samples,
      &masks,
      Fill::NoisyLinear { noise: 0.1 },
      9,
      &streams,
      &mut out,
    )
    .unwrap();
    for (i, r) in spec.iter().enumerate() {
      let xi = &x[r.sample as usize * c * h * w..][..c * h * w];
      let one = impute::noisy_linear(
        xi,
        &masks[i * h * w..][..h * w],
        c,
        h,
        w,
        0.1,
        9,
        stream_of(r),
      )
      .unwrap();
      assert_eq!(&out[i * c * h * w..][..c * h * w], &one[..]);
    }
    // The same row twice gets the same noise: the stream is the row's identity.
    assert_eq!(&out[..c * h * w], &out[3 * c * h * w..]);
  }

  #[test]
  fn constant_fill_sets_masked_pixels_in_every_channel() {
    let x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
    let mut out = [0.0; 6];
    impute_rows(
      &x,
      [1, 2, 1, 3],
      &[0],
      &[0, 1, 1],
      Fill::Constant(-1.0),
      0,
      &[0],
      &mut out,
    )
    .unwrap();
    assert_eq!(out, [1.0, -1.0, -1.0, 4.0, -1.0, -1.0]);
  }
}
