//! Rows whose removed pixels are imputed rather than replaced by a baseline (ROAD, soundness,
//! completeness): many (sample, mask) rows at once, imputed in parallel.
//!
//! Every row carries a noise key ([`NoiseKey`]): the sample's index in the *whole* data set and
//! what the row is (its mask's key, a metric step), never where it lands in a batch or shard, so
//! the numbers do not depend on batch size, worker count or sharding.

use rayon::prelude::*;

use crate::error::{bad_index, check_sample_range, expect_len, CoreError, Result};
use crate::impute::{self, NoiseKey};
use crate::mask::{RowSpec, FROM_END};

/// Pixel masks (`1` = impute) of `rows`, `[rows, P]`: the `count` top-ranked pixels of the row's
/// sample in `order` (`[N, P]`), or the `count` bottom-ranked ones with [`FROM_END`].
///
/// # Errors
/// `SHAPE_MISMATCH` if `order` is not a multiple of `pixels`; `INVALID_OPTION` (arg `rows`) for a
/// sample or count out of range or a flag other than [`FROM_END`], (arg `order`) for a pixel
/// index out of range.
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
    for &p in chosen {
      *mask
        .get_mut(p as usize)
        .ok_or_else(|| bad_index("order", p as usize, pixels))? = 1;
    }
  }
  Ok(masks)
}

