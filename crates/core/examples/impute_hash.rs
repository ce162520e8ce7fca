//! Hashes (FNV-1a over the f32 bits) of noisy linear imputations for 40 cases: 4 shapes from
//! 3×224×224 to 1×7×5, masks from 1 % to 99.9 % masked, noise 0 and 0.01. Two builds that print
//! the same lines compute the same bits, e.g. another CPU dispatch level, or a change to the
//! solver's loops that is meant to keep the arithmetic:
//!
//! `cargo run --release --example impute_hash -p xai-eval-core > a.txt` (then on the other build,
//! and `diff`).
#![allow(clippy::print_stdout, clippy::unwrap_used)]
use xai_eval_core::impute::{noisy_linear, NoiseKey};
use xai_eval_core::rng::{Purpose, Rng};
fn main() {
  let mut r = Rng::keyed(2024, 0, Purpose::Perturbation, 0);
  for (c, h, w) in [
    (3usize, 224usize, 224usize),
    (3, 61, 47),
    (1, 7, 5),
    (2, 100, 3),
  ] {
    let x: Vec<f32> = (0..c * h * w).map(|_| r.uniform() as f32).collect();
    for p in [0.01, 0.1, 0.5, 0.9, 0.999] {
      let mask: Vec<u8> = (0..h * w).map(|_| u8::from(r.uniform() < p)).collect();
      for noise in [0.0, 0.01] {
        let out = noisy_linear(&x, &mask, c, h, w, noise, 7, NoiseKey::new(3, 4)).unwrap();
        let mut hsh: u64 = 1469598103934665603;
        for v in &out {
          hsh = (hsh ^ u64::from(v.to_bits())).wrapping_mul(1099511628211);
        }
        println!("{c}x{h}x{w} p {p} noise {noise}: {hsh:016x}");
      }
    }
  }
}
