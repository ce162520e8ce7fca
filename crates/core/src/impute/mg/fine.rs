//! The fine level of the multigrid solver: the kernels that touch the pixel grid itself. They
//! dominate the cost of a solve, so they are written apart from the coarse levels, with the fine
//! stencil's weights folded in (centre `s`, 1/6 direct, 1/12 diagonal) and whole rows streamed
//! branch-free through ring buffers; the f64 residual that the stopping test relies on is here.

use multiversion::multiversion;

use super::{Fine, Level, OMEGA_FINE};

/// Fine residual of row `y` in f64 (`act·(W u − s·u)`), rounded to f32 into `out`.
#[inline(always)]
pub(super) fn fine_residual_row(f: &Fine, y: usize, u: &[f64], out: &mut [f32]) {
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
pub(super) fn fine_jacobi_row(
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
#[multiversion(targets = "simd")]
pub(super) fn precond_down(f: &Fine, cl: &Level, r: &[f32], bc: &mut [f32], rows: &mut Vec<f32>) {
  let (h, w, pw) = (f.h, f.w, f.pw);
  bc.fill(0.0);
  // Scratch: 3 ring rows of e (padded, from column −1), a zero row, a t row (one longer, see
  // [`restrict_row`]), a restricted row.
  rows.clear();
  rows.resize(6 * pw + 1, 0.0);
  let (ring, rest) = rows.split_at_mut(3 * pw);
  let (zero, rest) = rest.split_at_mut(pw);
  let (t, hrow) = rest.split_at_mut(pw + 1);
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
    let wc = cl.w;
    restrict_row(t, &mut hrow[..wc]);
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
#[multiversion(targets = "simd")]
pub(super) fn precond_up(
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
      duplicate(&crow[1..], dup);
      let (act, rr, si) = (&f.act[st..st + w], &r[st..st + w], &f.sinv[k][..w]);
      // (Zipped, not indexed: with indices LLVM kept the bounds checks and left the loop scalar.)
      let (d0, d1) = (&dup[..w], &dup[1..=w]);
      for ((((o, &a), (&l, &r)), &s), &ri) in
        e.iter_mut().zip(act).zip(d0.iter().zip(d1)).zip(si).zip(rr)
      {
        *o = a * (0.5 * (l + r)) + OMEGA_FINE * s * ri;
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

/// Horizontal full weighting of a padded row: `out[X] = ½(t[2X] + t[2X + 2]) + t[2X + 1]`
/// (fine column x is `t[x + 1]`; `t` holds at least `2·out.len() + 2` values, the last one only
/// so that the pairs below come out whole). Apart, like [`duplicate`], because LLVM vectorises
/// this stride-2 loop on its own but not inside the callers' row loops.
#[multiversion(targets = "simd")]
#[inline(never)]
pub(super) fn restrict_row(t: &[f32], out: &mut [f32]) {
  debug_assert!(t.len() >= 2 * out.len() + 2);
  for (o, (a, b)) in out
    .iter_mut()
    .zip(t.chunks_exact(2).zip(t[2..].chunks_exact(2)))
  {
    *o = 0.5 * (a[0] + b[0]) + a[1];
  }
}

/// `d[2i] = d[2i + 1] = c[i]`. Apart (not inlined) because LLVM vectorises this loop on its own
/// but not inside the row loop of [`precond_up`], where it stayed scalar.
#[multiversion(targets = "simd")]
#[inline(never)]
fn duplicate(c: &[f32], d: &mut [f32]) {
  for (pair, &v) in d.chunks_exact_mut(2).zip(c) {
    pair[0] = v;
    pair[1] = v;
  }
}

/// `a·b` of two f32 rows, accumulated in f32 lanes and returned in f64.
#[inline(always)]
pub(super) fn dot32(a: &[f32], b: &[f32]) -> f64 {
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
#[multiversion(targets = "simd")]
pub(super) fn fine_apply(f: &Fine, z: &[f32], beta: f32, p: &mut [f32], q: &mut [f32]) -> f64 {
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
#[multiversion(targets = "simd")]
pub(super) fn fine_update(
  f: &Fine,
  alpha: f64,
  p: &[f32],
  q: &[f32],
  u: &mut [f64],
  r: &mut [f32],
) -> f64 {
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
#[multiversion(targets = "simd")]
pub(super) fn fine_residual(f: &Fine, u: &[f64], r: &mut [f32]) -> f64 {
  let w = f.w;
  let mut rr = 0.0f64;
  for y in 0..f.h {
    let st = f.row(y);
    fine_residual_row(f, y, u, &mut r[st..st + w]);
    rr += dot32(&r[st..st + w], &r[st..st + w]);
  }
  rr
}
