#![allow(clippy::unwrap_used, clippy::needless_range_loop)]

use super::*;

/// Dense float64 reference: builds the system and solves it by Gaussian elimination with
/// partial pivoting (small cases only). Returns the noiseless output image.
fn dense_reference(x: &[f32], mask: &[u8], c: usize, h: usize, w: usize) -> Vec<f32> {
  let hw = h * w;
  let unk: Vec<usize> = (0..hw).filter(|&i| mask[i] != 0).collect();
  let n = unk.len();
  let mut var = vec![usize::MAX; hw];
  for (k, &i) in unk.iter().enumerate() {
    var[i] = k;
  }
  let mut a = vec![vec![0.0f64; n]; n];
  let mut b = vec![vec![0.0f64; c]; n];
  for (k, &i) in unk.iter().enumerate() {
    let (y, xx) = ((i / w) as isize, (i % w) as isize);
    for dy in -1..=1isize {
      for dx in -1..=1isize {
        let (ny, nx) = (y + dy, xx + dx);
        if (dy == 0 && dx == 0) || ny < 0 || nx < 0 || ny >= h as isize || nx >= w as isize {
          continue;
        }
        let wt = if dy == 0 || dx == 0 { W_DIRECT } else { W_DIAG };
        let q = ny as usize * w + nx as usize;
        a[k][k] += wt;
        if mask[q] != 0 {
          a[k][var[q]] -= wt;
        } else {
          for ch in 0..c {
            b[k][ch] += wt * f64::from(x[ch * hw + q]);
          }
        }
      }
    }
  }
  for col in 0..n {
    let piv = (col..n)
      .max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))
      .unwrap();
    a.swap(col, piv);
    b.swap(col, piv);
    for row in col + 1..n {
      let f = a[row][col] / a[col][col];
      if f == 0.0 {
        continue;
      }
      for j in col..n {
        a[row][j] -= f * a[col][j];
      }
      for ch in 0..c {
        b[row][ch] -= f * b[col][ch];
      }
    }
  }
  let mut v = vec![vec![0.0f64; c]; n];
  for row in (0..n).rev() {
    for ch in 0..c {
      let mut s = b[row][ch];
      for j in row + 1..n {
        s -= a[row][j] * v[j][ch];
      }
      v[row][ch] = s / a[row][row];
    }
  }
  let mut out = x.to_vec();
  for (k, &i) in unk.iter().enumerate() {
    for ch in 0..c {
      out[ch * hw + i] = v[k][ch] as f32;
    }
  }
  out
}

/// Max over imputed values of |s_i v_i − Σ w_n v_n| (all neighbours, in f64 from the f32 output).
fn stencil_violation(out: &[f32], mask: &[u8], c: usize, h: usize, w: usize) -> f64 {
  let hw = h * w;
  let mut worst = 0.0f64;
  for ch in 0..c {
    let o = &out[ch * hw..(ch + 1) * hw];
    for i in (0..hw).filter(|&i| mask[i] != 0) {
      let (y, xx) = ((i / w) as isize, (i % w) as isize);
      let (mut s, mut acc) = (0.0, 0.0);
      for dy in -1..=1isize {
        for dx in -1..=1isize {
          let (ny, nx) = (y + dy, xx + dx);
          if (dy == 0 && dx == 0) || ny < 0 || nx < 0 || ny >= h as isize || nx >= w as isize {
            continue;
          }
          let wt = if dy == 0 || dx == 0 { W_DIRECT } else { W_DIAG };
          s += wt;
          acc += wt * f64::from(o[ny as usize * w + nx as usize]);
        }
      }
      worst = worst.max((f64::from(o[i]) - acc / s).abs());
    }
  }
  worst
}

fn random_image(c: usize, h: usize, w: usize, seed: u64) -> Vec<f32> {
  let mut r = Rng::new(seed, 99);
  (0..c * h * w).map(|_| r.normal() as f32).collect()
}

fn random_mask(h: usize, w: usize, p: f64, seed: u64) -> Vec<u8> {
  let mut r = Rng::new(seed, 98);
  (0..h * w).map(|_| u8::from(r.uniform() < p)).collect()
}

