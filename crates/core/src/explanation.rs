//! Random explanations: the reference points of the Quality Gap Estimator's paper. The random
//! baseline compares an explanation with K random ones, and the "latent quality distribution" of
//! an input is a metric's values over many random explanations (Eiras-Franco, Hedström & Höhne,
//! AAAI 2025, §4). An explanation here is a *ranking*: a permutation of `0, 1/(d−1), …, 1` over
//! the `d` cells of a grid, so only its order matters to a ranking metric.
//!
//! Draw `j` of sample `s` comes from `Rng::keyed(seed, s, Purpose::Explanation, j)`: a sample's
//! random explanations never depend on the batch or shard it is evaluated in.

use crate::error::{CoreError, Result};
use crate::rng::{Purpose, Rng};

/// Random rankings `[samples, H·W]` (one map per sample, to broadcast over channels) of samples
/// `first_sample…` for draw `draw`. With `chunk > 1` the ranking is drawn on a coarse grid of
/// `⌈H/chunk⌉ × ⌈W/chunk⌉` cells and upsampled by nearest neighbour ("chunky" rankings, which
/// keep image structure as the paper's ImageNet experiments do); `chunk = 1` ranks every pixel.
///
/// # Errors
/// `INVALID_OPTION` for `chunk = 0` or an empty image.
pub fn random_rankings(
  samples: usize,
  first_sample: u64,
  height: usize,
  width: usize,
  chunk: usize,
  seed: u64,
  draw: u64,
) -> Result<Vec<f32>> {
  if chunk == 0 {
    return Err(CoreError::param("chunk", "must be at least 1"));
  }
  if height == 0 || width == 0 {
    return Err(CoreError::param("shape", "the image has no pixels"));
  }
  let (gh, gw) = (height.div_ceil(chunk), width.div_ceil(chunk));
  let cells = gh * gw;
  let scale = if cells > 1 {
    1.0 / (cells - 1) as f64
  } else {
    0.0
  };
  let pixels = height * width;
  let mut out = vec![0f32; samples * pixels];
  let mut perm = Vec::with_capacity(cells);
  for (s, map) in out.chunks_exact_mut(pixels).enumerate() {
    Rng::keyed(seed, first_sample + s as u64, Purpose::Explanation, draw)
      .subset(cells, cells, &mut perm);
    // perm[k] is the cell of rank k: the cell gets value k / (cells − 1).
    let mut value = vec![0f32; cells];
    for (k, &cell) in perm.iter().enumerate() {
      value[cell as usize] = (k as f64 * scale) as f32;
    }
    for (i, v) in map.iter_mut().enumerate() {
      let (r, c) = (i / width, i % width);
      *v = value[(r / chunk) * gw + c / chunk];
    }
  }
  Ok(out)
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn a_ranking_is_a_permutation_of_its_levels_and_keyed_by_the_global_sample() {
    let r = random_rankings(3, 10, 4, 5, 1, 7, 2).unwrap();
    for map in r.chunks_exact(20) {
      let mut v: Vec<f32> = map.to_vec();
      v.sort_by(f32::total_cmp);
      let levels: Vec<f32> = (0..20).map(|k| (k as f64 / 19.0) as f32).collect();
      assert_eq!(v, levels);
    }
    // sample 11 alone is sample 11 in the batch
    let one = random_rankings(1, 11, 4, 5, 1, 7, 2).unwrap();
    assert_eq!(&r[20..40], &one[..]);
    assert_ne!(random_rankings(1, 11, 4, 5, 1, 7, 3).unwrap(), one);
  }

  #[test]
  fn chunky_rankings_are_constant_on_cells() {
    let r = random_rankings(1, 0, 5, 4, 2, 1, 0).unwrap(); // 3 × 2 cells, the last row short
    for i in 0..20 {
      let (row, col) = (i / 4, i % 4);
      assert_eq!(r[i], r[(row / 2 * 2) * 4 + col / 2 * 2]);
    }
    let mut distinct: Vec<f32> = r.clone();
    distinct.sort_by(f32::total_cmp);
    distinct.dedup();
    assert_eq!(distinct.len(), 6);
  }

  #[test]
  fn bad_arguments_are_typed_errors() {
    assert_eq!(
      random_rankings(1, 0, 4, 4, 0, 0, 0).unwrap_err().arg(),
      "chunk"
    );
    assert_eq!(
      random_rankings(1, 0, 0, 4, 1, 0, 0).unwrap_err().arg(),
      "shape"
    );
  }
}
