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
//! * Noise: the ziggurat stream `Rng::keyed(seed, sample, Purpose::Imputation, step).normals()`
//!   of the row's [`NoiseKey`] (see [`crate::rng::Normals`]),
//!   one value per imputed value, consumed in order channel-major (channel 0 first) and, within a
//!   channel, over imputed pixels in row-major order (all pixels, channel-major, when everything
//!   is masked). The k-th imputed value takes the k-th normal of the stream whatever the batch,
//!   the crop or the thread. (It used to be one Box–Muller `Rng::normal()` per value,
//!   ~30 ns each, about 2 ms of a 50 %-masked 3×224×224 image; the ziggurat costs a few ns. The
//!   values differ, the distribution does not.) With `noise == 0` nothing is drawn and the output
//!   is the exact solution. The key names the sample by its index in the whole data set and the
//!   row by what it is, so results do not depend on how images are batched or sharded.
//! * The reference forms the products `w·x` in float32 and accumulates in float64; we do all of it
//!   in float64 (differences ~1e-8 relative, far below the f32 output rounding).
//!
//! # Memory
//!
//! Each thread keeps its solver buffers between calls (about 6 MB for a 3×224×224 image, sized
//! by the largest image it has seen): allocating and page-faulting them afresh would cost about as
//! much as the solve itself.
//!
//! # Solver
//!
//! The matrix is symmetric positive definite (see above), shared by all channels. It is solved by
//! conjugate gradients preconditioned with one geometric multigrid V-cycle (Galerkin coarse
//! operators, Jacobi smoothing, a direct solve on the coarsest grid; see `mg.rs`), run on the
//! whole padded pixel grid with the mask as a multiplier so that every loop vectorises. The
//! iterate is f64; the residual recurrence, the search vectors and the preconditioner are f32,
//! and the residual is recomputed from the iterate in f64 after every 1e-3 drop and before
//! stopping. It stops when every channel's residual satisfies
//! `‖b − A v‖₂ ≤ REL_TOL·‖b‖₂`; that takes 4–8 iterations whatever the mask, and leaves an error of
//! a few 1e-7 at most for data of unit scale (the output is rounded to f32 anyway). Regions that
//! are disconnected share the coarse grids, so they are independent only up to that tolerance.

mod mg;

use crate::error::{check_finite, expect_len, CoreError, Result};
use crate::rng::{Purpose, Rng};
use multiversion::multiversion;

/// Weight of each of the 4 direct (edge-sharing) neighbours.
pub const W_DIRECT: f64 = 1.0 / 6.0;
/// Weight of each of the 4 diagonal neighbours.
pub const W_DIAG: f64 = 1.0 / 12.0;
/// Relative residual `‖b − A v‖₂ ≤ REL_TOL·‖b‖₂` (per channel) at which the solve stops.
pub const REL_TOL: f64 = 1e-7;

/// Which noise stream an imputed image draws, besides the user's seed: `sample` is the image's
/// sample index in the whole data set, `step` says which of that sample's rows it is (a mask's
/// key, a metric step). The stream is `Rng::keyed(seed, sample, Purpose::Imputation, step)`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoiseKey {
  pub sample: u64,
  pub step: u64,
}

impl NoiseKey {
  pub const fn new(sample: u64, step: u64) -> Self {
    NoiseKey { sample, step }
  }

  /// The generator of this key under `seed`.
  pub fn rng(self, seed: u64) -> Rng {
    Rng::keyed(seed, self.sample, Purpose::Imputation, self.step)
  }
}

/// Imputes one image `x` (`[channels, height, width]`, row-major) where `mask` (`[height, width]`)
/// is 1, with the noise stream of `key` under `seed`. See the module docs for the conventions.
#[allow(clippy::too_many_arguments)]
pub fn noisy_linear(
  x: &[f32],
  mask: &[u8],
  channels: usize,
  height: usize,
  width: usize,
  noise: f32,
  seed: u64,
  key: NoiseKey,
) -> Result<Vec<f32>> {
  let (image, _) = image_sizes(channels, height, width)?;
  let mut out = vec![0.0f32; image];
  noisy_linear_into(
    x,
    mask,
    [channels, height, width],
    noise,
    seed,
    key,
    &mut out,
  )?;
  Ok(out)
}

