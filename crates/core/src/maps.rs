//! Per-pixel attribution maps, the input of soundness and completeness (Li, Zhang et al., TMLR
//! 2024): one value per pixel, the channel sum of the attribution, optionally divided by the map's
//! maximum. Those metrics rank pixels, not entries, and the paper's thresholds (0.9 … 0.1) assume
//! maps scaled to at most 1, so this sits apart from the entry/pixel feature scores of
//! [`crate::layout`] that the curve metrics rank.

use crate::error::{expect_len, CoreError, Result};
use crate::layout::{FeatureUnit, Layout};

/// Maps `[samples, H·W]` of attributions `a` (`[samples, C_a, H, W]`, `C_a` = `layout.attr_channels`):
/// the channel sum per pixel and, with `normalize`, each map divided by its maximum when that is
/// positive (a map without a positive value is left as it is).
///
/// # Errors
/// `SHAPE_MISMATCH` (`a`) if `a` is not `samples` maps of the layout, or its size overflows.
pub fn pixel_maps(a: &[f32], samples: usize, layout: &Layout, normalize: bool) -> Result<Vec<f32>> {
  let layout = Layout {
    unit: FeatureUnit::Pixel,
    ..*layout
  };
  let overflow = || CoreError::shape("a", "a size that fits in usize", format!("{samples} maps"));
  let len = samples
    .checked_mul(layout.attr_len())
    .ok_or_else(overflow)?;
  expect_len("a", a.len(), len)?;
  let mut maps = vec![0f32; samples.checked_mul(layout.pixels).ok_or_else(overflow)?];
  if layout.pixels == 0 {
    return Ok(maps);
  }
  for (src, dst) in a
    .chunks_exact(layout.attr_len())
    .zip(maps.chunks_exact_mut(layout.pixels))
  {
    layout.feature_scores(src, dst);
    let max = dst.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if normalize && max > 0.0 {
      dst.iter_mut().for_each(|v| *v /= max);
    }
  }
  Ok(maps)
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn channel_sums_divided_by_the_positive_maximum() {
    let layout = Layout::new(2, 2, 2, FeatureUnit::Entry).unwrap();
    // Two samples: channel sums [2, 4] and [-1, -3].
    let a = [1.0, 1.0, 1.0, 3.0, -1.0, -1.0, 0.0, -2.0];
    assert_eq!(
      pixel_maps(&a, 2, &layout, true).unwrap(),
      [0.5, 1.0, -1.0, -3.0]
    );
    assert_eq!(
      pixel_maps(&a, 2, &layout, false).unwrap(),
      [2.0, 4.0, -1.0, -3.0]
    );
    let err = pixel_maps(&a[..7], 2, &layout, true).unwrap_err();
    assert_eq!((err.code(), err.arg()), ("SHAPE_MISMATCH", "a"));
  }
}
