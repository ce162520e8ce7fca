//! Hot loops of the built-in gradient-free explainers (occlusion, RISE, permutation Shapley) and of
//! the robustness metrics' noisy inputs. Every explainer is "masked rows, then a weighted sum of
//! masks": a mask `m ∈ [0, 1]^(H·W)` makes the row `x + w·(b − x)` with the baseline weight
//! `w = m` (occlusion: 1 inside the patch) or `w = 1 − m` (RISE and Shapley keep-masks), shared by
//! all channels; the attribution is `Σ_m coef[s, m] · m` ([`mask_sums`]).
//!
//! Masks shared by every sample (RISE masks, Shapley permutations) are keyed by
//! `Rng::keyed(seed, mask index, Purpose::Mask, 0)`: the same whatever the batch or shard. Noise is
//! keyed by `Rng::keyed(seed, global sample, Purpose::Perturbation, draw)`.

use rayon::prelude::*;

use crate::rng::{Purpose, Rng};
use crate::{CoreError, Result};

/// Row index meaning "the unmasked input".
pub const CLEAN: u32 = u32::MAX;

fn check_len(arg: &'static str, got: usize, expected: usize) -> Result<()> {
  if got == expected {
    Ok(())
  } else {
    Err(CoreError::ShapeMismatch {
      arg,
      expected: format!("{expected} values"),
      got: format!("{got}"),
    })
  }
}

/// Occlusion windows: `patch × patch` squares every `stride` pixels, the last one flush with the
/// bottom/right edge so every pixel is covered. Returns `[M, H·W]` indicators (1 inside the window).
pub fn occlusion_masks(h: usize, w: usize, patch: usize, stride: usize) -> Result<Vec<f32>> {
  if patch == 0 || stride == 0 || patch > h.min(w) {
    return Err(CoreError::InvalidParam {
      name: "patch",
      reason: format!(
        "patch {patch} and stride {stride} must be ≥ 1 and the patch at most {}",
        h.min(w)
      ),
    });
  }
  let starts = |len: usize| {
    let mut v: Vec<usize> = (0..=len - patch).step_by(stride).collect();
    if *v.last().unwrap_or(&0) != len - patch {
      v.push(len - patch);
    }
    v
  };
  let (rows, cols) = (starts(h), starts(w));
  let mut masks = vec![0f32; rows.len() * cols.len() * h * w];
  for (i, &r) in rows.iter().enumerate() {
    for (j, &c) in cols.iter().enumerate() {
      let m = &mut masks[(i * cols.len() + j) * h * w..][..h * w];
      for y in r..r + patch {
        m[y * w + c..y * w + c + patch].fill(1.0);
      }
    }
  }
  Ok(masks)
}

/// RISE masks (Petsiuk et al. 2018): a `cells × cells` grid of Bernoulli(`p`) cells, upsampled
/// bilinearly (cell centres at `(k + ½)·cell`, edge cells held) and read at a random shift in
/// `[0, cell)` pixels per axis, the shift RISE gets from upsampling to `(cells + 1)·cell` and cropping. Mask `i` draws from `Rng::keyed(seed, i, Purpose::Mask, 0)`: `p·cells²` Bernoulli
/// cells in row-major order, then the two shifts. `[count, H·W]`.
pub fn rise_masks(
  seed: u64,
  count: usize,
  cells: usize,
  p: f64,
  h: usize,
  w: usize,
) -> Result<Vec<f32>> {
  if cells == 0 || cells > h.min(w) || !(p > 0.0 && p <= 1.0) {
    return Err(CoreError::InvalidParam {
      name: "cell",
      reason: format!(
        "cells {cells} must be in [1, {}] and p {p} in (0, 1]",
        h.min(w)
      ),
    });
  }
  let (ch, cw) = (h.div_ceil(cells), w.div_ceil(cells));
  let mut masks = vec![0f32; count * h * w];
  masks.par_chunks_mut(h * w).enumerate().for_each(|(i, m)| {
    let mut rng = Rng::keyed(seed, i as u64, Purpose::Mask, 0);
    let grid: Vec<f64> = (0..cells * cells)
      .map(|_| f64::from(u8::from(rng.uniform() < p)))
      .collect();
    let dy = rng.below(ch as u64) as usize;
    let dx = rng.below(cw as u64) as usize;
    // Upsampled grid of size (cells + 1)·c: cell centres at (k + 0.5)·c, clamped at the borders.
    let at = |k: isize| grid_index(k, cells);
    for y in 0..h {
      let fy = ((y + dy) as f64 + 0.5) / ch as f64 - 0.5;
      let y0 = fy.floor();
      let ty = fy - y0;
      for x in 0..w {
        let fx = ((x + dx) as f64 + 0.5) / cw as f64 - 0.5;
        let x0 = fx.floor();
        let tx = fx - x0;
        let (r0, r1) = (at(y0 as isize), at(y0 as isize + 1));
        let (c0, c1) = (at(x0 as isize), at(x0 as isize + 1));
        let v = (1.0 - ty) * ((1.0 - tx) * grid[r0 * cells + c0] + tx * grid[r0 * cells + c1])
          + ty * ((1.0 - tx) * grid[r1 * cells + c0] + tx * grid[r1 * cells + c1]);
        m[y * w + x] = v as f32;
      }
    }
  });
  Ok(masks)
}