fn block_mask(h: usize, w: usize, y0: usize, y1: usize, x0: usize, x1: usize) -> Vec<u8> {
  (0..h * w)
    .map(|i| u8::from((y0..y1).contains(&(i / w)) && (x0..x1).contains(&(i % w))))
    .collect()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
  a.iter()
    .zip(b)
    .map(|(x, y)| (x - y).abs())
    .fold(0.0, f32::max)
}

#[test]
fn centre_of_3x3_is_weighted_mean_of_8_neighbours() {
  let x: Vec<f32> = vec![1.0, 2.0, 3.0, 4.0, 100.0, 6.0, 7.0, 8.0, 9.0];
  let mut mask = vec![0u8; 9];
  mask[4] = 1;
  let out = noisy_linear(&x, &mask, 1, 3, 3, 0.0, 0, NoiseKey::new(0, 0)).unwrap();
  let expected = (2.0 + 4.0 + 6.0 + 8.0) / 6.0 + (1.0 + 3.0 + 7.0 + 9.0) / 12.0;
  assert!(
    (f64::from(out[4]) - expected).abs() < 1e-6,
    "{} vs {expected}",
    out[4]
  );
  for i in (0..9).filter(|&i| i != 4) {
    assert_eq!(out[i].to_bits(), x[i].to_bits());
  }
}

#[test]
fn corner_uses_in_image_neighbours_only() {
  // Top-left pixel masked: neighbours right (1/6), down (1/6), diagonal (1/12); s = 5/12.
  let x: Vec<f32> = vec![50.0, 2.0, 3.0, 4.0, 5.0, 6.0];
  let mut mask = vec![0u8; 6];
  mask[0] = 1;
  let out = noisy_linear(&x, &mask, 1, 2, 3, 0.0, 0, NoiseKey::new(0, 0)).unwrap();
  let expected = (2.0 / 6.0 + 4.0 / 6.0 + 5.0 / 12.0) / (5.0 / 12.0);
  assert!((f64::from(out[0]) - expected).abs() < 1e-6);
}

#[test]
fn one_by_two_image() {
  let x = vec![3.5f32, -7.0, 1.0, 2.0]; // two channels
  let out = noisy_linear(&x, &[0, 1], 2, 1, 2, 0.0, 0, NoiseKey::new(0, 0)).unwrap();
  assert_eq!(out, vec![3.5, 3.5, 1.0, 1.0]);
  let out = noisy_linear(&x, &[1, 0], 2, 1, 2, 0.0, 0, NoiseKey::new(0, 0)).unwrap();
  assert_eq!(out, vec![-7.0, -7.0, 2.0, 2.0]);
  // Both masked: singular, zeros like the reference.
  let out = noisy_linear(&x, &[1, 1], 2, 1, 2, 0.0, 0, NoiseKey::new(0, 0)).unwrap();
  assert_eq!(out, vec![0.0; 4]);
}

#[test]
fn single_row_and_single_column_interpolate_linearly() {
  // In 1-D only direct neighbours exist, so the fill is linear between known ends.
  let x = vec![0.0f32, 9.0, 9.0, 9.0, 4.0];
  let mask = vec![0u8, 1, 1, 1, 0];
  for (h, w) in [(1, 5), (5, 1)] {
    let out = noisy_linear(&x, &mask, 1, h, w, 0.0, 0, NoiseKey::new(0, 0)).unwrap();
    for (o, e) in out.iter().zip([0.0f32, 1.0, 2.0, 3.0, 4.0]) {
      assert!((o - e).abs() < 1e-6, "{out:?}");
    }
  }
}

#[test]
fn matches_dense_solve_non_square_one_channel() {
  let (c, h, w) = (1, 7, 5);
  let x = random_image(c, h, w, 1);
  let mask = random_mask(h, w, 0.6, 2);
  let out = noisy_linear(&x, &mask, c, h, w, 0.0, 0, NoiseKey::new(0, 0)).unwrap();
  let reference = dense_reference(&x, &mask, c, h, w);
  assert!(max_diff(&out, &reference) < 1e-5);
}

#[test]
fn matches_dense_solve_three_channels_random_and_block() {
  let (c, h, w) = (3, 16, 20);
  let x = random_image(c, h, w, 3);
  for mask in [
    random_mask(h, w, 0.5, 4),
    random_mask(h, w, 0.9, 5),
    block_mask(h, w, 3, 13, 2, 17),
  ] {
    let out = noisy_linear(&x, &mask, c, h, w, 0.0, 0, NoiseKey::new(0, 0)).unwrap();
    let reference = dense_reference(&x, &mask, c, h, w);
    assert!(
      max_diff(&out, &reference) < 1e-5,
      "{}",
      max_diff(&out, &reference)
    );
  }
}

