//! Geometric multigrid solver for the noisy-linear-imputation system.
//!
//! The system lives on the pixel grid: unknown ("active") pixel `i` has the equation
//! `s_i·v_i − Σ_{n unknown} w_n·v_n = Σ_{n known} w_n·x_n`, a symmetric positive definite matrix
//! whenever every connected masked region touches a known pixel (the caller guarantees this: the
//! only region without a known neighbour is the whole image, which it handles before calling).
//!
//! # Iteration
//!
//! The iterate `u` is the whole image in f64 (known pixels hold their values, fixed), so the
//! residual `b − A·v` is simply the masked stencil `act·(Σ_n w_n·u_n − s·u)` applied to `u`: no
//! right-hand side is assembled. `u` is solved for by preconditioned conjugate gradients in which
//! everything but `u` is f32 (`r`, `z`, `p`, `q = A·p`, the whole preconditioner): f32 halves the
//! memory traffic and doubles the SIMD width. The residual follows the usual recurrence
//! `r −= α·q` (fused with `u += α·p` into one light pass), but an f32 recurrence drifts from the
//! true residual by about 1e-7 of the residual it started from, which is the order of the
//! tolerance. So the true residual is recomputed from `u` in f64 (one stencil pass, the costliest
//! of the iteration) whenever the recurrence has dropped by `REPLACE_DROP` (1e-3 in norm) since
//! the last true one, and before stopping; CG restarts from it (β = 0), which on nearly singular
//! regions (where `A·p` in f32 cancels badly) converges much better than carrying the old
//! direction over. The stopping test is thus always on the true residual; the f64 pass runs
//! 2–3 times per solve instead of every iteration, and the iteration count is unchanged
//! (4–8 for ordinary masks).
//!
//! The preconditioner is one V(1,1)-cycle (damped Jacobi before and after each coarse
//! correction, with the same damping, so that the cycle is symmetric). On the fine grid it is two
//! passes that stream rows through 3-row ring buffers: (1) Jacobi from zero `e = r/s` → `r − A e`
//! → restriction; (2) `e = r/s` again → `+ P·(coarse correction)` → Jacobi → `z`. Plain Jacobi
//! suits the fine stencil (weights 1/6 and 1/12 with centre 1: smoothing factor 1/3) and, unlike
//! Gauss–Seidel, vectorises.
//!
//! # Layout and hierarchy
//!
//! Every level is a zero-padded `(h + 3) × (w + 3)` grid stored row-major (one ring of padding
//! plus one more row and column at the end for coarse nodes past the last fine node), vectors
//! hold channels as separate planes, and every kernel runs branch-free over whole rows with the
//! mask as a multiplier, so the inner loops vectorise. A symmetric 9-point stencil is stored by its
//! centre and its four "forward" entries (E, SW, S, SE); the backward ones are the forward ones of
//! the neighbour. Coarse operators are Galerkin products `A_c = Pᵀ A P` with vertex-centred
//! bilinear interpolation `P` (coarse node `J` on fine node `2J`, `n/2 + 1` coarse nodes so that
//! every fine node lies between two), restricted to active fine nodes; `P` is a tensor product,
//! so `A_c` is formed in two one-dimensional passes. The coarsest (≤ 4×4) grid is solved
//! directly (dense `L·D·Lᵀ`).
//!
//! # CPU dispatch
//!
//! Every kernel that streams a grid is compiled for several CPU levels (`multiversion`, "simd"
//! targets: x86-64-v4 (AVX-512), v3 (AVX2 + FMA), v2, and the baseline; SVE on aarch64) and the
//! best the CPU supports is picked at run time. The source is plain safe Rust that LLVM
//! vectorises; where it would not inside a row loop (stride-2 loops), the loop is a function of
//! its own. The levels compute the same bits: Rust never contracts `a·b + c` into an FMA, and the
//! reductions have a fixed lane order (`dot32`), so results do not depend on the machine's SIMD.

mod coarse;
mod dense;
mod fine;

use coarse::{galerkin, vcycle};
use dense::Dense;
use fine::{fine_apply, fine_residual, fine_update, precond_down, precond_up};

/// Jacobi damping on the fine level (before and after the coarse correction: the same, so that
/// the cycle is symmetric, as CG needs).
const OMEGA_FINE: f32 = 1.0;
/// Jacobi damping on the coarse levels.
const OMEGA_COARSE: f32 = 0.85;
/// Coarsening stops once both sides are at most this long.
const COARSEST_SIDE: usize = 4;
/// The f32 residual recurrence is replaced by the true (f64) residual once `‖r‖²` has dropped by
/// this factor since the last replacement.
const REPLACE_DROP: f64 = 1e-6;
/// Hard cap on CG iterations (≈ 4–8 are needed; never reached in the tests).
const MAX_ITERS: usize = 100;

