//! Multigrid-preconditioned conjugate gradients for the noisy-linear-imputation system.
//!
//! The system lives on the pixel grid: unknown ("active") pixel `i` has the equation
//! `s_i·v_i − Σ_{n unknown} w_n·v_n = Σ_{n known} w_n·x_n`, a symmetric positive definite matrix
//! whenever every connected masked region touches a known pixel (the caller guarantees this: the
//! only region without a known neighbour is the whole image, which it handles before calling).
//!
//! Every level stores a 9-point stencil per node of a zero-padded grid, so neighbour access needs
//! no bounds checks; inactive nodes (known pixels, padding) have all-zero coefficients and their
//! entries in every vector stay 0. Coarse operators are Galerkin products `A_c = Pᵀ A P` with
//! vertex-centred bilinear interpolation `P` (coarse node `J` sits on fine node `2J`), restricted to
//! active fine nodes; with a 9-point fine stencil `A_c` is again 9-point. The preconditioner is one
//! V(1,1)-cycle (forward Gauss–Seidel before, backward after, symmetric Gauss–Seidel sweeps on the
//! coarsest grid), a symmetric positive definite operator, so plain CG applies. All arithmetic is
//! in f64; `K` right-hand sides (channels) share every matrix access.

/// Offsets `(dy, dx)` in stencil order `k = (dy + 1)·3 + (dx + 1)`; `k = 4` is the centre.
const CENTRE: usize = 4;
/// Symmetric Gauss–Seidel sweep pairs on the coarsest level.
const COARSE_SWEEPS: usize = 8;
/// Hard cap on CG iterations (never reached in the tests; the V-cycle reduces the error by
/// roughly 10× per iteration on every mask tried).
const MAX_ITERS: usize = 500;

#[derive(Debug, Default)]
struct Level {
  h: usize,
  w: usize,
  /// Padded width `w + 2`.
  pw: usize,
  /// Stencil coefficients per padded node (zero for inactive nodes); empty when `uniform`.
  coef: Vec<[f64; 9]>,
  /// Fine level: off-diagonals are the constant weights `w9` (inactive neighbours hold 0 in
  /// every vector, so they need no masking) and the centre is `diag`.
  uniform: bool,
  w9: [f64; 9],
  /// Centre coefficient per padded node (0 for inactive nodes).
  diag: Vec<f64>,
  inv_diag: Vec<f64>,
  /// Padded indices of active nodes, increasing (row-major).
  active: Vec<usize>,
  /// Padded-index offset of each stencil entry.
  offs: [isize; 9],
  /// 1.0 at active nodes, 0.0 elsewhere.
  act: Vec<f64>,
  /// Interpolation rows onto the next coarser level (set when it is built).
  prow_y: Vec<([(usize, f64); 2], usize)>,
  prow_x: Vec<([(usize, f64); 2], usize)>,
}

impl Level {
  fn reset(&mut self, h: usize, w: usize, uniform: bool) {
    self.uniform = uniform;
    self.h = h;
    self.w = w;
    self.pw = w + 2;
    let n = (h + 2) * (w + 2);
    self.coef.clear();
    if !uniform {
      self.coef.resize(n, [0.0; 9]);
    }
    self.diag.clear();
    self.diag.resize(n, 0.0);
    self.inv_diag.clear();
    self.inv_diag.resize(n, 0.0);
    self.act.clear();
    self.act.resize(n, 0.0);
    self.active.clear();
    let pw = self.pw as isize;
    for dy in -1..=1isize {
      for dx in -1..=1isize {
        self.offs[((dy + 1) * 3 + dx + 1) as usize] = dy * pw + dx;
      }
    }
  }

  fn len(&self) -> usize {
    (self.h + 2) * (self.pw)
  }

  fn finish(&mut self) {
    self.active.clear();
    if !self.uniform {
      for (d, c) in self.diag.iter_mut().zip(&self.coef) {
        *d = c[CENTRE];
      }
    }
    for p in 0..self.diag.len() {
      let d = self.diag[p];
      if d > 0.0 {
        self.active.push(p);
        self.inv_diag[p] = 1.0 / d;
        self.act[p] = 1.0;
      }
    }
  }
}

