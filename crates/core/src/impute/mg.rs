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

  fn reset(&mut self, h: usize, w: usize) {
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
      v.clear();
      v.resize(n, 0.0);
    }
  }

  /// Padded index of interior node `(y, 0)`.
  #[inline]
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

  #[inline]
  fn row(&self, y: usize) -> usize {
    (y + 1) * self.pw + 1
  }

  /// Row kind of row `y`: its number of in-image vertical neighbours.
  #[inline]
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
    f.h = h;
    f.w = w;
    f.pw = w + 3;
    f.wd = wd;
    f.wg = wg;
    let n = f.n();
    f.act.clear();
    f.act.resize(n, 0.0);
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

  /// The fine-level iterate, `c` planes of the padded grid (resized and zeroed by this call).
  pub(super) fn iterate_mut(&mut self, c: usize) -> &mut [f64] {
    let n = self.fine.n();
    self.u.clear();
    self.u.resize(n * c, 0.0);
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

/// Fine residual of row `y` in f64 (`act·(W u − s·u)`), rounded to f32 into `out`.
#[inline(always)]
fn fine_residual_row(f: &Fine, y: usize, u: &[f64], out: &mut [f32]) {
  let (w, pw) = (f.w, f.pw);
  let st = f.row(y);
  let un = &u[st - pw - 1..st - pw + w + 1];
  let um = &u[st - 1..st + w + 1];
  let us = &u[st + pw - 1..st + pw + w + 1];
  let act = &f.act[st..st + w];
  let s = &f.srow[f.kind(y)][..w];
  let out = &mut out[..w];
  let (wd, wg) = (f.wd, f.wg);
  for i in 0..w {
    let direct = (un[i + 1] + us[i + 1]) + (um[i] + um[i + 2]);
    let diag = (un[i] + un[i + 2]) + (us[i] + us[i + 2]);
    let v = (wd * direct + wg * diag) - s[i] * um[i + 1];
    out[i] = (f64::from(act[i]) * v) as f32;
  }
}

/// One Jacobi step on the fine level for a correction `e` (zero at inactive nodes), row `y`:
/// `out = e + ω/s·(r − A e)`; `en`, `em`, `es` are rows `y − 1`, `y`, `y + 1` of `e` from column
/// −1 (length `w + 2`).
#[inline(always)]
fn fine_jacobi_row(
  f: &Fine,
  y: usize,
  en: &[f32],
  em: &[f32],
  es: &[f32],
  r: &[f32],
  out: &mut [f32],
) {
  let w = f.w;
  let st = f.row(y);
  let (en, em, es) = (&en[..w + 2], &em[..w + 2], &es[..w + 2]);
  let act = &f.act[st..st + w];
  let k = f.kind(y);
  let s = &f.srow32[k][..w];
  let si = &f.sinv[k][..w];
  let r = &r[..w];
  let out = &mut out[..w];
  let (wd, wg) = (f.wd as f32, f.wg as f32);
  for i in 0..w {
    let direct = (en[i + 1] + es[i + 1]) + (em[i] + em[i + 2]);
    let diag = (en[i] + en[i + 2]) + (es[i] + es[i + 2]);
    let ae = s[i] * em[i + 1] - act[i] * (wd * direct + wg * diag);
    out[i] = em[i + 1] + OMEGA_FINE * act[i] * si[i] * (r[i] - ae);
  }
}

/// First half of the preconditioner for one channel: Jacobi step from zero `e = ω/s·r`, residual
/// `r − A e`, restricted into `bc` (the channel's plane on level 1).
fn precond_down(f: &Fine, cl: &Level, r: &[f32], bc: &mut [f32], rows: &mut Vec<f32>) {
  let (h, w, pw) = (f.h, f.w, f.pw);
  bc.fill(0.0);
  // Scratch: 3 ring rows of e (padded, from column −1), a zero row, a t row, a restricted row.
  rows.clear();
  rows.resize(7 * pw + 1, 0.0);
  let (ring, rest) = rows.split_at_mut(3 * pw);
  let (zero, rest) = rest.split_at_mut(pw);
  let (t, rest) = rest.split_at_mut(pw);
  let (hrow, g) = rest.split_at_mut(pw);
  let cpw = cl.pw;
  for y in 0..=h {
    if y < h {
      let st = f.row(y);
      let k = f.kind(y);
      let e = &mut ring[(y % 3) * pw..(y % 3) * pw + pw];
      for ((ei, &ri), &si) in e[1..=w].iter_mut().zip(&r[st..st + w]).zip(&f.sinv[k]) {
        *ei = OMEGA_FINE * si * ri;
      }
    }
    if y == 0 {
      continue;
    }
    let yy = y - 1;
    let em = &ring[(yy % 3) * pw..(yy % 3) * pw + pw];
    let en = if yy == 0 {
      &zero[..]
    } else {
      &ring[((yy - 1) % 3) * pw..((yy - 1) % 3) * pw + pw]
    };
    let es = if yy + 1 == h {
      &zero[..]
    } else {
      &ring[((yy + 1) % 3) * pw..((yy + 1) % 3) * pw + pw]
    };
    let st = f.row(yy);
    // t = r − A e (the Jacobi step from e with ω/s replaced by −1, minus e): compute directly.
    {
      let act = &f.act[st..st + w];
      let k = f.kind(yy);
      let s = &f.srow32[k][..w];
      let rr = &r[st..st + w];
      let (wd, wg) = (f.wd as f32, f.wg as f32);
      let (en, em, es) = (&en[..w + 2], &em[..w + 2], &es[..w + 2]);
      let tt = &mut t[1..=w];
      for i in 0..w {
        let direct = (en[i + 1] + es[i + 1]) + (em[i] + em[i + 2]);
        let diag = (en[i] + en[i + 2]) + (es[i] + es[i + 2]);
        let ae = s[i] * em[i + 1] - act[i] * (wd * direct + wg * diag);
        tt[i] = rr[i] - ae;
      }
    }
    // Restrict row yy: horizontally (fine columns 2X−1, 2X, 2X+1 with ½, 1, ½; t is padded, so
    // fine column x is t[x + 1]), then into coarse rows.
    // (All columns in a loop that vectorises, then every other one.)
    let wc = cl.w;
    let (tw, g) = (&t[..w + 3], &mut g[..=w]);
    for i in 0..=w {
      g[i] = 0.5 * (tw[i] + tw[i + 2]) + tw[i + 1];
    }
    for (o, &v) in hrow[..wc].iter_mut().zip(g.iter().step_by(2)) {
      *o = v;
    }
    let add = |bc: &mut [f32], yc: usize, wgt: f32| {
      let c0 = (yc + 1) * cpw + 1;
      for (o, &v) in bc[c0..c0 + wc].iter_mut().zip(&hrow[..wc]) {
        *o += wgt * v;
      }
    };
    if yy % 2 == 0 {
      add(bc, yy / 2, 1.0);
    } else {
      add(bc, yy / 2, 0.5);
      add(bc, yy / 2 + 1, 0.5);
    }
  }
}

/// Second half of the preconditioner for one channel: `e = ω/s·r + act·P xc`, one Jacobi step on
/// `e`, written to `z`. Returns `r·z`.
fn precond_up(
  f: &Fine,
  cl: &Level,
  r: &[f32],
  xc: &[f32],
  z: &mut [f32],
  rows: &mut Vec<f32>,
) -> f64 {
  let (h, w, pw) = (f.h, f.w, f.pw);
  let cpw = cl.pw;
  rows.clear();
  rows.resize(4 * pw + cpw + 2 * cpw, 0.0);
  let (ring, rest) = rows.split_at_mut(3 * pw);
  let (zero, rest) = rest.split_at_mut(pw);
  let (crow, dup) = rest.split_at_mut(cpw);
  let mut rz = 0.0f64;
  for y in 0..=h {
    if y < h {
      let st = f.row(y);
      let k = f.kind(y);
      let e = &mut ring[(y % 3) * pw + 1..(y % 3) * pw + 1 + w];
      // Vertical interpolation of the coarse correction into crow (padded coarse row).
      let c0 = (y / 2 + 1) * cpw;
      if y % 2 == 0 {
        crow.copy_from_slice(&xc[c0..c0 + cpw]);
      } else {
        for ((o, &a), &b) in crow
          .iter_mut()
          .zip(&xc[c0..c0 + cpw])
          .zip(&xc[c0 + cpw..c0 + 2 * cpw])
        {
          *o = 0.5 * (a + b);
        }
      }
      // Horizontal: fine x = 2X ← coarse X (padded X + 1); x = 2X + 1 ← ½(X, X + 1), as
      // ½(d[x] + d[x + 1]) of the doubled row d[2X] = d[2X + 1] = X: two loops that vectorise.
      for (pair, &v) in dup.chunks_exact_mut(2).zip(&crow[1..]) {
        pair[0] = v;
        pair[1] = v;
      }
      let (act, rr, si) = (&f.act[st..st + w], &r[st..st + w], &f.sinv[k][..w]);
      let d = &dup[..w + 1];
      for i in 0..w {
        e[i] = act[i] * (0.5 * (d[i] + d[i + 1])) + OMEGA_FINE * si[i] * rr[i];
      }
    }
    if y == 0 {
      continue;
    }
    let yy = y - 1;
    let em = &ring[(yy % 3) * pw..(yy % 3) * pw + pw];
    let en = if yy == 0 {
      &zero[..]
    } else {
      &ring[((yy - 1) % 3) * pw..((yy - 1) % 3) * pw + pw]
    };
    let es = if yy + 1 == h {
      &zero[..]
    } else {
      &ring[((yy + 1) % 3) * pw..((yy + 1) % 3) * pw + pw]
    };
    let st = f.row(yy);
    fine_jacobi_row(f, yy, en, em, es, &r[st..st + w], &mut z[st..st + w]);
    rz += dot32(&r[st..st + w], &z[st..st + w]);
  }
  rz
}

/// `a·b` of two f32 rows, accumulated in f32 lanes and returned in f64.
#[inline]
fn dot32(a: &[f32], b: &[f32]) -> f64 {
  let mut acc = [0.0f32; 8];
  let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
  let tail: f32 = ac
    .remainder()
    .iter()
    .zip(bc.remainder())
    .map(|(x, y)| x * y)
    .sum();
  for (x, y) in ac.zip(bc) {
    for k in 0..8 {
      acc[k] += x[k] * y[k];
    }
  }
  f64::from(acc.iter().sum::<f32>() + tail)
}

/// `p = z + β·p`, then `q = A·p` and `p·q` on the fine level (whole planes; `p`, `z` zero at
/// inactive nodes). Row `y` of `p` is updated before row `y − 1` of `q` is formed.
fn fine_apply(f: &Fine, z: &[f32], beta: f32, p: &mut [f32], q: &mut [f32]) -> f64 {
  let (w, pw) = (f.w, f.pw);
  let (wd, wg) = (f.wd as f32, f.wg as f32);
  let mut pq = 0.0f64;
  for yy in 0..=f.h {
    if yy < f.h {
      let st = f.row(yy);
      for (pi, &zi) in p[st..st + w].iter_mut().zip(&z[st..st + w]) {
        *pi = zi + beta * *pi;
      }
    }
    if yy == 0 {
      continue;
    }
    let y = yy - 1;
    let st = f.row(y);
    let (pn, pm, ps) = (
      &p[st - pw - 1..st - pw + w + 1],
      &p[st - 1..st + w + 1],
      &p[st + pw - 1..st + pw + w + 1],
    );
    let act = &f.act[st..st + w];
    let s = &f.srow32[f.kind(y)][..w];
    let out = &mut q[st..st + w];
    for i in 0..w {
      let direct = (pn[i + 1] + ps[i + 1]) + (pm[i] + pm[i + 2]);
      let diag = (pn[i] + pn[i + 2]) + (ps[i] + ps[i + 2]);
      out[i] = s[i] * pm[i + 1] - act[i] * (wd * direct + wg * diag);
    }
    pq += dot32(&p[st..st + w], out);
  }
  pq
}

/// `u += α·p` (f64), `r −= α·q` (the f32 recurrence); returns `‖r‖²`.
fn fine_update(f: &Fine, alpha: f64, p: &[f32], q: &[f32], u: &mut [f64], r: &mut [f32]) -> f64 {
  let w = f.w;
  let a32 = alpha as f32;
  let mut rr = 0.0f64;
  for y in 0..f.h {
    let st = f.row(y);
    for (ui, &pi) in u[st..st + w].iter_mut().zip(&p[st..st + w]) {
      *ui += alpha * f64::from(pi);
    }
    for (ri, &qi) in r[st..st + w].iter_mut().zip(&q[st..st + w]) {
      *ri -= a32 * qi;
    }
    rr += dot32(&r[st..st + w], &r[st..st + w]);
  }
  rr
}

/// True residual of `u` in f64, rounded to f32 into `r` (whole plane). Returns `‖r‖²` (f64).
fn fine_residual(f: &Fine, u: &[f64], r: &mut [f32]) -> f64 {
  let w = f.w;
  let mut rr = 0.0f64;
  for y in 0..f.h {
    let st = f.row(y);
    fine_residual_row(f, y, u, &mut r[st..st + w]);
    rr += dot32(&r[st..st + w], &r[st..st + w]);
  }
  rr
}

/// `y = A·x` on a coarse level, row `y`, for the channel plane starting at `base_c`.
#[inline(always)]
fn general_row(lv: &Level, y: usize, src: &[f32], base_c: usize, out: &mut [f32]) {
  let (w, pw) = (lv.w, lv.pw);
  let st = lv.row(y);
  let d = &lv.d[st..st + w];
  let e = &lv.e[st - 1..st + w];
  let sw = &lv.sw[st..st + w];
  let s = &lv.s[st..st + w];
  let se = &lv.se[st..st + w];
  let swn = &lv.sw[st - pw + 1..st - pw + 1 + w];
  let sn = &lv.s[st - pw..st - pw + w];
  let sen = &lv.se[st - pw - 1..st - pw - 1 + w];
  let base = base_c + st;
  let xn = &src[base - pw - 1..base - pw + w + 1];
  let xm = &src[base - 1..base + w + 1];
  let xs = &src[base + pw - 1..base + pw + w + 1];
  let out = &mut out[..w];
  for i in 0..w {
    let a = d[i] * xm[i + 1] + (e[i + 1] * xm[i + 2] + e[i] * xm[i]);
    let b = sw[i] * xs[i] + swn[i] * xn[i + 2] + (s[i] * xs[i + 1] + sn[i] * xn[i + 1]);
    let cc = se[i] * xs[i + 2] + sen[i] * xn[i];
    out[i] = a + b + cc;
  }
}

/// `r = b − A·x` on a coarse level.
fn residual(lv: &Level, c: usize, b: &[f32], x: &[f32], r: &mut [f32]) {
  let (w, n) = (lv.w, lv.n());
  for y in 0..lv.h {
    let st = lv.row(y);
    for ch in 0..c {
      let base = ch * n + st;
      let out = &mut r[base..base + w];
      general_row(lv, y, x, ch * n, out);
      for (o, &bi) in out.iter_mut().zip(&b[base..base + w]) {
        *o = bi - *o;
      }
    }
  }
}

/// `x += dinv·(b − A·x)` (Jacobi step; `r` is scratch).
fn jacobi(lv: &Level, c: usize, b: &[f32], x: &mut [f32], r: &mut [f32], om: f32) {
  residual(lv, c, b, x, r);
  let n = lv.n();
  for ch in 0..c {
    let sl = ch * n..(ch + 1) * n;
    for ((xi, &ri), &di) in x[sl.clone()].iter_mut().zip(&r[sl]).zip(&lv.dinv) {
      *xi += om * di * ri;
    }
  }
}

/// `bc = Pᵀ r` (restriction of `c` planes from `f` to `cl`); `row` is scratch.
fn restrict(f: &Level, cl: &Level, c: usize, r: &[f32], bc: &mut [f32], row: &mut Vec<f32>) {
  let (nf, nc) = (f.n(), cl.n());
  let fpw = f.pw;
  row.clear();
  row.resize(fpw, 0.0);
  for ch in 0..c {
    for yc in 0..cl.h {
      // Vertical: fine rows 2Y−1 (½), 2Y (1), 2Y+1 (½) over the whole padded row.
      let r0 = ch * nf + (2 * yc + 1) * fpw; // padded row of fine y = 2Y
      let rm = &r[r0 - fpw..r0];
      let rc = &r[r0..r0 + fpw];
      let rp = &r[r0 + fpw..r0 + 2 * fpw];
      for (((o, &a), &b), &cc) in row.iter_mut().zip(rm).zip(rc).zip(rp) {
        *o = 0.5 * (a + cc) + b;
      }
      // Horizontal: fine columns 2X−1, 2X, 2X+1; padded index of x is x + 1.
      let c0 = ch * nc + cl.row(yc);
      for (xc, o) in bc[c0..c0 + cl.w].iter_mut().enumerate() {
        *o = 0.5 * (row[2 * xc] + row[2 * xc + 2]) + row[2 * xc + 1];
      }
    }
  }
}

/// `x += act·(P xc)` (prolongation of `c` planes from `cl` to `f`); `row` is scratch.
fn prolong(f: &Level, cl: &Level, c: usize, xc: &[f32], x: &mut [f32], row: &mut Vec<f32>) {
  let (nf, nc) = (f.n(), cl.n());
  let cpw = cl.pw;
  row.clear();
  row.resize(cpw, 0.0);
  for ch in 0..c {
    for y in 0..f.h {
      let yc = y / 2;
      let c0 = ch * nc + (yc + 1) * cpw;
      if y % 2 == 0 {
        row.copy_from_slice(&xc[c0..c0 + cpw]);
      } else {
        for ((o, &a), &b) in row
          .iter_mut()
          .zip(&xc[c0..c0 + cpw])
          .zip(&xc[c0 + cpw..c0 + 2 * cpw])
        {
          *o = 0.5 * (a + b);
        }
      }
      let st = f.row(y);
      let base = ch * nf + st;
      let (out, am) = (&mut x[base..base + f.w], &f.act[st..st + f.w]);
      let mut pairs = out.chunks_exact_mut(2).zip(am.chunks_exact(2));
      for ((o, a), cc) in (&mut pairs).zip(row[1..].windows(2)) {
        o[0] += a[0] * cc[0];
        o[1] += a[1] * 0.5 * (cc[0] + cc[1]);
      }
      if f.w % 2 == 1 {
        out[f.w - 1] += am[f.w - 1] * row[f.w / 2 + 1];
      }
    }
  }
}

/// Dense `L·D·Lᵀ` factorisation of the coarsest level (at most `COARSEST_SIDE²` nodes), in f64.
/// A pivot that vanishes (below 1e-6 of its diagonal entry: the coefficients are f32) marks a
/// direction of the null space of a singular Galerkin operator (coarse basis functions that are
/// dependent on the active fine nodes, e.g. several seeing one isolated pixel); its unknown is set
/// to 0, which solves the consistent coarse systems the cycle builds (`P` annihilates that
/// direction anyway).
#[derive(Debug, Default)]
struct Dense {
  /// Padded indices of the nodes.
  nodes: Vec<usize>,
  /// Row-major `m × m`: unit lower factor below the diagonal, `1/D` (or 0) on it.
  f: Vec<f64>,
  tmp: Vec<f64>,
}

impl Dense {
  fn factor(&mut self, lv: &Level) {
    self.nodes.clear();
    for y in 0..lv.h {
      let st = lv.row(y);
      self
        .nodes
        .extend((st..st + lv.w).filter(|&p| lv.act[p] != 0.0));
    }
    let m = self.nodes.len();
    self.f.clear();
    self.f.resize(m * m, 0.0);
    let pw = lv.pw as isize;
    for (i, &p) in self.nodes.iter().enumerate() {
      for (j, &q) in self.nodes.iter().enumerate() {
        let d = q as isize - p as isize;
        let a = match d {
          0 => lv.d[p],
          1 => lv.e[p],
          -1 => lv.e[q],
          _ if d == pw - 1 => lv.sw[p],
          _ if d == -(pw - 1) => lv.sw[q],
          _ if d == pw => lv.s[p],
          _ if d == -pw => lv.s[q],
          _ if d == pw + 1 => lv.se[p],
          _ if d == -(pw + 1) => lv.se[q],
          _ => 0.0,
        };
        self.f[i * m + j] = f64::from(a);
      }
    }
    let f = &mut self.f;
    for k in 0..m {
      let diag0 = f64::from(lv.d[self.nodes[k]]);
      // f[j·m + j] holds D_j until the end; below the diagonal, L replaces A column by column.
      let mut d = f[k * m + k];
      for j in 0..k {
        let lkj = f[k * m + j];
        d -= lkj * lkj * f[j * m + j];
      }
      let singular = d <= 1e-6 * diag0;
      f[k * m + k] = if singular { 0.0 } else { d };
      for i in k + 1..m {
        let mut v = f[i * m + k];
        for j in 0..k {
          v -= f[i * m + j] * f[k * m + j] * f[j * m + j];
        }
        f[i * m + k] = if singular { 0.0 } else { v / d };
      }
    }
    for k in 0..m {
      let d = f[k * m + k];
      f[k * m + k] = if d > 0.0 { 1.0 / d } else { 0.0 };
    }
  }

  fn solve(&mut self, lv: &Level, c: usize, b: &[f32], x: &mut [f32]) {
    let m = self.nodes.len();
    let n = lv.n();
    x.fill(0.0);
    let f = &self.f;
    for ch in 0..c {
      let base = ch * n;
      self.tmp.clear();
      self
        .tmp
        .extend(self.nodes.iter().map(|&p| f64::from(b[base + p])));
      let t = &mut self.tmp;
      for i in 0..m {
        let mut v = t[i];
        for j in 0..i {
          v -= f[i * m + j] * t[j];
        }
        t[i] = v;
      }
      for i in 0..m {
        t[i] *= f[i * m + i];
      }
      for i in (0..m).rev() {
        let mut v = t[i];
        for j in i + 1..m {
          v -= f[j * m + i] * t[j];
        }
        t[i] = v;
      }
      for (&p, &v) in self.nodes.iter().zip(t.iter()) {
        x[base + p] = v as f32;
      }
    }
  }
}

/// One V(1,1)-cycle for `A x = b` on `levels[0]` (`b = ws[0].b`, result in `ws[0].x`), from
/// `x = 0`. Channels marked `done` are computed too (harmless; they are not used).
fn vcycle(levels: &[Level], ws: &mut [LevelWs], row: &mut Vec<f32>, c: usize, dense: &mut Dense) {
  let fine = &levels[0];
  let (ws0, ws_rest) = ws.split_at_mut(1);
  let LevelWs { b, x, r } = &mut ws0[0];
  if levels.len() == 1 {
    dense.solve(fine, c, b, x);
    return;
  }
  let n = fine.n();
  let (om1, om2) = (OMEGA_COARSE, OMEGA_COARSE);
  for ch in 0..c {
    let sl = ch * n..(ch + 1) * n;
    for ((xi, &bi), &di) in x[sl.clone()].iter_mut().zip(&b[sl]).zip(&fine.dinv) {
      *xi = om1 * di * bi;
    }
  }
  let coarse = &levels[1];
  residual(fine, c, b, x, r);
  restrict(fine, coarse, c, r, &mut ws_rest[0].b, row);
  vcycle(&levels[1..], ws_rest, row, c, dense);
  prolong(fine, coarse, c, &ws_rest[0].x, x, row);
  jacobi(fine, c, b, x, r, om2);
}

/// `coarse = Pᵀ fine P` (Galerkin product, see module docs), in an x pass into `bx` (the
/// `h_f × w_c` grid) and a y pass into `coarse`.
fn galerkin(f: &Level, cl: &mut Level, bx: &mut [Vec<f32>; 5]) {
  let (hc, wc) = (coarse_len(f.h), coarse_len(f.w));
  cl.reset(hc, wc);
  let bpw = wc + 3;
  let bn = (f.h + 3) * bpw;
  for v in bx.iter_mut() {
    v.clear();
    v.resize(bn, 0.0);
  }
  let [b0, be, bsw, bs, bse] = bx;
  // x pass: B(y, X) from fine row y, fine columns 2X−1 (½), 2X (1), 2X+1 (½). Entries that
  // would couple to a coarse node past the end (or before the start) come out exactly 0, since
  // every fine coefficient touching the padding is 0, so no end cases are needed.
  let span = 2 * wc + 1;
  for y in 0..f.h {
    let st = f.row(y) - 1; // fine x ↦ st + x + 1
    let (fd, fe, fsw, fs, fse) = (
      &f.d[st..st + span],
      &f.e[st..st + span],
      &f.sw[st..st + span],
      &f.s[st..st + span],
      &f.se[st..st + span],
    );
    let bst = (y + 1) * bpw + 1;
    let (o0, oe, osw, os, ose) = (
      &mut b0[bst..bst + wc],
      &mut be[bst..bst + wc],
      &mut bsw[bst..bst + wc],
      &mut bs[bst..bst + wc],
      &mut bse[bst..bst + wc],
    );
    for xc in 0..wc {
      let (xm, x0, xp) = (2 * xc, 2 * xc + 1, 2 * xc + 2);
      o0[xc] = 0.25 * (fd[xm] + fd[xp]) + fe[xm] + fd[x0] + fe[x0];
      os[xc] = 0.25 * (fs[xm] + fs[xp]) + 0.5 * (fse[xm] + fsw[x0] + fse[x0] + fsw[xp]) + fs[x0];
      oe[xc] = 0.5 * fe[x0] + 0.25 * fd[xp] + 0.5 * fe[xp];
      ose[xc] = 0.5 * fse[x0] + 0.25 * fs[xp] + 0.5 * fse[xp];
      osw[xc] = 0.5 * fsw[xm] + 0.25 * fs[xm] + 0.5 * fsw[x0];
    }
  }
  // y pass: coarse rows Y from B rows 2Y−1 (½), 2Y (1), 2Y+1 (½).
  for yc in 0..hc {
    let r0 = (2 * yc + 1) * bpw + 1; // B row y = 2Y, column 0
    let (rm, rp) = (r0 - bpw, r0 + bpw);
    let (b0m, b0o, b0p) = (&b0[rm..rm + wc], &b0[r0..r0 + wc], &b0[rp..rp + wc]);
    let (bsm, bso, bsp) = (&bs[rm..rm + wc], &bs[r0..r0 + wc], &bs[rp..rp + wc]);
    let (bem, beo, bep) = (&be[rm..rm + wc], &be[r0..r0 + wc], &be[rp - 1..rp + wc]);
    let (bsem, bseo, bsep) = (&bse[rm..rm + wc], &bse[r0..r0 + wc], &bse[rp..rp + wc]);
    let (bswm, bswo, bswp) = (
      &bsw[rm + 1..rm + 1 + wc],
      &bsw[r0..r0 + wc + 1],
      &bsw[rp..rp + wc],
    );
    let cst = cl.row(yc);
    let (cd, ce, cs, cse, csw) = (
      &mut cl.d[cst..cst + wc],
      &mut cl.e[cst..cst + wc],
      &mut cl.s[cst..cst + wc],
      &mut cl.se[cst..cst + wc],
      &mut cl.sw[cst..cst + wc],
    );
    for x in 0..wc {
      cd[x] = 0.25 * (b0m[x] + b0p[x]) + bsm[x] + b0o[x] + bso[x];
      ce[x] =
        0.25 * (bem[x] + bep[x + 1]) + 0.5 * (bsem[x] + bswm[x] + bseo[x] + bswo[x + 1]) + beo[x];
      cs[x] = 0.5 * bso[x] + 0.25 * b0p[x] + 0.5 * bsp[x];
      cse[x] = 0.5 * bseo[x] + 0.25 * bep[x + 1] + 0.5 * bsep[x];
      csw[x] = 0.5 * bswo[x] + 0.25 * bep[x] + 0.5 * bswp[x];
    }
  }
}