/// One coarse grid level: a symmetric 9-point operator on the padded grid.
#[derive(Debug, Default)]
struct Level {
  h: usize,
  w: usize,
  /// Padded width `w + 3`.
  pw: usize,
  /// Centre coefficient (0 at inactive nodes).
  d: Vec<f32>,
  /// Forward off-diagonal coefficients: to `(0, +1)`, `(+1, −1)`, `(+1, 0)`, `(+1, +1)`.
  e: Vec<f32>,
  sw: Vec<f32>,
  s: Vec<f32>,
  se: Vec<f32>,
  /// `ω / d` at active nodes, 0 elsewhere.
  dinv: Vec<f32>,
  /// 1 at active nodes, 0 elsewhere.
  act: Vec<f32>,
}

impl Level {
  fn n(&self) -> usize {
    (self.h + 3) * self.pw
  }

  /// Sizes the level for an `h × w` grid; the caller then writes every interior node.
  fn reset(&mut self, h: usize, w: usize) {
    let same = (self.h, self.w) == (h, w);
    self.h = h;
    self.w = w;
    self.pw = w + 3;
    let n = self.n();
    for v in [
      &mut self.d,
      &mut self.e,
      &mut self.sw,
      &mut self.s,
      &mut self.se,
      &mut self.dinv,
      &mut self.act,
    ] {
      zeroed(v, n, same);
    }
  }

  /// Padded index of interior node `(y, 0)`.
  #[inline(always)]
  fn row(&self, y: usize) -> usize {
    (y + 1) * self.pw + 1
  }

  fn finish(&mut self, omega: f32) {
    for ((di, a), &d) in self.dinv.iter_mut().zip(&mut self.act).zip(&self.d) {
      (*di, *a) = if d > 0.0 {
        (omega / d, 1.0)
      } else {
        (0.0, 0.0)
      };
    }
  }
}

/// Makes `v` `n` zeros, or leaves it as it is when `same` (the grid has the dimensions of the
/// previous call) and it already holds `n` values: the callers overwrite every interior node, and
/// no kernel ever writes the padding, so it is still zero. (Zeroing every buffer afresh cost about
/// 5 % of a 224×224 solve; in a metric, all images have the same size and most masks the same
/// bounding box.)
fn zeroed<T: Copy + Default>(v: &mut Vec<T>, n: usize, same: bool) {
  if !same || v.len() != n {
    v.clear();
    v.resize(n, T::default());
  }
}

/// Coarse size of a fine axis of `n` nodes: coarse node `J` sits on fine node `2J`, and every fine
/// node has a coarse node on both sides (the last may lie on the padding).
#[inline]
fn coarse_len(n: usize) -> usize {
  n / 2 + 1
}

/// The fine grid: the mask and the centre weights `s` (sum of the in-image neighbour weights).
#[derive(Debug, Default)]
struct Fine {
  h: usize,
  w: usize,
  pw: usize,
  wd: f64,
  wg: f64,
  /// 1 at unknown pixels, 0 elsewhere (padded).
  act: Vec<f32>,
  /// `s` by row kind (number of in-image vertical neighbours 0, 1, 2), per column.
  srow: [Vec<f64>; 3],
  srow32: [Vec<f32>; 3],
  /// `ω / s` by row kind, per column.
  sinv: [Vec<f32>; 3],
}

impl Fine {
  fn n(&self) -> usize {
    (self.h + 3) * self.pw
  }

  #[inline(always)]
  fn row(&self, y: usize) -> usize {
    (y + 1) * self.pw + 1
  }

  /// Row kind of row `y`: its number of in-image vertical neighbours.
  #[inline(always)]
  fn kind(&self, y: usize) -> usize {
    usize::from(y > 0) + usize::from(y + 1 < self.h)
  }
}

/// Per-level scratch vectors (one plane per channel).
#[derive(Debug, Default)]
struct LevelWs {
  b: Vec<f32>,
  x: Vec<f32>,
  r: Vec<f32>,
}

