//! Perturbed rows of Infidelity (Yeh et al., NeurIPS 2019) and the dot product `Iᵀa` of each.
//!
//! A row is `x̃ = x − I` for one perturbation `I`; next to it the core writes `Iᵀa`, with `I` taken
//! as the difference the model actually sees (`x − x̃` after rounding `x̃` to float32), so the two
//! halves of the infidelity term always describe the same perturbation. Every random draw comes
//! from `Rng::keyed(seed, global sample, Purpose::Perturbation, draw)`: a row depends on nothing but
//! its sample's global index and its draw number, whatever the shard or batch it is built in.

use rayon::prelude::*;

use crate::error::{check_finite, expect_len, CoreError, Result};
use crate::rng::{Purpose, Rng};

/// The unperturbed input (the `f(x)` row).
pub const CLEAN: u32 = 0;
/// `I ~ N(0, σ²)` i.i.d. on every entry (`a` = draw).
pub const GAUSSIAN: u32 = 1;
/// One random square of side `1..=max_side` (all channels) set to the baseline (`a` = draw).
pub const SQUARE: u32 = 2;
/// Quantus 0.6: the first `b` row-major `a × a` patches (all channels) set to the baseline.
pub const PATCHES: u32 = 3;

/// One row: `(sample, kind, a, b)` with the meaning of `a` and `b` set by `kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InfidelityRow {
  pub sample: u32,
  pub kind: u32,
  pub a: u32,
  pub b: u32,
}

impl InfidelityRow {
  /// Parses `(sample, kind, a, b)` quadruples.
  pub fn parse(quads: &[u32]) -> Result<Vec<InfidelityRow>> {
    if !quads.len().is_multiple_of(4) {
      return Err(CoreError::shape(
        "rows",
        "a multiple of 4 (sample, kind, a, b)",
        quads.len(),
      ));
    }
    Ok(
      quads
        .chunks(4)
        .map(|q| InfidelityRow {
          sample: q[0],
          kind: q[1],
          a: q[2],
          b: q[3],
        })
        .collect(),
    )
  }
}

/// What every row of a shard shares.
pub struct InfidelitySource<'a> {
  /// Inputs `[n, C, H, W]`.
  pub x: &'a [f32],
  /// Attributions `[n, C_a, H, W]`, `C_a` = 1 (broadcast over channels) or `C`.
  pub a: &'a [f32],
  /// Baseline snapshots `[n, C, H, W]` (squares and patches); may be empty when unused.
  pub baselines: &'a [f32],
  /// `[n, C, H, W]`.
  pub shape: [usize; 4],
  pub attr_channels: usize,
  /// Global index of sample 0 of `x`: keys the random draws.
  pub first_sample: u64,
  pub seed: u64,
  /// Standard deviation of Gaussian perturbations.
  pub sigma: f64,
  /// Largest side of a random square (clamped to `min(H, W)`).
  pub max_side: usize,
}