/// [`noisy_linear`] written into `out` (`[channels, height, width]`, every value overwritten), so
/// that rows of a batch are imputed in place: a fresh 3×224×224 output plus the copy into the
/// batch cost about a tenth of the solve.
pub fn noisy_linear_into(
  x: &[f32],
  mask: &[u8],
  [channels, height, width]: [usize; 3],
  noise: f32,
  seed: u64,
  key: NoiseKey,
  out: &mut [f32],
) -> Result<()> {
  let (image, pixels) = image_sizes(channels, height, width)?;
  expect_len("x", x.len(), image)?;
  expect_len("mask", mask.len(), pixels)?;
  expect_len("out", out.len(), image)?;
  check_noise(noise)?;
  check_mask(mask)?;
  check_finite("x", x)?;
  with_imputer(|imp| {
    imp.impute(
      x,
      mask,
      [channels, height, width],
      noise,
      key.rng(seed),
      out,
    );
  });
  Ok(())
}

thread_local! {
  /// Scratch buffers of this thread, kept between calls (see the module docs).
  static IMPUTER: std::cell::RefCell<Imputer> = std::cell::RefCell::new(Imputer::default());
}

/// Runs `f` with this thread's reusable [`Imputer`]. Fresh multi-megabyte buffers cost more in
/// page faults than a whole 224×224 solve takes otherwise, so they are kept per thread. `f` never
/// re-enters, so the borrow cannot fail; if it ever did, a fresh imputer is used instead.
fn with_imputer<R>(f: impl FnOnce(&mut Imputer) -> R) -> R {
  IMPUTER.with(|cell| match cell.try_borrow_mut() {
    Ok(mut imp) => f(&mut imp),
    Err(_) => f(&mut Imputer::default()),
  })
}

fn overflow(arg: &'static str, shape: &[usize]) -> CoreError {
  CoreError::shape(
    arg,
    "a shape whose element count fits in usize",
    format!("{shape:?}"),
  )
}