/// Reusable solver state: the grid hierarchy of the current mask plus scratch vectors.
#[derive(Debug, Default)]
pub(super) struct Solver {
  fine: Fine,
  /// The fine operator as a general level (for the Galerkin product only).
  fine_ops: Level,
  /// Coarse levels `1..`.
  levels: Vec<Level>,
  n_levels: usize,
  ws: Vec<LevelWs>,
  /// Galerkin x-pass scratch: forward stencil on the `h_f × w_c` grid.
  bx: [Vec<f32>; 5],
  /// Row scratch.
  rows: Vec<f32>,
  /// Direct solver of the coarsest level.
  dense: Dense,
  /// Fine-level iterate (known pixels hold their values) and f32 CG vectors.
  u: Vec<f64>,
  /// `(h, w, c)` of the grid `u` was last laid out for.
  u_shape: (usize, usize, usize),
  r32: Vec<f32>,
  z: Vec<f32>,
  p: Vec<f32>,
  /// `A·p`.
  q: Vec<f32>,
  /// Last solve's iteration count (diagnostics).
  pub(super) iters: usize,
}

impl Solver {
  /// Builds the hierarchy for `mask` (row-major `h × w`, 1 = unknown) with fine weights `wd`
  /// (direct) and `wg` (diagonal). Every 8-connected masked region must touch a known pixel.
  pub(super) fn setup(&mut self, mask: &[u8], h: usize, w: usize, wd: f64, wg: f64) {
    let f = &mut self.fine;
    let same = (f.h, f.w) == (h, w);
    f.h = h;
    f.w = w;
    f.pw = w + 3;
    f.wd = wd;
    f.wg = wg;
    let n = f.n();
    zeroed(&mut f.act, n, same);
    for y in 0..h {
      let st = f.row(y);
      for (a, &m) in f.act[st..st + w].iter_mut().zip(&mask[y * w..(y + 1) * w]) {
        *a = f32::from(m);
      }
    }
    for ny in 0..3 {
      let ny_f = ny as f64;
      let (sr, sr32, si) = (&mut f.srow[ny], &mut f.srow32[ny], &mut f.sinv[ny]);
      sr.clear();
      sr32.clear();
      si.clear();
      for x in 0..w {
        let nx = f64::from(u8::from(x > 0)) + f64::from(u8::from(x + 1 < w));
        let s = wd * (nx + ny_f) + wg * nx * ny_f;
        sr.push(s);
        sr32.push(s as f32);
        si.push(if s > 0.0 { (1.0 / s) as f32 } else { 0.0 });
      }
    }
    // The fine operator as a general level, for the Galerkin product.
    let fo = &mut self.fine_ops;
    fo.reset(h, w);
    let pw = fo.pw;
    let (wd32, wg32) = (wd as f32, wg as f32);
    for y in 0..h {
      let st = f.row(y);
      let srow = &f.srow32[f.kind(y)][..w];
      let act = &f.act[st..st + w];
      let ae = &f.act[st + 1..st + 1 + w];
      let asw = &f.act[st + pw - 1..st + pw - 1 + w];
      let as_ = &f.act[st + pw..st + pw + w];
      let ase = &f.act[st + pw + 1..st + pw + 1 + w];
      let d = &mut fo.d[st..st + w];
      let e = &mut fo.e[st..st + w];
      let sw = &mut fo.sw[st..st + w];
      let so = &mut fo.s[st..st + w];
      let se = &mut fo.se[st..st + w];
      for i in 0..w {
        let a = act[i];
        d[i] = a * srow[i];
        e[i] = -wd32 * a * ae[i];
        sw[i] = -wg32 * a * asw[i];
        so[i] = -wd32 * a * as_[i];
        se[i] = -wg32 * a * ase[i];
      }
    }

    let mut l = 0;
    let (mut ch, mut cw) = (h, w);
    while l == 0 || ch > COARSEST_SIDE || cw > COARSEST_SIDE {
      if self.levels.len() == l {
        self.levels.push(Level::default());
      }
      let (head, tail) = self.levels.split_at_mut(l);
      let src = if l == 0 { &self.fine_ops } else { &head[l - 1] };
      galerkin(src, &mut tail[0], &mut self.bx);
      tail[0].finish(1.0);
      (ch, cw) = (tail[0].h, tail[0].w);
      l += 1;
    }
    self.n_levels = l;
    self.dense.factor(&self.levels[l - 1]);
    if self.ws.len() < self.n_levels {
      self.ws.resize_with(self.n_levels, LevelWs::default);
    }
  }

  /// Padded width and plane length of the fine level.
  pub(super) fn padded_dims(&self) -> (usize, usize) {
    (self.fine.pw, self.fine.n())
  }