/// Up to two `(coarse index, weight)` pairs interpolating fine index `i` (1-D).
#[inline]
fn prow(i: usize, nc: usize) -> ([(usize, f64); 2], usize) {
  if i.is_multiple_of(2) {
    ([(i / 2, 1.0), (0, 0.0)], 1)
  } else if i.div_ceil(2) < nc {
    ([((i - 1) / 2, 0.5), (i.div_ceil(2), 0.5)], 2)
  } else {
    // Last fine index of an even-sized grid: constant extension (natural boundary).
    ([((i - 1) / 2, 1.0), (0, 0.0)], 1)
  }
}

/// Per-level scratch vectors (stride `K`).
#[derive(Debug, Default)]
struct LevelWs {
  b: Vec<f64>,
  x: Vec<f64>,
  r: Vec<f64>,
}

/// Reusable solver state: the grid hierarchy of the current mask plus scratch vectors.
#[derive(Debug, Default)]
pub(super) struct Solver {
  levels: Vec<Level>,
  n_levels: usize,
  ws: Vec<LevelWs>,
  cg: [Vec<f64>; 5],
}

impl Solver {
  /// Builds the hierarchy for `mask` (row-major `h × w`, 1 = unknown). Every 8-connected masked
  /// region must touch a known pixel.
  pub(super) fn setup(&mut self, mask: &[u8], h: usize, w: usize, w_direct: f64, w_diag: f64) {
    if self.levels.is_empty() {
      self.levels.push(Level::default());
    }
    let fine = &mut self.levels[0];
    fine.reset(h, w, true);
    fine.w9 = [
      -w_diag, -w_direct, -w_diag, -w_direct, 0.0, -w_direct, -w_diag, -w_direct, -w_diag,
    ];
    let pw = fine.pw;
    for y in 0..h {
      for x in 0..w {
        if mask[y * w + x] == 0 {
          continue;
        }
        let p = (y + 1) * pw + x + 1;
        let mut s = 0.0;
        for dy in -1..=1isize {
          for dx in -1..=1isize {
            if dy == 0 && dx == 0 {
              continue;
            }
            let (ny, nx) = (y as isize + dy, x as isize + dx);
            if ny < 0 || nx < 0 || ny >= h as isize || nx >= w as isize {
              continue;
            }
            let wt = if dy == 0 || dx == 0 { w_direct } else { w_diag };
            s += wt;
          }
        }
        fine.diag[p] = s;
      }
    }
    fine.finish();

    let mut l = 0;
    loop {
      let (fh, fw, nact) = (
        self.levels[l].h,
        self.levels[l].w,
        self.levels[l].active.len(),
      );
      if (fh <= 2 && fw <= 2) || nact <= 8 {
        break;
      }
      if self.levels.len() == l + 1 {
        self.levels.push(Level::default());
      }
      let (head, tail) = self.levels.split_at_mut(l + 1);
      let f = &mut head[l];
      f.prow_y = prows(f.h, f.h.div_ceil(2));
      f.prow_x = prows(f.w, f.w.div_ceil(2));
      galerkin(f, &mut tail[0]);
      l += 1;
    }
    self.n_levels = l + 1;
    if self.ws.len() < self.n_levels {
      self.ws.resize_with(self.n_levels, LevelWs::default);
    }
  }

