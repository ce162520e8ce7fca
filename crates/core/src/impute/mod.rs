//! ROAD's noisy linear imputation (Rong, Leemann et al. 2022), as `road/imputations.py`
//! (`NoisyLinearImputer`) and Quantus' `noisy_linear_imputation` implement it.
//!
//! For an image `[C, H, W]` and a mask over the `H × W` pixels (1 = impute, 0 = keep), every
//! imputed pixel equals the weighted mean of its **in-image** 8-neighbours — weight 1/6 for the 4
//! direct neighbours, 1/12 for the 4 diagonals, normalised by the sum `s_i` of the weights of the
//! neighbours that lie inside the image — whether those neighbours are known or imputed themselves:
//!
//! ```text
//! s_i·v_i − Σ_{n unknown} w_n·v_n = Σ_{n known} w_n·x_n        (one right-hand side per channel)
//! ```
//!
//! Known pixels are copied bit-exactly. Then `noise · N(0, 1)` is added to every imputed value and
//! the result is rounded to f32 once.
//!
//! # Conventions
//!
//! * Mask values must be exactly 0 or 1 (the reference code takes `mask < 0.5` / `> 0.5`; we
//!   reject anything else instead of guessing). Note the reference road code's own mask is
//!   1 = keep; ours is 1 = impute, as in the rest of xai-eval.
//! * Nothing masked → an unchanged copy; no random numbers are drawn.
//! * The system is block-diagonal over the 8-connected masked regions; a region is singular only
//!   if it has no known 8-neighbour, and since every non-masked pixel adjacent to a region would
//!   be one, that happens exactly when **every pixel is masked**. The reference (SciPy SuperLU)
//!   returns zeros there without a warning; we return zeros too (plus noise).
//! * Noise: `Rng::new(seed, stream)`, one `normal()` per imputed value, drawn channel-major
//!   (channel 0 first) and, within a channel, over imputed pixels in row-major order. With
//!   `noise == 0` nothing is drawn and the output is the exact solution. In the batched form image
//!   `n` uses stream `n`, so results do not depend on how images are batched.
//! * The reference forms the products `w·x` in float32 and accumulates in float64; we do all of it
//!   in float64 (differences ~1e-8 relative, far below the f32 output rounding).
//!
//! # Solver
//!
//! The matrix is symmetric positive definite (see above), shared by all channels. It is solved by
//! conjugate gradients preconditioned with a geometric multigrid V-cycle (Galerkin coarse
//! operators, Gauss–Seidel smoothing; see `mg.rs`), all channels together (up to 4 per pass), in
//! f64, to a relative residual of [`REL_TOL`] per channel. The iteration count is essentially
//! independent of the mask's shape and size (≈7–10 V-cycles), unlike Jacobi-preconditioned CG,
//! whose iteration count grows with the width of contiguous masked blobs.

mod mg;

use crate::error::{check_finite, expect_len, CoreError, Result};
use crate::rng::Rng;

/// Weight of each of the 4 direct (edge-sharing) neighbours.
pub const W_DIRECT: f64 = 1.0 / 6.0;
/// Weight of each of the 4 diagonal neighbours.
pub const W_DIAG: f64 = 1.0 / 12.0;
/// Relative residual `‖b − A v‖ ≤ REL_TOL·‖b‖` (per channel) at which the solve stops.
pub const REL_TOL: f64 = 1e-11;

/// Imputes one image `x` (`[channels, height, width]`, row-major) where `mask` (`[height, width]`)
/// is 1, with noise stream `stream` of `seed`. See the module docs for the conventions.
#[allow(clippy::too_many_arguments)]
pub fn noisy_linear(
  x: &[f32],
  mask: &[u8],
  channels: usize,
  height: usize,
  width: usize,
  noise: f32,
  seed: u64,
  stream: u64,
) -> Result<Vec<f32>> {
  let (image, pixels) = image_sizes(channels, height, width)?;
  expect_len("x", x.len(), image)?;
  expect_len("mask", mask.len(), pixels)?;
  check_noise(noise)?;
  check_mask(mask)?;
  check_finite("x", x)?;
  let mut out = vec![0.0f32; image];
  let mut imp = Imputer::default();
  imp.impute(
    x,
    mask,
    [channels, height, width],
    noise,
    Rng::new(seed, stream),
    &mut out,
  );
  Ok(out)
}

/// Imputes `N` images `x` (`shape = [N, C, H, W]`, row-major) with `N` masks (`[N, H, W]`) into
/// `out` (same length as `x`). Image `n` uses noise stream `n` of `seed`. `N = 0` is a no-op.
/// All inputs are validated before anything is written.
pub fn noisy_linear_batch(
  x: &[f32],
  masks: &[u8],
  shape: [usize; 4],
  noise: f32,
  seed: u64,
  out: &mut [f32],
) -> Result<()> {
  let [n, c, h, w] = shape;
  let (image, pixels) = image_sizes(c, h, w)?;
  let total = n.checked_mul(image).ok_or_else(|| overflow("x", &shape))?;
  let total_mask = n
    .checked_mul(pixels)
    .ok_or_else(|| overflow("masks", &shape))?;
  expect_len("x", x.len(), total)?;
  expect_len("masks", masks.len(), total_mask)?;
  expect_len("out", out.len(), total)?;
  check_noise(noise)?;
  check_mask_named("masks", masks)?;
  check_finite("x", x)?;
  let mut imp = Imputer::default();
  for (i, ((xi, mi), oi)) in x
    .chunks_exact(image)
    .zip(masks.chunks_exact(pixels))
    .zip(out.chunks_exact_mut(image))
    .enumerate()
  {
    imp.impute(xi, mi, [c, h, w], noise, Rng::new(seed, i as u64), oi);
  }
  Ok(())
}