/// Grid cell `k`, clamped to the grid (bilinear interpolation holds the edge cells' values).
fn grid_index(k: isize, cells: usize) -> usize {
  (k.max(0) as usize).min(cells - 1)
}

/// Permutation-sampling Shapley masks over `groups` feature groups (`labels[p]` = group of pixel
/// p): permutation `j` is a Fisher–Yates shuffle from `Rng::keyed(seed, j, Purpose::Mask, 1)`, and
/// its rows are the keep-masks of its first `0…groups` groups. Returns the masks
/// `[perms·(groups + 1), H·W]` and the permutations `[perms, groups]`.
pub fn shapley_masks(
  seed: u64,
  perms: usize,
  labels: &[u32],
  groups: usize,
) -> Result<(Vec<f32>, Vec<u32>)> {
  if groups == 0 || labels.iter().any(|&l| l as usize >= groups) {
    return Err(CoreError::InvalidParam {
      name: "labels",
      reason: format!("every label must be below the {groups} groups"),
    });
  }
  let p = labels.len();
  let mut orders = vec![0u32; perms * groups];
  let mut scratch = Vec::new();
  for (j, o) in orders.chunks_mut(groups).enumerate() {
    Rng::keyed(seed, j as u64, Purpose::Mask, 1).subset(groups, groups, &mut scratch);
    o.copy_from_slice(&scratch);
  }
  let mut masks = vec![0f32; perms * (groups + 1) * p];
  masks
    .par_chunks_mut((groups + 1) * p)
    .zip(orders.par_chunks(groups))
    .for_each(|(m, o)| {
      let mut kept = vec![false; groups];
      for k in 0..=groups {
        if k > 0 {
          kept[o[k - 1] as usize] = true;
        }
        for (v, &l) in m[k * p..(k + 1) * p].iter_mut().zip(labels) {
          *v = f32::from(u8::from(kept[l as usize]));
        }
      }
    });
  Ok((masks, orders))
}

/// Where the rows of [`fill_mask_rows`] come from.
pub struct MaskSource<'a> {
  /// Inputs `[N, C, H·W]`.
  pub x: &'a [f32],
  /// Baselines, same shape as `x`.
  pub baselines: &'a [f32],
  pub samples: usize,
  pub channels: usize,
  pub pixels: usize,
  /// `[M, H·W]` masks.
  pub masks: &'a [f32],
  /// The baseline weight is the mask (occlusion) or one minus it (keep-masks).
  pub keep: bool,
}