  /// Solves `A x = b` for `K` right-hand sides. `b` is indexed by padded fine node with stride
  /// `K`; the solution is written to `x` (same layout, resized by this call).
  pub(super) fn solve<const K: usize>(&mut self, b: &[f64], x: &mut Vec<f64>, rel_tol: f64) {
    let levels = &self.levels[..self.n_levels];
    let n = levels[0].len() * K;
    for (l, lv) in levels.iter().enumerate() {
      let m = lv.len() * K;
      let ws = &mut self.ws[l];
      for v in [&mut ws.b, &mut ws.x, &mut ws.r] {
        v.clear();
        v.resize(m, 0.0);
      }
    }
    x.clear();
    x.resize(n, 0.0);
    let [r, z, p, q, _] = &mut self.cg;
    for v in [&mut *r, &mut *z, &mut *p, &mut *q] {
      v.clear();
      v.resize(n, 0.0);
    }
    r.copy_from_slice(b);
    let bnorm2 = dots::<K>(b, b);
    let mut done = [false; K];
    for c in 0..K {
      done[c] = bnorm2[c] == 0.0;
    }
    if done.iter().all(|&d| d) {
      return;
    }
    let tol2: [f64; K] = std::array::from_fn(|c| bnorm2[c] * rel_tol * rel_tol);
    vcycle::<K>(levels, &mut self.ws, r, z);
    p.copy_from_slice(z);
    let mut rz = dots::<K>(r, z);
    for _ in 0..MAX_ITERS {
      apply::<K>(&levels[0], p, q);
      let pq = dots::<K>(p, q);
      let alpha: [f64; K] = std::array::from_fn(|c| {
        if done[c] || pq[c] <= 0.0 {
          0.0
        } else {
          rz[c] / pq[c]
        }
      });
      for ((xi, ri), (pi, qi)) in x
        .chunks_exact_mut(K)
        .zip(r.chunks_exact_mut(K))
        .zip(p.chunks_exact(K).zip(q.chunks_exact(K)))
      {
        for c in 0..K {
          xi[c] += alpha[c] * pi[c];
          ri[c] -= alpha[c] * qi[c];
        }
      }
      let rr = dots::<K>(r, r);
      for c in 0..K {
        if rr[c] <= tol2[c] || pq[c] <= 0.0 {
          done[c] = true;
        }
      }
      if done.iter().all(|&d| d) {
        break;
      }
      z.fill(0.0);
      vcycle::<K>(levels, &mut self.ws, r, z);
      let rz_new = dots::<K>(r, z);
      let beta: [f64; K] = std::array::from_fn(|c| {
        if done[c] || rz[c] == 0.0 {
          0.0
        } else {
          rz_new[c] / rz[c]
        }
      });
      rz = rz_new;
      for (pi, zi) in p.chunks_exact_mut(K).zip(z.chunks_exact(K)) {
        for c in 0..K {
          pi[c] = zi[c] + beta[c] * pi[c];
        }
      }
    }
  }

  /// Padded width of the fine level (for callers laying out `b`).
  pub(super) fn padded_width(&self) -> usize {
    self.levels[0].pw
  }
}

/// Per-channel dot products.
#[inline]
fn dots<const K: usize>(a: &[f64], b: &[f64]) -> [f64; K] {
  let mut s = [0.0; K];
  for (ai, bi) in a.chunks_exact(K).zip(b.chunks_exact(K)) {
    for c in 0..K {
      s[c] += ai[c] * bi[c];
    }
  }
  s
}

/// Padded indices of the interior nodes of row `y` (0-based) of `lv`.
#[inline]
fn row_range(lv: &Level, y: usize) -> std::ops::Range<usize> {
  let start = (y + 1) * lv.pw + 1;
  start..start + lv.w
}

/// Stencil of node `p` (off-diagonals not masked on a uniform level: see `Level::uniform`).
#[inline(always)]
fn stencil(lv: &Level, p: usize) -> [f64; 9] {
  if lv.uniform {
    let mut c = lv.w9;
    c[CENTRE] = lv.diag[p];
    c
  } else {
    lv.coef[p]
  }
}

