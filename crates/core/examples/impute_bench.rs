//! Timing of ROAD's noisy linear imputation on 3×224×224 images, single thread.
//!
//! `cargo run --release --example impute_bench -p xai-eval-core [-- REPS]`
//! (pin it to one core with `taskset -c 1` on a shared machine).
//!
//! Cases: 10 %, 50 % and 90 % of pixels masked at random, and a contiguous centred 158×158 block
//! (49.8 %). For repeated single-image calls (`noisy_linear`, noise 0.01; its solver buffers are
//! kept per thread) it prints the minimum and median wall time and the minimum and median CPU
//! time of the calling thread (`CLOCK_THREAD_CPUTIME_ID`, by `cpu-time`; on a loaded machine
//! the wall time also counts the time the thread waited for a core, the CPU time does not). Then
//! the mean over one call of `imputed::impute_rows` on 16 images in a one-thread pool, and the
//! median of single calls with `noise = 0` (the solve alone: the ziggurat normals cost a few ns
//! each, ~0.3 ms at 50 % masked). The load average before and after is printed too.
#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::time::Instant;

use xai_eval_core::impute::{noisy_linear, NoiseKey};
use xai_eval_core::imputed::{impute_rows, Fill};
use xai_eval_core::rng::{Purpose, Rng};

const C: usize = 3;
const H: usize = 224;
const W: usize = 224;

/// CPU time of this thread in ms (`CLOCK_THREAD_CPUTIME_ID`), where the platform has it.
fn thread_cpu_ms() -> Option<f64> {
  cpu_time::ThreadTime::try_now()
    .ok()
    .map(|t| t.as_duration().as_secs_f64() * 1e3)
}

fn load() -> String {
  std::fs::read_to_string("/proc/loadavg")
    .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
    .unwrap_or_else(|_| "n/a".into())
}

/// (min, median) of `v`, sorted in place.
fn min_median(v: &mut [f64]) -> (f64, f64) {
  v.sort_by(f64::total_cmp);
  (v[0], v[v.len() / 2])
}

fn main() {
  let reps: usize = std::env::args()
    .nth(1)
    .map(|s| s.parse().unwrap())
    .unwrap_or(200);
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
  println!(
    "noisy linear imputation, {C}x{H}x{W}, noise 0.01, single thread, {reps} repetitions; load average {}",
    load()
  );
  for (name, mask) in [
    ("10% random", &r10),
    ("50% random", &r50),
    ("90% random", &r90),
    ("50% block ", &block),
  ] {
    let masked = mask.iter().filter(|&&m| m == 1).count();
    let (mut wall, mut cpu) = (Vec::with_capacity(reps), Vec::with_capacity(reps));
    let mut sink = 0.0f32;
    for rep in 0..reps {
      let (t, c0) = (Instant::now(), thread_cpu_ms());
      let out = noisy_linear(&x, mask, C, H, W, 0.01, 7, NoiseKey::new(rep as u64, 0)).unwrap();
      wall.push(t.elapsed().as_secs_f64() * 1e3);
      if let (Some(a), Some(b)) = (c0, thread_cpu_ms()) {
        cpu.push(b - a);
      }
      sink += out[H * W / 2];
    }
    let mut quiet = Vec::with_capacity(reps);
    for _ in 0..reps {
      let t = Instant::now();
      let out = noisy_linear(&x, mask, C, H, W, 0.0, 7, NoiseKey::new(0, 0)).unwrap();
      quiet.push(t.elapsed().as_secs_f64() * 1e3);
      sink += out[H * W / 2];
    }
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
    let (wmin, wmed) = min_median(&mut wall);
    let cpu = if cpu.is_empty() {
      "cpu n/a".to_string()
    } else {
      let (cmin, cmed) = min_median(&mut cpu);
      format!("cpu min {cmin:.2} median {cmed:.2} ms")
    };
    println!(
      "{name} ({masked:>5} px masked): wall min {wmin:.2} median {wmed:.2} ms, {cpu}; batch of {n}: {batch_ms:.2} ms/image; noise 0: median {:.2} ms  [{}]",
      min_median(&mut quiet).1,
      sink.is_finite()
    );
  }
  println!("load average after: {}", load());
}