#[test]
fn five_channels_match_channel_by_channel() {
  // Channels are solved in groups of up to 4; grouping must not change the result.
  let (c, h, w) = (5, 11, 13);
  let x = random_image(c, h, w, 6);
  let mask = random_mask(h, w, 0.7, 7);
  let out = noisy_linear(&x, &mask, c, h, w, 0.0, 0, NoiseKey::new(0, 0)).unwrap();
  for ch in 0..c {
    let plane = &x[ch * h * w..(ch + 1) * h * w];
    let single = noisy_linear(plane, &mask, 1, h, w, 0.0, 0, NoiseKey::new(0, 0)).unwrap();
    assert!(max_diff(&out[ch * h * w..(ch + 1) * h * w], &single) < 1e-6);
  }
}

#[test]
fn nothing_masked_returns_exact_copy() {
  let x = random_image(3, 4, 5, 8);
  let out = noisy_linear(&x, &[0; 20], 3, 4, 5, 0.5, 1, NoiseKey::new(0, 0)).unwrap();
  assert_eq!(out, x);
}

#[test]
fn everything_masked_gives_zeros_plus_noise() {
  let x = random_image(2, 4, 3, 9);
  let out = noisy_linear(&x, &[1; 12], 2, 4, 3, 0.0, 1, NoiseKey::new(0, 0)).unwrap();
  assert!(out.iter().all(|&v| v == 0.0));
  let out = noisy_linear(&x, &[1; 12], 2, 4, 3, 0.25, 1, NoiseKey::new(0, 0)).unwrap();
  let mut r = NoiseKey::new(0, 0).rng(1).normals();
  for v in out {
    assert_eq!(v, (0.25 * r.next_normal()) as f32);
  }
  // 1×1 image, masked.
  assert_eq!(
    noisy_linear(&[5.0], &[1], 1, 1, 1, 0.0, 0, NoiseKey::new(0, 0)).unwrap(),
    vec![0.0]
  );
}

#[test]
fn isolated_regions_are_independent() {
  // Two masked regions far apart: each equals its own dense solve, and changing pixels around
  // one region does not affect the other (beyond the iterative solver's tolerance: the regions
  // share its coarse grids, so the last bits may differ).
  let (h, w) = (10, 12);
  let mut mask = block_mask(h, w, 1, 4, 1, 4);
  mask[8 * w + 10] = 1;
  mask[7 * w + 9] = 1; // diagonal pair: one 8-connected region
  let x = random_image(1, h, w, 10);
  let out = noisy_linear(&x, &mask, 1, h, w, 0.0, 0, NoiseKey::new(0, 0)).unwrap();
  assert!(max_diff(&out, &dense_reference(&x, &mask, 1, h, w)) < 1e-5);
  let mut x2 = x.clone();
  x2[8 * w + 11] += 10.0; // a known neighbour of the second region only
  let out2 = noisy_linear(&x2, &mask, 1, h, w, 0.0, 0, NoiseKey::new(0, 0)).unwrap();
  for i in (0..h * w).filter(|&i| i / w < 5) {
    if mask[i] == 0 {
      assert_eq!(out[i].to_bits(), out2[i].to_bits());
    } else {
      assert!(
        (out[i] - out2[i]).abs() <= 1e-6,
        "{} vs {}",
        out[i],
        out2[i]
      );
    }
  }
  assert_ne!(out[8 * w + 10], out2[8 * w + 10]);
}

#[test]
fn noiseless_solution_satisfies_stencil_equations() {
  let (c, h, w) = (3, 61, 47);
  let x = random_image(c, h, w, 11);
  for mask in [
    random_mask(h, w, 0.5, 12),
    random_mask(h, w, 0.97, 13),
    block_mask(h, w, 10, 50, 5, 40),
    block_mask(h, w, 0, 61, 0, 46), // all but the last column
  ] {
    let out = noisy_linear(&x, &mask, c, h, w, 0.0, 0, NoiseKey::new(0, 0)).unwrap();
    let v = stencil_violation(&out, &mask, c, h, w);
    assert!(v < 1e-6, "violation {v}");
    for i in (0..c * h * w).filter(|&i| mask[i % (h * w)] == 0) {
      assert_eq!(out[i].to_bits(), x[i].to_bits());
    }
  }
}