/// Noise key of a ranked-pixel row of a shard whose sample 0 is sample `first_sample` of the
/// whole data set: the global sample, and a step unique per (count, flags) of that sample.
pub fn row_key(first_sample: u64, r: &RowSpec) -> NoiseKey {
  NoiseKey::new(
    first_sample.wrapping_add(u64::from(r.sample)),
    (u64::from(r.count) << 2) | u64::from(r.flags & 3),
  )
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
/// `out[i]`, with the noise stream of `keys[i]` under `seed`. Rows run in parallel on rayon's pool.
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
  keys: &[NoiseKey],
  out: &mut [f32],
) -> Result<()> {
  let [n, c, h, w] = shape;
  let (image, pixels) = impute::image_sizes(c, h, w)?;
  let rows = samples.len();
  let total = |arg, count: usize, size: usize| {
    count.checked_mul(size).ok_or_else(|| {
      CoreError::shape(
        arg,
        "an element count that fits in usize",
        format!("{shape:?}"),
      )
    })
  };
  expect_len("x", x.len(), total("x", n, image)?)?;
  expect_len("masks", masks.len(), total("masks", rows, pixels)?)?;
  expect_len("keys", keys.len(), rows)?;
  expect_len("out", out.len(), total("out", rows, image)?)?;
  if let Fill::Constant(value) = fill {
    if !value.is_finite() {
      return Err(CoreError::param(
        "constant",
        format!("must be finite, got {value}"),
      ));
    }
  }
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
    .zip(samples.par_iter().zip(keys.par_iter()))
    .try_for_each(|((o, m), (&s, &key))| {
      let xi = &x[s as usize * image..][..image];
      match fill {
        Fill::NoisyLinear { noise } => {
          impute::noisy_linear_into(xi, m, [c, h, w], noise, seed, key, o)?
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

/// ROAD's rows: writes into `out` the rows `rows` (`(sample, count, flags)`), each the sample of
/// `x` (`shape = [N, C, H, W]`) with its `count` top-ranked pixels in `order` (`[N, H·W]`; the
/// bottom-ranked with [`FROM_END`]) imputed with `noise`. The shard's sample 0 is sample
/// `first_sample` of the whole data set; each row's noise is keyed by [`row_key`].
///
/// # Errors
/// As [`pixel_masks`] and [`impute_rows`]; `INVALID_OPTION` (`firstSample`) if the global
/// indices overflow.
#[allow(clippy::too_many_arguments)]
pub fn impute_ranked_rows(
  x: &[f32],
  shape: [usize; 4],
  order: &[u32],
  rows: &[RowSpec],
  noise: f32,
  seed: u64,
  first_sample: u64,
  out: &mut [f32],
) -> Result<()> {
  let [n, c, h, w] = shape;
  check_sample_range(first_sample, n)?;
  let (_, pixels) = impute::image_sizes(c, h, w)?;
  let masks = pixel_masks(order, pixels, rows)?;
  let samples: Vec<u32> = rows.iter().map(|r| r.sample).collect();
  let keys: Vec<NoiseKey> = rows.iter().map(|r| row_key(first_sample, r)).collect();
  impute_rows(
    x,
    shape,
    &samples,
    &masks,
    Fill::NoisyLinear { noise },
    seed,
    &keys,
    out,
  )
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
    let err = pixel_masks(&[9, 0, 1, 2], 4, &rows(&[0, 1, 0])).unwrap_err();
    assert_eq!((err.code(), err.arg()), ("INVALID_OPTION", "order"));
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
    let keys: Vec<NoiseKey> = spec.iter().map(|r| row_key(0, r)).collect();
    let mut out = vec![0.0; spec.len() * c * h * w];
    impute_rows(
      &x,
      [3, c, h, w],
      &samples,
      &masks,
      Fill::NoisyLinear { noise: 0.1 },
      9,
      &keys,
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
        row_key(0, r),
      )
      .unwrap();
      assert_eq!(&out[i * c * h * w..][..c * h * w], &one[..]);
    }
    // The same row twice gets the same noise: the stream is the row's identity.
    assert_eq!(&out[..c * h * w], &out[3 * c * h * w..]);
  }

  #[test]
  fn a_shards_rows_equal_the_whole_sets() {
    let (n, c, h, w) = (4, 2, 4, 5);
    let image = c * h * w;
    let x: Vec<f32> = (0..n * image)
      .map(|i| ((i * 29) % 13) as f32 / 13.0)
      .collect();
    let order: Vec<u32> = (0..n as u32)
      .flat_map(|s| (0..20u32).map(move |p| (p * 3 + s) % 20))
      .collect();
    let impute = |x: &[f32], order: &[u32], samples: usize, first: u64, triples: &[u32]| {
      let spec = rows(triples);
      let mut out = vec![0.0; spec.len() * image];
      impute_ranked_rows(x, [samples, c, h, w], order, &spec, 0.5, 3, first, &mut out).unwrap();
      out
    };
    // Samples 2 and 3, 6 pixels from the top and 9 from the bottom.
    let whole = impute(&x, &order, n, 0, &[2, 6, 0, 2, 9, FROM_END, 3, 6, 0]);
    let shard = impute(
      &x[2 * image..],
      &order[2 * h * w..],
      2,
      2,
      &[0, 6, 0, 0, 9, FROM_END, 1, 6, 0],
    );
    assert_eq!(whole, shard);
    // Rows keyed by global id and step (soundness, completeness): the same.
    let masks = pixel_masks(&order, h * w, &rows(&[2, 7, 0, 3, 7, 0])).unwrap();
    let masked = |x: &[f32], samples: usize, local: [u32; 2]| {
      let keys = [NoiseKey::new(2, 5), NoiseKey::new(3, 5)];
      let mut out = vec![0.0; 2 * image];
      let fill = Fill::NoisyLinear { noise: 0.5 };
      impute_rows(
        x,
        [samples, c, h, w],
        &local,
        &masks,
        fill,
        3,
        &keys,
        &mut out,
      )
      .unwrap();
      out
    };
    assert_eq!(masked(&x, n, [2, 3]), masked(&x[2 * image..], 2, [0, 1]));
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
      &[NoiseKey::default()],
      &mut out,
    )
    .unwrap();
    assert_eq!(out, [1.0, -1.0, -1.0, 4.0, -1.0, -1.0]);
    let nan = Fill::Constant(f32::NAN);
    let keys = [NoiseKey::default()];
    let err = impute_rows(&x, [1, 2, 1, 3], &[0], &[0, 1, 1], nan, 0, &keys, &mut out).unwrap_err();
    assert_eq!((err.code(), err.arg()), ("INVALID_OPTION", "constant"));
  }
}