/// `(C·H·W, H·W)`, rejecting empty images and overflow.
pub(crate) fn image_sizes(c: usize, h: usize, w: usize) -> Result<(usize, usize)> {
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
  match mask.iter().position(|&m| m > 1) {
    Some(i) => Err(CoreError::param(
      "mask",
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
  /// The mask cropped to the solved box.
  mask: Vec<u8>,
  /// The masked pixels: padded index in the iterate, flat index in the image (see
  /// [`list_masked`]).
  masked: Vec<(usize, usize)>,
}

impl Imputer {
  /// Validated inputs only.
  fn impute(
    &mut self,
    x: &[f32],
    mask: &[u8],
    [c, h, w]: [usize; 3],
    noise: f32,
    rng: Rng,
    out: &mut [f32],
  ) {
    out.copy_from_slice(x);
    let hw = h * w;
    let m = mask.iter().filter(|&&v| v != 0).count();
    if m == 0 {
      return;
    }
    let noise = f64::from(noise);
    if m == hw {
      // Everything masked: singular system, zeros like the reference (see module docs).
      if noise > 0.0 {
        let mut normals = rng.normals();
        for o in out.iter_mut() {
          *o = (noise * normals.next_normal()) as f32;
        }
      } else {
        out.fill(0.0);
      }
      return;
    }
    // Only the bounding box of the masked pixels, grown by one pixel (their neighbours), takes
    // part: outside it nothing is unknown. The box keeps the centre weights right: a masked pixel
    // is on the box's edge only where that is the image's edge.
    let (mut y0, mut y1, mut x0, mut x1) = (h, 0, w, 0);
    for (y, row) in mask.chunks_exact(w).enumerate() {
      if let Some(first) = row.iter().position(|&v| v != 0) {
        let last = row.iter().rposition(|&v| v != 0).unwrap_or(first);
        (y0, y1) = (y0.min(y), y + 1);
        (x0, x1) = (x0.min(first), x1.max(last + 1));
      }
    }
    let (y0, y1, x0, x1) = (
      y0.saturating_sub(1),
      (y1 + 1).min(h),
      x0.saturating_sub(1),
      (x1 + 1).min(w),
    );
    let (bh, bw) = (y1 - y0, x1 - x0);
    self.mask.clear();
    for row in mask.chunks_exact(w).take(y1).skip(y0) {
      self.mask.extend_from_slice(&row[x0..x1]);
    }
    self.solver.setup(&self.mask, bh, bw, W_DIRECT, W_DIAG);
    let (pw, n) = self.solver.padded_dims();
    let u = self.solver.iterate_mut(c);
    for ch in 0..c {
      fill_iterate(
        &x[ch * hw..(ch + 1) * hw],
        mask,
        [w, y0, x0, bh, bw, pw],
        &mut u[ch * n..(ch + 1) * n],
      );
    }
    self.solver.solve(c, REL_TOL);
    // The imputed pixels in row-major order, as (padded index in a plane of the iterate, flat
    // index in an image plane): the same for every channel, so listed once.
    let k = list_masked(mask, [w, y0, x0, bh, bw, pw], &mut self.masked);
    let masked = &self.masked[..k];
    let u = self.solver.iterate();
    let mut normals = (noise > 0.0).then(|| rng.normals());
    for ch in 0..c {
      let (plane, o) = (&u[ch * n..(ch + 1) * n], &mut out[ch * hw..(ch + 1) * hw]);
      match normals.as_mut() {
        // The k-th imputed value of the image (channel-major, then row-major) takes the k-th
        // normal of the stream.
        Some(normals) => {
          for &(up, op) in masked {
            o[op] = (plane[up] + noise * normals.next_normal()) as f32;
          }
        }
        None => {
          for &(up, op) in masked {
            o[op] = plane[up] as f32;
          }
        }
      }
    }
  }
}

/// Copies one channel plane of the solved box into its plane of the padded iterate, 0 at unknown
/// pixels. `[w, y0, x0, bh, bw, pw]`: image width, the box's origin and size, the padded width.
#[multiversion(targets = "simd")]
fn fill_iterate(x: &[f32], mask: &[u8], [w, y0, x0, bh, bw, pw]: [usize; 6], u: &mut [f64]) {
  for by in 0..bh {
    let y = y0 + by;
    let st = (by + 1) * pw + 1;
    let (src, mrow) = (
      &x[y * w + x0..y * w + x0 + bw],
      &mask[y * w + x0..y * w + x0 + bw],
    );
    for ((d, &s), &mk) in u[st..st + bw].iter_mut().zip(src).zip(mrow) {
      // Branch-free (the mask is random): 0 at unknown pixels, `x` (finite) elsewhere.
      *d = f64::from(s) * f64::from(1 - mk);
    }
  }
}

/// The masked pixels of the box in row-major order as `(padded index, flat image index)`, in
/// `list[..k]`; returns `k`. Written branch-free: every pixel is stored, and the next slot
/// advances only past masked ones (`list` keeps its length between calls, so nothing is zeroed).
#[multiversion(targets = "simd")]
fn list_masked(
  mask: &[u8],
  [w, y0, x0, bh, bw, pw]: [usize; 6],
  list: &mut Vec<(usize, usize)>,
) -> usize {
  if list.len() < bh * bw + 1 {
    list.resize(bh * bw + 1, (0, 0));
  }
  let mut k = 0;
  for by in 0..bh {
    let y = y0 + by;
    let (st, ost) = ((by + 1) * pw + 1, y * w + x0);
    for (bx, &mk) in mask[ost..ost + bw].iter().enumerate() {
      list[k] = (st + bx, ost + bx);
      k += usize::from(mk);
    }
  }
  k
}

#[cfg(test)]
mod tests;