/// Row `i` of `out` is sample `pairs[2i]` with mask `pairs[2i + 1]` applied ([`CLEAN`]: none):
/// `x + w·(b − x)` entry by entry.
pub fn fill_mask_rows(src: &MaskSource, pairs: &[u32], out: &mut [f32]) -> Result<()> {
  let len = src.channels * src.pixels;
  check_len("x", src.x.len(), src.samples * len)?;
  check_len("baselines", src.baselines.len(), src.x.len())?;
  let count = src.masks.len().checked_div(src.pixels).unwrap_or(0);
  check_len("masks", src.masks.len(), count * src.pixels)?;
  check_len("out", out.len(), pairs.len() / 2 * len)?;
  for pair in pairs.chunks(2) {
    if pair[0] as usize >= src.samples || (pair[1] != CLEAN && pair[1] as usize >= count) {
      return Err(CoreError::InvalidParam {
        name: "rows",
        reason: format!(
          "row ({}, {}) is outside {} samples × {count} masks",
          pair[0], pair[1], src.samples
        ),
      });
    }
  }
  if len == 0 {
    return Ok(());
  }
  out
    .par_chunks_mut(len)
    .zip(pairs.par_chunks(2))
    .for_each(|(row, pair)| {
      let s = pair[0] as usize;
      let x = &src.x[s * len..][..len];
      if pair[1] == CLEAN {
        row.copy_from_slice(x);
        return;
      }
      let b = &src.baselines[s * len..][..len];
      let m = &src.masks[pair[1] as usize * src.pixels..][..src.pixels];
      for c in 0..src.channels {
        let o = c * src.pixels;
        for p in 0..src.pixels {
          let wgt = if src.keep { 1.0 - m[p] } else { m[p] };
          row[o + p] = x[o + p] + wgt * (b[o + p] - x[o + p]);
        }
      }
    });
  Ok(())
}

/// `out[s, p] = Σ_m coef[s, m] · masks[m, p]`: `[N, H·W]`, parallel over samples.
pub fn mask_sums(coef: &[f64], samples: usize, masks: &[f32], pixels: usize) -> Result<Vec<f64>> {
  let count = coef.len().checked_div(samples).unwrap_or(0);
  check_len("coef", coef.len(), samples * count)?;
  check_len("masks", masks.len(), count * pixels)?;
  let mut out = vec![0f64; samples * pixels];
  if pixels == 0 {
    return Ok(out);
  }
  out
    .par_chunks_mut(pixels)
    .zip(coef.par_chunks(count.max(1)))
    .for_each(|(o, c)| {
      for (m, &k) in c.iter().enumerate() {
        if k == 0.0 {
          continue;
        }
        for (v, &mv) in o.iter_mut().zip(&masks[m * pixels..(m + 1) * pixels]) {
          *v += k * f64::from(mv);
        }
      }
    });
  Ok(out)
}

/// Noise of the robustness metrics.
#[derive(Debug, Clone, Copy)]
pub enum Noise {
  /// `N(mean, σ²)` per entry: `mean + σ·z`, ziggurat normals `z` in entry order.
  Gaussian { mean: f64, sigma: f64 },
  /// `U(low, high)` per entry: `low + (high − low)·u` with 53-bit `u`, in entry order.
  Uniform { low: f64, high: f64 },
}