#[test]
fn constant_image_stays_constant() {
  let (h, w) = (33, 29);
  let x = vec![0.75f32; h * w];
  let out = noisy_linear(
    &x,
    &random_mask(h, w, 0.8, 14),
    1,
    h,
    w,
    0.0,
    0,
    NoiseKey::new(0, 0),
  )
  .unwrap();
  assert!(out.iter().all(|&v| (v - 0.75).abs() < 1e-6));
}

#[test]
fn noise_is_seeded_and_drawn_channel_major_row_major() {
  let (c, h, w) = (2, 6, 7);
  let x = random_image(c, h, w, 15);
  let mask = random_mask(h, w, 0.5, 16);
  let clean = noisy_linear(&x, &mask, c, h, w, 0.0, 0, NoiseKey::new(0, 0)).unwrap();
  let noisy = noisy_linear(&x, &mask, c, h, w, 0.1, 42, NoiseKey::new(3, 0)).unwrap();
  assert_eq!(
    noisy,
    noisy_linear(&x, &mask, c, h, w, 0.1, 42, NoiseKey::new(3, 0)).unwrap()
  );
  assert_ne!(
    noisy,
    noisy_linear(&x, &mask, c, h, w, 0.1, 42, NoiseKey::new(4, 0)).unwrap()
  );
  assert_ne!(
    noisy,
    noisy_linear(&x, &mask, c, h, w, 0.1, 43, NoiseKey::new(3, 0)).unwrap()
  );
  let mut r = NoiseKey::new(3, 0).rng(42).normals();
  for ch in 0..c {
    for i in (0..h * w).filter(|&i| mask[i] != 0) {
      let k = ch * h * w + i;
      let expected = 0.1 * r.next_normal();
      assert!((f64::from(noisy[k] - clean[k]) - expected).abs() < 1e-6);
    }
  }
  for i in (0..c * h * w).filter(|&i| mask[i % (h * w)] == 0) {
    assert_eq!(noisy[i].to_bits(), x[i].to_bits());
  }
}

#[test]
fn typed_errors_on_bad_input() {
  let x = vec![0.0f32; 12];
  let mask = vec![0u8; 4];
  let code = |r: Result<Vec<f32>>| r.unwrap_err().code();
  assert_eq!(
    code(noisy_linear(
      &x[..11],
      &mask,
      3,
      2,
      2,
      0.0,
      0,
      NoiseKey::new(0, 0)
    )),
    "SHAPE_MISMATCH"
  );
  assert_eq!(
    code(noisy_linear(
      &x,
      &mask[..3],
      3,
      2,
      2,
      0.0,
      0,
      NoiseKey::new(0, 0)
    )),
    "SHAPE_MISMATCH"
  );
  assert_eq!(
    code(noisy_linear(
      &x,
      &[0, 2, 0, 0],
      3,
      2,
      2,
      0.0,
      0,
      NoiseKey::new(0, 0)
    )),
    "INVALID_OPTION"
  );
  assert_eq!(
    code(noisy_linear(
      &x,
      &mask,
      3,
      2,
      2,
      -0.1,
      0,
      NoiseKey::new(0, 0)
    )),
    "INVALID_OPTION"
  );
  assert_eq!(
    code(noisy_linear(
      &x,
      &mask,
      3,
      2,
      2,
      f32::NAN,
      0,
      NoiseKey::new(0, 0)
    )),
    "INVALID_OPTION"
  );
  assert_eq!(
    code(noisy_linear(
      &x,
      &mask,
      3,
      2,
      2,
      f32::INFINITY,
      0,
      NoiseKey::new(0, 0)
    )),
    "INVALID_OPTION"
  );
  assert_eq!(
    code(noisy_linear(&[], &[], 0, 2, 2, 0.0, 0, NoiseKey::new(0, 0))),
    "EMPTY_INPUT"
  );
  assert_eq!(
    code(noisy_linear(
      &x,
      &mask,
      usize::MAX,
      2,
      2,
      0.0,
      0,
      NoiseKey::new(0, 0)
    )),
    "SHAPE_MISMATCH"
  );
  let mut short = vec![0.0f32; 11];
  let into = noisy_linear_into(
    &x,
    &mask,
    [3, 2, 2],
    0.0,
    0,
    NoiseKey::new(0, 0),
    &mut short,
  );
  assert_eq!(into.unwrap_err().code(), "SHAPE_MISMATCH");
  let mut bad = x.clone();
  bad[5] = f32::NAN;
  let err = noisy_linear(&bad, &mask, 3, 2, 2, 0.0, 0, NoiseKey::new(0, 0)).unwrap_err();
  assert_eq!(err, CoreError::NonFinite { arg: "x", index: 5 });
}

