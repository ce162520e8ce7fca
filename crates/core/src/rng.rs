//! Deterministic random numbers keyed by `(seed, stream)`.
//!
//! Every random choice in xai-eval derives its generator from the user's seed and the *sample
//! index* (the stream), never from a global or per-batch state, so results do not depend on batch
//! size, worker count or sharding. The generator is xoshiro256++ seeded through SplitMix64; it is
//! written out here (not taken from a crate) so that numbers stay bit-identical across dependency
//! upgrades — the same reason numpy pins its bit generators.

/// SplitMix64 step (Steele, Lea & Flood 2014), used to expand seeds.
fn splitmix64(state: &mut u64) -> u64 {
  *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
  let mut z = *state;
  z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
  z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
  z ^ (z >> 31)
}

/// xoshiro256++ (Blackman & Vigna 2019).
#[derive(Debug, Clone)]
pub struct Rng {
  s: [u64; 4],
}

impl Rng {
  /// Generator for one `stream` (e.g. a sample index) of a user `seed`.
  pub fn new(seed: u64, stream: u64) -> Self {
    let mut key = stream.wrapping_mul(0xD1B5_4A32_D192_ED03);
    let mut sm = seed ^ splitmix64(&mut key);
    let s = [splitmix64(&mut sm), splitmix64(&mut sm), splitmix64(&mut sm), splitmix64(&mut sm)];
    Rng { s }
  }

  pub fn next_u64(&mut self) -> u64 {
    let s = &mut self.s;
    let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
    let t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = s[3].rotate_left(45);
    result
  }

  /// Uniform in [0, 1) with 53 random bits.
  pub fn uniform(&mut self) -> f64 {
    (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
  }

  /// Standard normal by the Box–Muller transform (one value per call, no cached pair, so the
  /// k-th draw of a stream never depends on how earlier draws were consumed).
  pub fn normal(&mut self) -> f64 {
    let u1 = 1.0 - self.uniform(); // (0, 1]: ln is finite
    let u2 = self.uniform();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn same_seed_and_stream_repeat() {
    let a: Vec<u64> = (0..5).scan(Rng::new(7, 3), |r, _| Some(r.next_u64())).collect();
    let b: Vec<u64> = (0..5).scan(Rng::new(7, 3), |r, _| Some(r.next_u64())).collect();
    assert_eq!(a, b);
  }

  #[test]
  fn streams_differ() {
    assert_ne!(Rng::new(7, 0).next_u64(), Rng::new(7, 1).next_u64());
    assert_ne!(Rng::new(7, 0).next_u64(), Rng::new(8, 0).next_u64());
  }

  #[test]
  fn normal_has_unit_moments() {
    let mut r = Rng::new(1, 0);
    let n = 200_000;
    let xs: Vec<f64> = (0..n).map(|_| r.normal()).collect();
    let mean = xs.iter().sum::<f64>() / n as f64;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
    assert!(mean.abs() < 0.01, "mean {mean}");
    assert!((var - 1.0).abs() < 0.01, "var {var}");
  }
}