fn overflow(arg: &'static str, shape: &[usize]) -> CoreError {
  CoreError::shape(
    arg,
    "a shape whose element count fits in usize",
    format!("{shape:?}"),
  )
}

/// `(C·H·W, H·W)`, rejecting empty images and overflow.
fn image_sizes(c: usize, h: usize, w: usize) -> Result<(usize, usize)> {
  if c == 0 || h == 0 || w == 0 {
    return Err(CoreError::EmptyInput { arg: "x" });
  }
  let pixels = h.checked_mul(w).ok_or_else(|| overflow("x", &[c, h, w]))?;
  let image = pixels
    .checked_mul(c)
    .ok_or_else(|| overflow("x", &[c, h, w]))?;
  Ok((image, pixels))
}

fn check_noise(noise: f32) -> Result<()> {
  if noise.is_finite() && noise >= 0.0 {
    Ok(())
  } else {
    Err(CoreError::param(
      "noise",
      format!("must be finite and >= 0, got {noise}"),
    ))
  }
}

fn check_mask(mask: &[u8]) -> Result<()> {
  check_mask_named("mask", mask)
}

fn check_mask_named(name: &'static str, mask: &[u8]) -> Result<()> {
  match mask.iter().position(|&m| m > 1) {
    Some(i) => Err(CoreError::param(
      name,
      format!(
        "values must be 0 (keep) or 1 (impute); got {} at flat index {i}",
        mask[i]
      ),
    )),
    None => Ok(()),
  }
}

/// Reusable buffers, so that a batch allocates once.
#[derive(Debug, Default)]
struct Imputer {
  solver: mg::Solver,
  b: Vec<f64>,
  v: Vec<f64>,
  /// Solution per channel, over imputed pixels in row-major order.
  sol: Vec<f64>,
  idx: Vec<usize>,
}

impl Imputer {
  /// Validated inputs only.
  fn impute(
    &mut self,
    x: &[f32],
    mask: &[u8],
    [c, h, w]: [usize; 3],
    noise: f32,
    mut rng: Rng,
    out: &mut [f32],
  ) {
    out.copy_from_slice(x);
    let hw = h * w;
    self.idx.clear();
    self.idx.extend(
      mask
        .iter()
        .enumerate()
        .filter(|(_, &m)| m != 0)
        .map(|(i, _)| i),
    );
    let m = self.idx.len();
    if m == 0 {
      return;
    }
    self.sol.clear();
    self.sol.resize(c * m, 0.0);
    if m < hw {
      self.solve(x, mask, c, h, w);
    } // else: everything masked, singular system → zeros (see module docs).
    let noise = f64::from(noise);
    for ch in 0..c {
      let plane = &mut out[ch * hw..(ch + 1) * hw];
      let sol = &self.sol[ch * m..(ch + 1) * m];
      for (&i, &v) in self.idx.iter().zip(sol) {
        let v = if noise > 0.0 {
          v + noise * rng.normal()
        } else {
          v
        };
        plane[i] = v as f32;
      }
    }
  }

  fn solve(&mut self, x: &[f32], mask: &[u8], c: usize, h: usize, w: usize) {
    self.solver.setup(mask, h, w, W_DIRECT, W_DIAG);
    let mut c0 = 0;
    while c0 < c {
      let k = (c - c0).min(4);
      match k {
        1 => self.solve_group::<1>(x, mask, c0, h, w),
        2 => self.solve_group::<2>(x, mask, c0, h, w),
        3 => self.solve_group::<3>(x, mask, c0, h, w),
        _ => self.solve_group::<4>(x, mask, c0, h, w),
      }
      c0 += k;
    }
  }

  /// Solves channels `c0 .. c0 + K` and stores them in `self.sol`.
  fn solve_group<const K: usize>(&mut self, x: &[f32], mask: &[u8], c0: usize, h: usize, w: usize) {
    let hw = h * w;
    let pw = self.solver.padded_width();
    self.b.clear();
    self.b.resize((h + 2) * pw * K, 0.0);
    for y in 0..h {
      for xx in 0..w {
        if mask[y * w + xx] == 0 {
          continue;
        }
        let mut acc = [0.0f64; K];
        for dy in -1..=1isize {
          for dx in -1..=1isize {
            let (ny, nx) = (y as isize + dy, xx as isize + dx);
            if (dy == 0 && dx == 0) || ny < 0 || nx < 0 || ny >= h as isize || nx >= w as isize {
              continue;
            }
            let q = ny as usize * w + nx as usize;
            if mask[q] != 0 {
              continue;
            }
            let wt = if dy == 0 || dx == 0 { W_DIRECT } else { W_DIAG };
            for (c, a) in acc.iter_mut().enumerate() {
              *a += wt * f64::from(x[(c0 + c) * hw + q]);
            }
          }
        }
        let p = ((y + 1) * pw + xx + 1) * K;
        self.b[p..p + K].copy_from_slice(&acc);
      }
    }
    self.solver.solve::<K>(&self.b, &mut self.v, REL_TOL);
    let m = self.idx.len();
    for (j, &i) in self.idx.iter().enumerate() {
      let p = ((i / w + 1) * pw + i % w + 1) * K;
      for c in 0..K {
        self.sol[(c0 + c) * m + j] = self.v[p + c];
      }
    }
  }
}

#[cfg(test)]
mod tests;