/// Noisy copies: row `i` is sample `rows[2i]` (local index) plus the noise of draw `rows[2i + 1]`,
/// keyed by `Rng::keyed(seed, first_sample + sample, Purpose::Perturbation, draw)`; the noise is
/// computed in f64, rounded to f32, and added in f32.
pub fn noisy_rows(
  x: &[f32],
  samples: usize,
  first_sample: u64,
  seed: u64,
  noise: Noise,
  rows: &[u32],
  out: &mut [f32],
) -> Result<()> {
  let len = x.len().checked_div(samples).unwrap_or(0);
  check_len("x", x.len(), samples * len)?;
  check_len("out", out.len(), rows.len() / 2 * len)?;
  if let Some(pair) = rows.chunks(2).find(|p| p[0] as usize >= samples) {
    return Err(CoreError::InvalidParam {
      name: "rows",
      reason: format!("sample {} is outside {samples} samples", pair[0]),
    });
  }
  if len == 0 {
    return Ok(());
  }
  out
    .par_chunks_mut(len)
    .zip(rows.par_chunks(2))
    .for_each(|(row, pair)| {
      let s = pair[0] as usize;
      let rng = Rng::keyed(
        seed,
        first_sample + s as u64,
        Purpose::Perturbation,
        u64::from(pair[1]),
      );
      let src = &x[s * len..][..len];
      match noise {
        Noise::Gaussian { mean, sigma } => {
          let mut z = rng.normals();
          for (o, &v) in row.iter_mut().zip(src) {
            *o = v + (mean + sigma * z.next_normal()) as f32;
          }
        }
        Noise::Uniform { low, high } => {
          let mut r = rng;
          for (o, &v) in row.iter_mut().zip(src) {
            *o = v + (low + (high - low) * r.uniform()) as f32;
          }
        }
      }
    });
  Ok(())
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn occlusion_windows_cover_every_pixel() {
    let m = occlusion_masks(5, 5, 2, 2).unwrap();
    assert_eq!(m.len(), 9 * 25);
    let mut cover = [0f32; 25];
    for w in m.chunks(25) {
      for (c, v) in cover.iter_mut().zip(w) {
        *c += v;
      }
    }
    assert!(cover.iter().all(|&c| c >= 1.0));
    assert!(occlusion_masks(5, 5, 6, 1).is_err());
  }

  #[test]
  fn rise_masks_are_keyed_by_mask_index() {
    let a = rise_masks(7, 4, 3, 0.5, 8, 8).unwrap();
    let b = rise_masks(7, 6, 3, 0.5, 8, 8).unwrap();
    assert_eq!(a[..], b[..4 * 64]);
    assert!(a.iter().all(|&v| (0.0..=1.0).contains(&v)));
    let ones = rise_masks(1, 2, 2, 1.0, 4, 4).unwrap();
    assert!(ones.iter().all(|&v| v == 1.0));
  }

  #[test]
  fn shapley_rows_add_one_group_at_a_time() {
    let labels = [0, 0, 1, 2];
    let (m, o) = shapley_masks(3, 2, &labels, 3).unwrap();
    assert_eq!(m.len(), 2 * 4 * 4);
    assert!(m[..4].iter().all(|&v| v == 0.0));
    assert!(m[3 * 4..4 * 4].iter().all(|&v| v == 1.0));
    let mut sorted = o[..3].to_vec();
    sorted.sort_unstable();
    assert_eq!(sorted, [0, 1, 2]);
  }

  #[test]
  fn mask_rows_and_sums() {
    let x = [1.0, 2.0, 3.0, 4.0];
    let b = [0.0; 4];
    let masks = [1.0, 0.0, 0.5, 0.5];
    let src = MaskSource {
      x: &x,
      baselines: &b,
      samples: 2,
      channels: 1,
      pixels: 2,
      masks: &masks,
      keep: false,
    };
    let mut out = [0f32; 6];
    fill_mask_rows(&src, &[0, 0, 1, 1, 1, CLEAN], &mut out).unwrap();
    assert_eq!(out, [0.0, 2.0, 1.5, 2.0, 3.0, 4.0]);
    let s = mask_sums(&[1.0, 2.0, 0.0, 1.0], 2, &masks, 2).unwrap();
    assert_eq!(s, [2.0, 1.0, 0.5, 0.5]);
    assert!(fill_mask_rows(&src, &[2, 0], &mut out[..2]).is_err());
  }

  #[test]
  fn noise_is_keyed_by_global_sample_and_draw() {
    let x = [0f32; 6];
    let mut whole = [0f32; 6];
    noisy_rows(
      &x,
      3,
      10,
      5,
      Noise::Uniform {
        low: -0.2,
        high: 0.2,
      },
      &[0, 1, 1, 1, 2, 1],
      &mut whole,
    )
    .unwrap();
    let mut part = [0f32; 2];
    noisy_rows(
      &x[4..],
      1,
      12,
      5,
      Noise::Uniform {
        low: -0.2,
        high: 0.2,
      },
      &[0, 1],
      &mut part,
    )
    .unwrap();
    assert_eq!(part, whole[4..]);
    assert!(whole.iter().all(|v| v.abs() <= 0.2));
  }
}