impl InfidelitySource<'_> {
  fn validate(&self, rows: &[InfidelityRow]) -> Result<()> {
    let [n, c, h, w] = self.shape;
    let row = c * h * w;
    expect_len("x", self.x.len(), n * row)?;
    if self.attr_channels != 1 && self.attr_channels != c {
      return Err(CoreError::shape(
        "aShape",
        format!("1 or {c} channels"),
        self.attr_channels,
      ));
    }
    expect_len("a", self.a.len(), n * self.attr_channels * h * w)?;
    let needs_baseline = rows.iter().any(|r| r.kind == SQUARE || r.kind == PATCHES);
    if needs_baseline {
      expect_len("baselines", self.baselines.len(), n * row)?;
    }
    if !(self.sigma.is_finite() && self.sigma >= 0.0) {
      return Err(CoreError::param(
        "sigma",
        format!("must be finite and ≥ 0, got {}", self.sigma),
      ));
    }
    // NaN/Inf in the samples these rows use (rows come sample by sample: each is scanned once).
    let alen = self.attr_channels * h * w;
    let mut last = None;
    for r in rows.iter().filter(|r| (r.sample as usize) < n) {
      if last != Some(r.sample) {
        let s = r.sample as usize;
        check_finite("x", &self.x[s * row..][..row])?;
        check_finite("a", &self.a[s * alen..][..alen])?;
        last = Some(r.sample);
      }
    }
    for r in rows {
      let bad = |why: String| Err(CoreError::param("rows", format!("row {r:?}: {why}")));
      if r.sample as usize >= n {
        return bad(format!("sample out of range ({n} samples)"));
      }
      match r.kind {
        CLEAN | GAUSSIAN => {}
        SQUARE if self.max_side == 0 => return bad("maxSide must be ≥ 1".into()),
        SQUARE => {}
        PATCHES => {
          let ps = r.a as usize;
          if ps == 0 || !h.is_multiple_of(ps) || !w.is_multiple_of(ps) {
            return bad(format!("patch size must divide H = {h} and W = {w}"));
          }
          if r.b as usize > (h / ps) * (w / ps) {
            return bad(format!(
              "more patches than the {} of the grid",
              (h / ps) * (w / ps)
            ));
          }
        }
        _ => return bad("unknown kind".into()),
      }
    }
    Ok(())
  }

  fn build(&self, r: &InfidelityRow, out: &mut [f32]) -> f64 {
    let [_, c, h, w] = self.shape;
    let p = h * w;
    let row = c * p;
    let s = r.sample as usize;
    let x = &self.x[s * row..][..row];
    out.copy_from_slice(x);
    let base = || &self.baselines[s * row..][..row];
    let rng = || {
      Rng::keyed(
        self.seed,
        self.first_sample + s as u64,
        Purpose::Perturbation,
        u64::from(r.a),
      )
    };
    let mut fill_rect = |top: usize, left: usize, rows: usize, cols: usize| {
      let b = base();
      for ch in 0..c {
        for i in top..top + rows {
          let at = ch * p + i * w + left;
          out[at..at + cols].copy_from_slice(&b[at..at + cols]);
        }
      }
    };
    match r.kind {
      GAUSSIAN => {
        let mut z = rng().normals();
        for o in out.iter_mut() {
          *o = (f64::from(*o) - self.sigma * z.next_normal()) as f32;
        }
      }
      SQUARE => {
        let mut g = rng();
        let max = self.max_side.min(h).min(w);
        let side = 1 + g.below(max as u64) as usize;
        let top = g.below((h - side + 1) as u64) as usize;
        let left = g.below((w - side + 1) as u64) as usize;
        fill_rect(top, left, side, side);
      }
      PATCHES => {
        let ps = r.a as usize;
        let per_row = w / ps;
        for j in 0..r.b as usize {
          fill_rect((j / per_row) * ps, (j % per_row) * ps, ps, ps);
        }
      }
      _ => {}
    }
    if r.kind == CLEAN {
      return 0.0;
    }
    let a = &self.a[s * self.attr_channels * p..][..self.attr_channels * p];
    let mut dot = 0f64;
    for ch in 0..c {
      let ac = if self.attr_channels == 1 { 0 } else { ch };
      let (xs, os, as_) = (&x[ch * p..][..p], &out[ch * p..][..p], &a[ac * p..][..p]);
      for ((&xi, &oi), &ai) in xs.iter().zip(os).zip(as_) {
        dot += (f64::from(xi) - f64::from(oi)) * f64::from(ai);
      }
    }
    dot
  }
}

/// Builds `rows` into `out` (`rows.len() · C·H·W`) and writes each row's `Iᵀa` into `dots`.
///
/// # Errors
/// `SHAPE_MISMATCH` for inconsistent lengths; `INVALID_OPTION` (arg `rows`) for a row out of range,
/// an unknown kind or a patch size that does not divide H and W.
pub fn fill_rows(
  src: &InfidelitySource,
  rows: &[InfidelityRow],
  out: &mut [f32],
  dots: &mut [f64],
) -> Result<()> {
  src.validate(rows)?;
  let [_, c, h, w] = src.shape;
  let row = c * h * w;
  expect_len("out", out.len(), rows.len() * row)?;
  expect_len("dots", dots.len(), rows.len())?;
  if row == 0 {
    return Ok(());
  }
  out
    .par_chunks_mut(row)
    .zip(dots.par_iter_mut())
    .zip(rows.par_iter())
    .for_each(|((o, d), r)| *d = src.build(r, o));
  Ok(())
}

#[cfg(test)]
mod tests {
  use super::*;

