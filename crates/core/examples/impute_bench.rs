//! Timing of ROAD's noisy linear imputation on 3×224×224 images, single thread.
//!
//! `cargo run --release --example impute_bench -p xai-eval-core`
//!
//! Cases: 10 %, 50 % and 90 % of pixels masked at random, and a contiguous centred 158×158 block
//! (49.8 %). Prints the median and minimum ms per image over repeated single-image calls
//! (`noisy_linear`; its solver buffers are kept per thread), the mean over one call of
//! `imputed::impute_rows` on 16 images in a one-thread pool, and the median of single calls with
//! `noise = 0`
//! (the solve alone: the ziggurat normals cost a few ns each, ~0.3 ms at 50 % masked).
#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::time::Instant;

use xai_eval_core::impute::{noisy_linear, NoiseKey};
use xai_eval_core::imputed::{impute_rows, Fill};
use xai_eval_core::rng::{Purpose, Rng};

const C: usize = 3;
const H: usize = 224;
const W: usize = 224;
const REPS: usize = 30;

fn main() {
  let one_thread = rayon::ThreadPoolBuilder::new()
    .num_threads(1)
    .build()
    .unwrap();
  let mut r = Rng::keyed(2024, 0, Purpose::Perturbation, 0);
  let x: Vec<f32> = (0..C * H * W).map(|_| r.uniform() as f32).collect();
  let mut random = |p: f64| -> Vec<u8> { (0..H * W).map(|_| u8::from(r.uniform() < p)).collect() };
  let (r10, r50, r90) = (random(0.1), random(0.5), random(0.9));
  let (y0, x0, side) = ((H - 158) / 2, (W - 158) / 2, 158);
  let block: Vec<u8> = (0..H * W)
    .map(|i| u8::from((y0..y0 + side).contains(&(i / W)) && (x0..x0 + side).contains(&(i % W))))
    .collect();
  println!("noisy linear imputation, {C}x{H}x{W}, noise 0.01, single thread");
  for (name, mask) in [
    ("10% random", &r10),
    ("50% random", &r50),
    ("90% random", &r90),
    ("50% block ", &block),
  ] {
    let masked = mask.iter().filter(|&&m| m == 1).count();
    let mut times = Vec::with_capacity(REPS);
    let mut sink = 0.0f32;
    for rep in 0..REPS {
      let t = Instant::now();
      let out = noisy_linear(&x, mask, C, H, W, 0.01, 7, NoiseKey::new(rep as u64, 0)).unwrap();
      times.push(t.elapsed().as_secs_f64() * 1e3);
      sink += out[H * W / 2];
    }
    times.sort_by(f64::total_cmp);
    let mut quiet = Vec::with_capacity(REPS);
    for _ in 0..REPS {
      let t = Instant::now();
      let out = noisy_linear(&x, mask, C, H, W, 0.0, 7, NoiseKey::new(0, 0)).unwrap();
      quiet.push(t.elapsed().as_secs_f64() * 1e3);
      sink += out[H * W / 2];
    }
    quiet.sort_by(f64::total_cmp);
    let n = 16;
    let xs: Vec<f32> = (0..n).flat_map(|_| x.iter().copied()).collect();
    let ms: Vec<u8> = (0..n).flat_map(|_| mask.iter().copied()).collect();
    let mut out = vec![0.0f32; xs.len()];
    let t = Instant::now();
    let samples: Vec<u32> = (0..n as u32).collect();
    let keys: Vec<NoiseKey> = (0..n as u64).map(|i| NoiseKey::new(i, 0)).collect();
    let fill = Fill::NoisyLinear { noise: 0.01 };
    one_thread
      .install(|| impute_rows(&xs, [n, C, H, W], &samples, &ms, fill, 7, &keys, &mut out))
      .unwrap();
    let batch_ms = t.elapsed().as_secs_f64() * 1e3 / n as f64;
    println!(
      "{name} ({masked:>5} px masked): single median {:.2} ms, min {:.2} ms; batch of {n}: {:.2} ms/image; noise 0: median {:.2} ms  [{}]",
      times[REPS / 2],
      times[0],
      batch_ms,
      quiet[REPS / 2],
      sink.is_finite()
    );
  }
}