#[test]
fn multigrid_iteration_count_does_not_grow_with_the_hole() {
  // Jacobi- or unpreconditioned CG would need far more iterations for the wide holes; the
  // multigrid preconditioner keeps the count small and flat (4–8 in practice).
  let (c, h, w) = (3, 96, 80);
  let x = random_image(c, h, w, 19);
  for mask in [
    random_mask(h, w, 0.5, 20),
    random_mask(h, w, 0.95, 21),
    block_mask(h, w, 4, 92, 3, 77),
    block_mask(h, w, 0, 96, 0, 79), // all but the last column: a long, mostly free region
    {
      let mut m = vec![1u8; h * w]; // a single known pixel: nearly singular
      m[37 * w + 50] = 0;
      m
    },
    random_mask(h, w, 0.003, 22), // a handful of pixels: singular coarse operators
  ] {
    let mut imp = Imputer::default();
    let mut out = vec![0.0f32; x.len()];
    imp.impute(&x, &mask, [c, h, w], 0.0, Rng::new(0, 0), &mut out);
    assert!(imp.solver.iters <= 12, "{} iterations", imp.solver.iters);
    assert!(stencil_violation(&out, &mask, c, h, w) < 1e-5);
  }
}

#[test]
fn small_and_sparse_masks_match_dense_solve() {
  // Few masked pixels make coarse Galerkin operators singular (several coarse nodes seeing the
  // same fine pixel); thin images coarsen along one axis only.
  let mut seed = 30;
  for (h, w) in [(1, 9), (9, 1), (2, 7), (5, 5), (8, 6), (13, 11), (31, 4)] {
    for p in [0.05, 0.2, 0.6, 0.9] {
      seed += 1;
      let x = random_image(2, h, w, seed);
      let mut mask = random_mask(h, w, p, seed);
      if mask.iter().all(|&m| m == 1) {
        mask[0] = 0;
      }
      let out = noisy_linear(&x, &mask, 2, h, w, 0.0, 0, NoiseKey::new(0, 0)).unwrap();
      let reference = dense_reference(&x, &mask, 2, h, w);
      let d = max_diff(&out, &reference);
      assert!(d < 1e-5, "{h}x{w} p {p}: {d}");
    }
  }
}

#[test]
fn reused_buffers_give_the_bits_of_fresh_ones() {
  // One imputer's buffers serve images of every size in turn (grown, shrunk, the same box with
  // another mask): padding is only zeroed when the grid changes, so a stale value anywhere would
  // show here as a difference from a fresh imputer.
  let mut reused = Imputer::default();
  let mut seed = 60;
  for (c, h, w, p) in [
    (3, 40, 36, 0.5),
    (2, 9, 11, 0.6),
    (3, 40, 36, 0.3),
    (3, 40, 36, 0.5),
    (1, 40, 36, 0.9),
    (3, 57, 20, 0.5),
    (3, 40, 36, 0.02),
  ] {
    seed += 1;
    let x = random_image(c, h, w, seed);
    let mut mask = random_mask(h, w, p, seed);
    mask[0] = 1; // the box spans the whole image for most masks
    for noise in [0.0, 0.05] {
      let key = NoiseKey::new(seed, 1);
      let mut a = vec![0.0f32; x.len()];
      reused.impute(&x, &mask, [c, h, w], noise, key.rng(5), &mut a);
      let mut b = vec![0.0f32; x.len()];
      Imputer::default().impute(&x, &mask, [c, h, w], noise, key.rng(5), &mut b);
      let same = a.iter().zip(&b).all(|(u, v)| u.to_bits() == v.to_bits());
      assert!(same, "{c}x{h}x{w} p {p} noise {noise}");
    }
  }
}
