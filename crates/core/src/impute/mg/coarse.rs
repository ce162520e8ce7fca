//! The coarse levels of the multigrid solver: general symmetric 9-point operators built by
//! Galerkin products, the transfers between levels (restriction `Pᵀ`, prolongation `P`), Jacobi
//! smoothing, and the V-cycle that ties them together. Apart from the fine level (`fine.rs`)
//! because these kernels know nothing of the image, only of stored stencils.

use multiversion::multiversion;

use super::dense::Dense;
use super::fine::restrict_row;
use super::{coarse_len, Level, LevelWs, OMEGA_COARSE};

/// `y = A·x` on a coarse level, row `y`, for the channel plane starting at `base_c`.
#[inline(always)]
pub(super) fn general_row(lv: &Level, y: usize, src: &[f32], base_c: usize, out: &mut [f32]) {
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
#[multiversion(targets = "simd")]
pub(super) fn residual(lv: &Level, c: usize, b: &[f32], x: &[f32], r: &mut [f32]) {
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
#[multiversion(targets = "simd")]
pub(super) fn jacobi(lv: &Level, c: usize, b: &[f32], x: &mut [f32], r: &mut [f32], om: f32) {
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
#[multiversion(targets = "simd")]
pub(super) fn restrict(
  f: &Level,
  cl: &Level,
  c: usize,
  r: &[f32],
  bc: &mut [f32],
  row: &mut Vec<f32>,
) {
  let (nf, nc) = (f.n(), cl.n());
  let fpw = f.pw;
  row.clear();
  row.resize(fpw + 1, 0.0); // one past the padded row, for `restrict_row`
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
      restrict_row(row, &mut bc[c0..c0 + cl.w]);
    }
  }
}

/// `x += act·(P xc)` (prolongation of `c` planes from `cl` to `f`); `row` is scratch.
#[multiversion(targets = "simd")]
pub(super) fn prolong(
  f: &Level,
  cl: &Level,
  c: usize,
  xc: &[f32],
  x: &mut [f32],
  row: &mut Vec<f32>,
) {
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

/// One V(1,1)-cycle for `A x = b` on `levels[0]` (`b = ws[0].b`, result in `ws[0].x`), from
/// `x = 0`. Channels marked `done` are computed too (harmless; they are not used).
#[multiversion(targets = "simd")]
pub(super) fn vcycle(
  levels: &[Level],
  ws: &mut [LevelWs],
  row: &mut Vec<f32>,
  c: usize,
  dense: &mut Dense,
) {
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
#[multiversion(targets = "simd")]
pub(super) fn galerkin(f: &Level, cl: &mut Level, bx: &mut [Vec<f32>; 5]) {
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
