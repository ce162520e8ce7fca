//! What a "feature" is. Inputs are `[N, C, H, W]`; attributions are `[N, C, H, W]` or
//! `[N, 1, H, W]`. A feature is either one *entry* (channel, pixel) — Quantus's convention, where a
//! per-pixel attribution is broadcast into `C` tied features (quantus-semantics §0.2) — or one
//! *pixel* spanning every channel, whose attribution is the channel sum (ROAD, Deletion/Insertion).

use crate::error::{CoreError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeatureUnit {
  Entry,
  Pixel,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
  pub channels: usize,
  /// `H · W`.
  pub pixels: usize,
  /// Channels of the attribution: 1 (broadcast) or `channels`.
  pub attr_channels: usize,
  pub unit: FeatureUnit,
}

impl Layout {
  pub fn new(
    channels: usize,
    pixels: usize,
    attr_channels: usize,
    unit: FeatureUnit,
  ) -> Result<Self> {
    if channels == 0 || pixels == 0 {
      return Err(CoreError::shape(
        "shape",
        "C ≥ 1 and H·W ≥ 1",
        format!("C={channels}, H·W={pixels}"),
      ));
    }
    if channels.checked_mul(pixels).is_none() {
      return Err(CoreError::shape(
        "shape",
        "C·H·W that fits in usize",
        format!("C={channels}, H·W={pixels}"),
      ));
    }
    if attr_channels != 1 && attr_channels != channels {
      return Err(CoreError::shape(
        "aShape",
        format!("1 or {channels} channels"),
        attr_channels,
      ));
    }
    Ok(Layout {
      channels,
      pixels,
      attr_channels,
      unit,
    })
  }

  /// Length of one input row, `C · H · W`.
  pub fn row_len(&self) -> usize {
    self.channels * self.pixels
  }

  /// Length of one attribution map.
  pub fn attr_len(&self) -> usize {
    self.attr_channels * self.pixels
  }

  /// Number of features `F` that an ordering ranks.
  pub fn features(&self) -> usize {
    match self.unit {
      FeatureUnit::Entry => self.row_len(),
      FeatureUnit::Pixel => self.pixels,
    }
  }

  /// Attribution of every feature of one sample, written into `out` (length [`Self::features`]).
  pub fn feature_scores(&self, a: &[f32], out: &mut [f32]) {
    let p = self.pixels;
    match (self.unit, self.attr_channels) {
      (FeatureUnit::Entry, 1) => out.chunks_mut(p).for_each(|chunk| chunk.copy_from_slice(a)),
      (FeatureUnit::Entry, _) | (FeatureUnit::Pixel, 1) => out.copy_from_slice(a),
      (FeatureUnit::Pixel, _) => {
        out.copy_from_slice(&a[..p]);
        for channel in a.chunks(p).skip(1) {
          out.iter_mut().zip(channel).for_each(|(o, v)| *o += v);
        }
      }
    }
  }

  /// Calls `f` with every flat row index that feature `feature` covers.
  #[inline]
  pub fn for_each_index(&self, feature: usize, mut f: impl FnMut(usize)) {
    match self.unit {
      FeatureUnit::Entry => f(feature),
      FeatureUnit::Pixel => (0..self.channels).for_each(|c| f(c * self.pixels + feature)),
    }
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn broadcast_attribution_ties_channel_copies() {
    let l = Layout::new(3, 2, 1, FeatureUnit::Entry).unwrap();
    let mut out = [0.0; 6];
    l.feature_scores(&[1.0, 2.0], &mut out);
    assert_eq!(out, [1.0, 2.0, 1.0, 2.0, 1.0, 2.0]);
  }

  #[test]
  fn pixel_unit_sums_channels() {
    let l = Layout::new(2, 2, 2, FeatureUnit::Pixel).unwrap();
    let mut out = [0.0; 2];
    l.feature_scores(&[1.0, 2.0, 10.0, 20.0], &mut out);
    assert_eq!(out, [11.0, 22.0]);
    let mut idx = vec![];
    l.for_each_index(1, |i| idx.push(i));
    assert_eq!(idx, [1, 3]);
  }

  #[test]
  fn rejects_attribution_channel_mismatch() {
    let err = Layout::new(3, 4, 2, FeatureUnit::Entry).unwrap_err();
    assert_eq!(err.code(), "SHAPE_MISMATCH");
    assert_eq!(err.arg(), "aShape");
  }
}