/// `y = A v` over the whole grid, branch-free (0 at inactive nodes).
fn apply<const K: usize>(lv: &Level, v: &[f64], y: &mut [f64]) {
  for row in 0..lv.h {
    for p in row_range(lv, row) {
      let cf = stencil(lv, p);
      let m = lv.act[p];
      let mut acc = [0.0; K];
      let mut acc2 = [0.0; K];
      for k in [0, 1, 2, 3] {
        let q = p.wrapping_add_signed(lv.offs[k]) * K;
        for c in 0..K {
          acc[c] += cf[k] * v[q + c];
        }
      }
      for k in [4, 5, 6, 7, 8] {
        let q = p.wrapping_add_signed(lv.offs[k]) * K;
        for c in 0..K {
          acc2[c] += cf[k] * v[q + c];
        }
      }
      for c in 0..K {
        y[p * K + c] = m * (acc[c] + acc2[c]);
      }
    }
  }
}

/// `r = b − A x` over the whole grid (0 at inactive nodes).
fn residual<const K: usize>(lv: &Level, b: &[f64], x: &[f64], r: &mut [f64]) {
  apply::<K>(lv, x, r);
  for (ri, bi) in r.iter_mut().zip(b) {
    *ri = bi - *ri;
  }
}

/// Gauss–Seidel update of node `p`; `last` is the stencil entry of the neighbour updated just
/// before (west going forward, east going backward), summed last to shorten the dependency
/// chain. Inactive nodes have `inv_diag = 0` and stay 0.
#[inline(always)]
fn gs_node<const K: usize>(lv: &Level, p: usize, order: &[usize; 8], b: &[f64], x: &mut [f64]) {
  let cf = stencil(lv, p);
  let mut acc: [f64; K] = std::array::from_fn(|c| b[p * K + c]);
  let mut acc2 = [0.0; K];
  for &k in &order[..3] {
    let q = p.wrapping_add_signed(lv.offs[k]) * K;
    for c in 0..K {
      acc[c] -= cf[k] * x[q + c];
    }
  }
  for &k in &order[3..7] {
    let q = p.wrapping_add_signed(lv.offs[k]) * K;
    for c in 0..K {
      acc2[c] += cf[k] * x[q + c];
    }
  }
  let k = order[7];
  let q = p.wrapping_add_signed(lv.offs[k]) * K;
  let d = lv.inv_diag[p];
  for c in 0..K {
    let s = acc[c] - acc2[c];
    x[p * K + c] = (s - cf[k] * x[q + c]) * d;
  }
}

fn gs_forward<const K: usize>(lv: &Level, b: &[f64], x: &mut [f64]) {
  const ORDER: [usize; 8] = [0, 1, 2, 5, 6, 7, 8, 3];
  for row in 0..lv.h {
    for p in row_range(lv, row) {
      gs_node::<K>(lv, p, &ORDER, b, x);
    }
  }
}

fn gs_backward<const K: usize>(lv: &Level, b: &[f64], x: &mut [f64]) {
  const ORDER: [usize; 8] = [0, 1, 2, 3, 6, 7, 8, 5];
  for row in (0..lv.h).rev() {
    for p in row_range(lv, row).rev() {
      gs_node::<K>(lv, p, &ORDER, b, x);
    }
  }
}

/// 1-D interpolation rows for every fine index `0..n` onto a coarse grid of `nc` nodes.
fn prows(n: usize, nc: usize) -> Vec<([(usize, f64); 2], usize)> {
  (0..n).map(|i| prow(i, nc)).collect()
}