  /// The fine-level iterate, `c` planes of the padded grid, zero on the padding; the caller must
  /// write every interior node.
  pub(super) fn iterate_mut(&mut self, c: usize) -> &mut [f64] {
    let shape = (self.fine.h, self.fine.w, c);
    zeroed(&mut self.u, self.fine.n() * c, shape == self.u_shape);
    self.u_shape = shape;
    &mut self.u
  }

  pub(super) fn iterate(&self) -> &[f64] {
    &self.u
  }

  /// Solves for the unknown pixels of `c` channel planes. `u` (set by the caller through
  /// [`Solver::iterate_mut`]) holds the image on the padded fine grid with the known pixels set
  /// and any initial guess at the unknown ones; on return it holds the solution. Stops when every
  /// channel's true residual satisfies `‖r‖₂ ≤ rel_tol·‖r₀‖₂`.
  pub(super) fn solve(&mut self, c: usize, rel_tol: f64) {
    let n = self.fine.n();
    for (l, ws) in self.ws[..self.n_levels].iter_mut().enumerate() {
      let m = self.levels[l].n() * c;
      for v in [&mut ws.b, &mut ws.x, &mut ws.r] {
        v.clear();
        v.resize(m, 0.0);
      }
    }
    // `r`, `z` and `q` are written before they are read, and only at interior nodes: no need to
    // clear them. `p` is read on the padding (zero) by the stencil.
    for v in [&mut self.r32, &mut self.z, &mut self.q] {
      v.resize(n * c, 0.0);
    }
    self.p.clear();
    self.p.resize(n * c, 0.0);
    let m1 = self.levels[0].n();
    let rn0: Vec<f64> = (0..c)
      .map(|ch| {
        fine_residual(
          &self.fine,
          &self.u[ch * n..(ch + 1) * n],
          &mut self.r32[ch * n..(ch + 1) * n],
        )
      })
      .collect();
    let tol2: Vec<f64> = rn0.iter().map(|&v| v * rel_tol * rel_tol).collect();
    let mut done: Vec<bool> = rn0.iter().map(|&v| v == 0.0).collect();
    // ‖r‖² at the last true residual, and whether the next step restarts CG (β = 0).
    let mut base = rn0.clone();
    let mut restart = vec![true; c];
    self.iters = 0;
    let mut rz = vec![0.0f64; c];
    while !done.iter().all(|&d| d) && self.iters < MAX_ITERS {
      self.iters += 1;
      // z = M r (all pending channels share the coarse cycle).
      for ch in (0..c).filter(|&ch| !done[ch]) {
        let sl = ch * n..(ch + 1) * n;
        precond_down(
          &self.fine,
          &self.levels[0],
          &self.r32[sl],
          &mut self.ws[0].b[ch * m1..(ch + 1) * m1],
          &mut self.rows,
        );
      }
      vcycle(
        &self.levels[..self.n_levels],
        &mut self.ws[..self.n_levels],
        &mut self.rows,
        c,
        &mut self.dense,
      );
      for ch in 0..c {
        if done[ch] {
          continue;
        }
        let sl = ch * n..(ch + 1) * n;
        let rz_new = precond_up(
          &self.fine,
          &self.levels[0],
          &self.r32[sl.clone()],
          &self.ws[0].x[ch * m1..(ch + 1) * m1],
          &mut self.z[sl.clone()],
          &mut self.rows,
        );
        let beta = if restart[ch] || rz[ch] == 0.0 {
          0.0
        } else {
          (rz_new / rz[ch]) as f32
        };
        rz[ch] = rz_new;
        restart[ch] = false;
        let pq = fine_apply(
          &self.fine,
          &self.z[sl.clone()],
          beta,
          &mut self.p[sl.clone()],
          &mut self.q[sl.clone()],
        );
        let alpha = if pq > 0.0 { rz_new / pq } else { 0.0 };
        let mut rr = fine_update(
          &self.fine,
          alpha,
          &self.p[sl.clone()],
          &self.q[sl.clone()],
          &mut self.u[sl.clone()],
          &mut self.r32[sl.clone()],
        );
        // The f32 recurrence drifts from the true residual by ~1e-7 of the residual it started
        // from (more where `A·p` cancels, on nearly singular regions): once it has dropped by
        // REPLACE_DROP, and before stopping, replace it by the true one (f64) and restart.
        if rr <= tol2[ch] || rr <= REPLACE_DROP * base[ch] || pq <= 0.0 {
          rr = fine_residual(&self.fine, &self.u[sl.clone()], &mut self.r32[sl]);
          base[ch] = rr;
          restart[ch] = true;
        }
        if rr <= tol2[ch] || pq <= 0.0 {
          done[ch] = true;
        }
      }
    }
  }
}
