//! The direct solve at the bottom of the multigrid hierarchy: a dense `L·D·Lᵀ` of the coarsest
//! grid (at most `COARSEST_SIDE²` nodes). Apart because it is the one place where a singular
//! Galerkin operator must be handled explicitly (see [`Dense`]).

use super::Level;

/// Dense `L·D·Lᵀ` factorisation of the coarsest level (at most `COARSEST_SIDE²` nodes), in f64.
/// A pivot that vanishes (below 1e-6 of its diagonal entry: the coefficients are f32) marks a
/// direction of the null space of a singular Galerkin operator (coarse basis functions that are
/// dependent on the active fine nodes, e.g. several seeing one isolated pixel); its unknown is set
/// to 0, which solves the consistent coarse systems the cycle builds (`P` annihilates that
/// direction anyway).
#[derive(Debug, Default)]
pub(super) struct Dense {
  /// Padded indices of the nodes.
  nodes: Vec<usize>,
  /// Row-major `m × m`: unit lower factor below the diagonal, `1/D` (or 0) on it.
  f: Vec<f64>,
  tmp: Vec<f64>,
}

impl Dense {
  pub(super) fn factor(&mut self, lv: &Level) {
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

  pub(super) fn solve(&mut self, lv: &Level, c: usize, b: &[f32], x: &mut [f32]) {
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