/// One V(1,1)-cycle for `A x = b` on `levels[0]`, starting from `x = 0` (caller zeroes `x`).
fn vcycle<const K: usize>(levels: &[Level], ws: &mut [LevelWs], b: &[f64], x: &mut [f64]) {
  let fine = &levels[0];
  if levels.len() == 1 {
    for _ in 0..COARSE_SWEEPS {
      gs_forward::<K>(fine, b, x);
      gs_backward::<K>(fine, b, x);
    }
    return;
  }
  let coarse = &levels[1];
  gs_forward::<K>(fine, b, x);
  let (ws0, ws_rest) = ws.split_at_mut(1);
  let r = &mut ws0[0].r;
  residual::<K>(fine, b, x, r);
  let mut bc = std::mem::take(&mut ws_rest[0].b);
  let mut xc = std::mem::take(&mut ws_rest[0].x);
  bc.fill(0.0);
  xc.fill(0.0);
  let cpw = coarse.pw;
  let rx = &fine.prow_x;
  // Restriction bc = Pᵀ r (r is 0 at inactive nodes).
  for y in 0..fine.h {
    let (ry, ny) = fine.prow_y[y];
    for (xx, p) in row_range(fine, y).enumerate() {
      let (rxx, nx) = rx[xx];
      for &(iy, wy) in &ry[..ny] {
        for &(ix, wx) in &rxx[..nx] {
          let wgt = wy * wx;
          let pc = ((iy + 1) * cpw + ix + 1) * K;
          for c in 0..K {
            bc[pc + c] += wgt * r[p * K + c];
          }
        }
      }
    }
  }
  vcycle::<K>(&levels[1..], ws_rest, &bc, &mut xc);
  // Prolongation x += P xc on active nodes.
  for y in 0..fine.h {
    let (ry, ny) = fine.prow_y[y];
    for (xx, p) in row_range(fine, y).enumerate() {
      let (rxx, nx) = rx[xx];
      let mut acc = [0.0; K];
      for &(iy, wy) in &ry[..ny] {
        for &(ix, wx) in &rxx[..nx] {
          let wgt = wy * wx;
          let pc = ((iy + 1) * cpw + ix + 1) * K;
          for c in 0..K {
            acc[c] += wgt * xc[pc + c];
          }
        }
      }
      let a = fine.act[p];
      for c in 0..K {
        x[p * K + c] += a * acc[c];
      }
    }
  }
  ws_rest[0].b = bc;
  ws_rest[0].x = xc;
  gs_backward::<K>(fine, b, x);
}

/// `coarse = Pᵀ fine P` (Galerkin product, see module docs).
fn galerkin(fine: &Level, coarse: &mut Level) {
  let (hc, wc) = (fine.h.div_ceil(2), fine.w.div_ceil(2));
  coarse.reset(hc, wc, false);
  let cpw = coarse.pw;
  for y in 0..fine.h {
    for (x, p) in row_range(fine, y).enumerate() {
      if fine.act[p] == 0.0 {
        continue;
      }
      // Row p of A·P over the 3×3 coarse window starting at (by, bx) (may be −1: padding).
      let by = (y as isize - 1).div_euclid(2);
      let bx = (x as isize - 1).div_euclid(2);
      let mut t = [[0.0f64; 3]; 3];
      let cf = stencil(fine, p);
      for dy in -1..=1isize {
        for dx in -1..=1isize {
          let k = ((dy + 1) * 3 + dx + 1) as usize;
          let a = cf[k] * fine.act[p.wrapping_add_signed(fine.offs[k])];
          if a == 0.0 {
            continue;
          }
          // a ≠ 0 ⇒ the neighbour is an active, in-image node.
          let (yj, xj) = ((y as isize + dy) as usize, (x as isize + dx) as usize);
          let (ry, ny) = fine.prow_y[yj];
          let (rx, nx) = fine.prow_x[xj];
          for &(jy, wy) in &ry[..ny] {
            for &(jx, wx) in &rx[..nx] {
              t[(jy as isize - by) as usize][(jx as isize - bx) as usize] += a * wy * wx;
            }
          }
        }
      }
      let (ry, ny) = fine.prow_y[y];
      let (rx, nx) = fine.prow_x[x];
      for &(iy, wy) in &ry[..ny] {
        for &(ix, wx) in &rx[..nx] {
          let wi = wy * wx;
          let pc = (iy + 1) * cpw + ix + 1;
          let row = &mut coarse.coef[pc];
          for (ty, trow) in t.iter().enumerate() {
            let dy = by + ty as isize - iy as isize;
            for (tx, &v) in trow.iter().enumerate() {
              if v == 0.0 {
                continue;
              }
              let dx = bx + tx as isize - ix as isize;
              row[((dy + 1) * 3 + dx + 1) as usize] += wi * v;
            }
          }
        }
      }
    }
  }
  coarse.finish();
}