  fn src<'a>(x: &'a [f32], a: &'a [f32], b: &'a [f32], shape: [usize; 4]) -> InfidelitySource<'a> {
    InfidelitySource {
      x,
      a,
      baselines: b,
      shape,
      attr_channels: a.len() / (shape[0] * shape[2] * shape[3]),
      first_sample: 0,
      seed: 3,
      sigma: 0.5,
      max_side: 2,
    }
  }

  fn run(s: &InfidelitySource, quads: &[u32]) -> (Vec<f32>, Vec<f64>) {
    let rows = InfidelityRow::parse(quads).unwrap();
    let row = s.shape[1] * s.shape[2] * s.shape[3];
    let mut out = vec![0f32; rows.len() * row];
    let mut dots = vec![0f64; rows.len()];
    fill_rows(s, &rows, &mut out, &mut dots).unwrap();
    (out, dots)
  }

  #[test]
  fn cumulative_patches_and_their_dot() {
    // 1 × 2 × 4 input, patch 2: two patches, the left one first.
    let x: Vec<f32> = (1..=8).map(|v| v as f32).collect();
    let a = [1.0, 0.0, 0.0, 2.0, 0.0, 0.0, 0.0, 1.0];
    let b = [0.0; 8];
    let s = src(&x, &a, &b, [1, 1, 2, 4]);
    let (out, dots) = run(&s, &[0, PATCHES, 2, 1, 0, PATCHES, 2, 2, 0, CLEAN, 0, 0]);
    assert_eq!(&out[..8], &[0.0, 0.0, 3.0, 4.0, 0.0, 0.0, 7.0, 8.0]);
    assert_eq!(&out[8..16], &[0.0; 8]);
    assert_eq!(&out[16..], &x[..]);
    assert_eq!(dots, [1.0, 1.0 + 8.0 + 8.0, 0.0]);
  }

  #[test]
  fn broadcast_attribution_covers_every_channel() {
    let x = [1.0, 2.0, 3.0, 4.0];
    let a = [1.0, 10.0];
    let b = [0.0; 4];
    let s = src(&x, &a, &b, [1, 2, 1, 2]);
    let (_, dots) = run(&s, &[0, PATCHES, 1, 2]);
    assert_eq!(dots, [1.0 + 20.0 + 3.0 + 40.0]);
  }

  #[test]
  fn random_rows_are_keyed_by_global_sample_and_draw() {
    let x: Vec<f32> = (0..18).map(|v| v as f32 * 0.1).collect();
    let a: Vec<f32> = (0..18).map(|v| (v as f32).sin()).collect();
    let b = vec![-1.0; 18];
    let whole = src(&x, &a, &b, [2, 1, 3, 3]);
    let (o1, d1) = run(&whole, &[1, GAUSSIAN, 4, 0, 1, SQUARE, 2, 0]);
    let mut tail = src(&x[9..], &a[9..], &b[9..], [1, 1, 3, 3]);
    tail.first_sample = 1;
    let (o2, d2) = run(&tail, &[0, GAUSSIAN, 4, 0, 0, SQUARE, 2, 0]);
    assert_eq!((o1.clone(), d1.clone()), (o2, d2));
    // The dot is over the perturbation actually applied.
    let direct: f64 = (0..9)
      .map(|i| f64::from(x[9 + i] - o1[i]) * f64::from(a[9 + i]))
      .sum();
    assert!((d1[0] - direct).abs() < 1e-9);
    // A square sets 1…max_side² pixels to the baseline, and nothing else.
    let changed = o1[9..].iter().zip(&x[9..]).filter(|(o, x)| o != x).count();
    assert!((1..=4).contains(&changed));
    assert!(o1[9..]
      .iter()
      .zip(&x[9..])
      .all(|(o, x)| o == x || *o == -1.0));
  }

  #[test]
  fn bad_rows_are_typed_errors() {
    let x = [0.0; 9];
    let s = src(&x, &x, &x, [1, 1, 3, 3]);
    for bad in [
      [1, CLEAN, 0, 0],
      [0, 9, 0, 0],
      [0, PATCHES, 2, 1],
      [0, PATCHES, 3, 2],
    ] {
      let rows = InfidelityRow::parse(&bad).unwrap();
      let err = fill_rows(&s, &rows, &mut [0.0; 9], &mut [0.0]).unwrap_err();
      assert_eq!(err.code(), "INVALID_OPTION");
    }
  }
}
