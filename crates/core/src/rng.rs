//! Deterministic random numbers keyed by `(seed, global sample index, purpose, step)`.
//!
//! Every random choice in xai-eval derives its generator from [`Rng::keyed`]: the user's seed, the
//! sample's index in the *whole* data set (never its position in a batch or shard), what the draws
//! are for ([`Purpose`]) and the step of the metric that draws them. Nothing else: so results do
//! not depend on batch size, worker count or how a data set is split into shards. The generator is xoshiro256++ seeded through SplitMix64; it is
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

/// The SplitMix64 finaliser of `x + golden ratio`: one 64-bit mixing step of [`Rng::keyed`].
fn mix64(x: u64) -> u64 {
  let mut state = x;
  splitmix64(&mut state)
}

/// What a random stream is used for. Two purposes never share a stream, so adding draws for one
/// never shifts another's. The numbers are part of the results' definition: never renumber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum Purpose {
  /// Seeded uniform baselines, one draw per entry (step 0).
  Baseline = 1,
  /// Imputation noise of a perturbed row (step: what the row is, e.g. its mask's key).
  Imputation = 2,
  /// Random order among tied attributions.
  Ties = 3,
  /// Random feature subsets (FaithfulnessCorrelation's runs, …).
  Subset = 4,
  /// Random explanations (random rankings for QGE baselines and latent-quality checks).
  Explanation = 5,
  /// Random perturbation values (MonotonicityCorrelation's uniform baselines, noise, …).
  Perturbation = 6,
  /// Random patch or region orders.
  Order = 7,
  /// Resampling with replacement (random baselines of the Quality Gap Estimator's paper, bootstrap).
  Resample = 8,
  /// Masks shared by every sample (RISE masks, Shapley permutations): the sample slot holds the
  /// mask or permutation index, so masks never depend on batches or shards.
  Mask = 9,
  /// Random other classes (RandomLogit, DataRandomization): one draw per sample.
  Class = 10,
  /// Randomized model weights (MPRT): the sample slot holds the layer index, the step the tensor.
  Weights = 11,
}

/// `out.len()` uniforms in [0, 1) from the keyed stream `(seed, sample, purpose, step)`: for
/// callers outside the core that need plain draws (e.g. the attribution modifications).
pub fn keyed_uniforms(seed: u64, sample: u64, purpose: Purpose, step: u64, out: &mut [f64]) {
  let mut rng = Rng::keyed(seed, sample, purpose, step);
  out.iter_mut().for_each(|v| *v = rng.uniform());
}

impl Purpose {
  /// The purpose by its lower-case name, for the binding.
  pub fn from_name(name: &str) -> Option<Self> {
    Some(match name {
      "baseline" => Purpose::Baseline,
      "imputation" => Purpose::Imputation,
      "ties" => Purpose::Ties,
      "subset" => Purpose::Subset,
      "explanation" => Purpose::Explanation,
      "perturbation" => Purpose::Perturbation,
      "order" => Purpose::Order,
      "resample" => Purpose::Resample,
      "mask" => Purpose::Mask,
      _ => return None,
    })
  }
}

/// xoshiro256++ (Blackman & Vigna 2019).
#[derive(Debug, Clone)]
pub struct Rng {
  s: [u64; 4],
}

impl Rng {
  /// Generator for one raw `stream` of a user `seed`. Not public: every stream of results comes
  /// from [`Rng::keyed`]; inside the crate this also seeds test data.
  pub(crate) fn new(seed: u64, stream: u64) -> Self {
    let mut key = stream.wrapping_mul(0xD1B5_4A32_D192_ED03);
    let mut sm = seed ^ splitmix64(&mut key);
    let s = [
      splitmix64(&mut sm),
      splitmix64(&mut sm),
      splitmix64(&mut sm),
      splitmix64(&mut sm),
    ];
    Rng { s }
  }

  /// The generator of `(seed, sample, purpose, step)`: `sample` is the global index of the sample
  /// in the whole data set. The stream is `mix(mix(mix(sample) ^ purpose) ^ step)` with the
  /// SplitMix64 finaliser as `mix`, fed to [`Rng::new`].
  pub fn keyed(seed: u64, sample: u64, purpose: Purpose, step: u64) -> Self {
    Rng::new(seed, mix64(mix64(mix64(sample) ^ purpose as u64) ^ step))
  }

  /// A uniform integer in `[0, n)` (`n ≥ 1`) by Lemire's multiply-and-reject: unbiased.
  pub fn below(&mut self, n: u64) -> u64 {
    debug_assert!(n > 0);
    let threshold = n.wrapping_neg() % n;
    loop {
      let m = u128::from(self.next_u64()) * u128::from(n);
      if (m as u64) >= threshold {
        return (m >> 64) as u64;
      }
    }
  }

  /// `k` distinct indices of `0..n`, in draw order, by a partial Fisher–Yates shuffle of the
  /// identity: draw `i` swaps position `i` with `i + below(n − i)`. Needs `k ≤ n`. A small subset
  /// of many indices keeps only the displaced positions in a map: the same draws and result in
  /// O(k) instead of O(n) time and memory.
  pub fn subset(&mut self, n: usize, k: usize, out: &mut Vec<u32>) {
    debug_assert!(k <= n);
    out.clear();
    if k.saturating_mul(16) >= n {
      out.extend(0..n as u32);
      for i in 0..k {
        let j = i + self.below((n - i) as u64) as usize;
        out.swap(i, j);
      }
      out.truncate(k);
      return;
    }
    let mut moved = std::collections::HashMap::<usize, u32>::with_capacity(k);
    for i in 0..k {
      let j = i + self.below((n - i) as u64) as usize;
      let at_i = moved.get(&i).copied().unwrap_or(i as u32);
      let at_j = moved.get(&j).copied().unwrap_or(j as u32);
      out.push(at_j);
      // Position i is never drawn again (later draws are ≥ i + 1); j now holds i's value.
      moved.insert(j, at_i);
    }
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
  /// k-th draw of a stream never depends on how earlier draws were consumed). Tests only (random
  /// test data); results draw normals from [`Rng::normals`].
  #[cfg(test)]
  pub fn normal(&mut self) -> f64 {
    let u1 = 1.0 - self.uniform(); // (0, 1]: ln is finite
    let u2 = self.uniform();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
  }

  /// Turns this generator into a sequential stream of standard normals drawn by the ziggurat
  /// method (see [`Normals`]).
  pub fn normals(self) -> Normals {
    Normals {
      rng: self,
      zig: ziggurat_tables(),
    }
  }
}

/// Layers of the normal ziggurat.
const ZIG_LAYERS: usize = 256;
/// Right edge of the base layer (Marsaglia & Tsang 2000, 256 layers).
const ZIG_R: f64 = 3.654_152_885_361_009;
/// Area of every layer, base layer and tail included.
const ZIG_V: f64 = 0.004_928_673_233_99;

/// `x_i` (layer edges, `x_0 = V/f(R)`, `x_1 = R`, …, `x_256 = 0`) and `f(x_i) = exp(−x_i²/2)`.
#[derive(Debug)]
pub struct ZigTables {
  x: [f64; ZIG_LAYERS + 1],
  f: [f64; ZIG_LAYERS + 1],
}

fn ziggurat_tables() -> &'static ZigTables {
  static TABLES: std::sync::OnceLock<ZigTables> = std::sync::OnceLock::new();
  TABLES.get_or_init(|| {
    let pdf = |x: f64| (-0.5 * x * x).exp();
    let mut x = [0.0f64; ZIG_LAYERS + 1];
    x[0] = ZIG_V / pdf(ZIG_R);
    x[1] = ZIG_R;
    for i in 2..ZIG_LAYERS {
      // Layer i − 1 spans [0, x_{i−1}] × [f(x_{i−1}), f(x_i)] with area V.
      x[i] = (-2.0 * (ZIG_V / x[i - 1] + pdf(x[i - 1])).ln()).sqrt();
    }
    x[ZIG_LAYERS] = 0.0;
    let mut f = [0.0f64; ZIG_LAYERS + 1];
    for (fi, &xi) in f.iter_mut().zip(&x) {
      *fi = pdf(xi);
    }
    ZigTables { x, f }
  })
}

/// Standard normals by the ziggurat method (Marsaglia & Tsang 2000, 256 layers, in the form of
/// Doornik 2005 with the layer index and the abscissa taken from different bits of one draw).
///
/// Values come out one at a time in a fixed order: the k-th value of a stream depends only on
/// `(seed, stream, k)`. About 99 % of them cost one `next_u64` and a table look-up (a few ns,
/// against ~30 ns for a Box–Muller draw); the rest take a few more uniforms, and the tail beyond
/// `R ≈ 3.65` is sampled exactly (Marsaglia 1964).
#[derive(Debug, Clone)]
pub struct Normals {
  rng: Rng,
  zig: &'static ZigTables,
}

impl Normals {
  /// The next standard normal of the stream.
  #[inline]
  pub fn next_normal(&mut self) -> f64 {
    let (xt, ft) = (&self.zig.x, &self.zig.f);
    loop {
      let bits = self.rng.next_u64();
      let i = (bits & 0xff) as usize;
      // u uniform in [−1, 1) from the top 53 bits (independent of the 8 index bits).
      let u = (bits >> 11) as f64 * (2.0 / (1u64 << 53) as f64) - 1.0;
      let x = u * xt[i];
      if x.abs() < xt[i + 1] {
        return x;
      }
      if i == 0 {
        return self.tail(u < 0.0);
      }
      let y = ft[i] + (ft[i + 1] - ft[i]) * self.rng.uniform();
      if y < (-0.5 * x * x).exp() {
        return x;
      }
    }
  }

  /// A draw from the tail `|x| > R` with the given sign.
  #[cold]
  fn tail(&mut self, negative: bool) -> f64 {
    loop {
      let a = (1.0 - self.rng.uniform()).ln() / ZIG_R; // (−∞, 0]
      let b = (1.0 - self.rng.uniform()).ln();
      if -2.0 * b >= a * a {
        return if negative { a - ZIG_R } else { ZIG_R - a };
      }
    }
  }
}

impl Iterator for Normals {
  type Item = f64;

  #[inline]
  fn next(&mut self) -> Option<f64> {
    Some(self.next_normal())
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn same_seed_and_stream_repeat() {
    let a: Vec<u64> = (0..5)
      .scan(Rng::new(7, 3), |r, _| Some(r.next_u64()))
      .collect();
    let b: Vec<u64> = (0..5)
      .scan(Rng::new(7, 3), |r, _| Some(r.next_u64()))
      .collect();
    assert_eq!(a, b);
  }

  #[test]
  fn streams_differ() {
    assert_ne!(Rng::new(7, 0).next_u64(), Rng::new(7, 1).next_u64());
    assert_ne!(Rng::new(7, 0).next_u64(), Rng::new(8, 0).next_u64());
  }

  #[test]
  fn keyed_streams_differ_by_every_key_and_repeat() {
    let first = |seed, sample, purpose, step| Rng::keyed(seed, sample, purpose, step).next_u64();
    let base = first(1, 2, Purpose::Subset, 3);
    assert_eq!(base, first(1, 2, Purpose::Subset, 3));
    assert_ne!(base, first(2, 2, Purpose::Subset, 3));
    assert_ne!(base, first(1, 3, Purpose::Subset, 3));
    assert_ne!(base, first(1, 2, Purpose::Baseline, 3));
    assert_ne!(base, first(1, 2, Purpose::Subset, 4));
    // The reference values the Python fixture scripts mirror (scripts/keyed_rng.py).
    assert_eq!(first(0, 0, Purpose::Baseline, 0), KEYED_0_0_1_0);
  }

  /// `Rng::keyed(0, 0, Purpose::Baseline, 0).next_u64()`, pinned: changing it changes results.
  const KEYED_0_0_1_0: u64 = 17_620_060_956_121_287_104;

  #[test]
  fn below_and_subset_are_in_range_and_distinct() {
    let mut r = Rng::new(5, 5);
    assert!((0..1000).all(|_| r.below(7) < 7));
    let mut out = Vec::new();
    r.subset(50, 20, &mut out);
    let mut seen = out.clone();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!((out.len(), seen.len()), (20, 20));
    assert!(out.iter().all(|&i| i < 50));
    // Pinned against scripts/keyed_rng.py.
    Rng::keyed(7, 3, Purpose::Subset, 2).subset(10, 4, &mut out);
    assert_eq!(out, [9, 4, 5, 1]);
  }

  #[test]
  fn sparse_subsets_equal_the_full_shuffle() {
    // The same draws as a full Fisher–Yates shuffle of 0..n, truncated to k.
    let full = |mut rng: Rng, n: usize, k: usize| {
      let mut v: Vec<u32> = (0..n as u32).collect();
      for i in 0..k {
        let j = i + rng.below((n - i) as u64) as usize;
        v.swap(i, j);
      }
      v.truncate(k);
      v
    };
    let mut out = Vec::new();
    for (n, k) in [(1000, 3), (1000, 62), (100_000, 224), (50, 49), (17, 1)] {
      for run in 0..20 {
        Rng::keyed(9, 4, Purpose::Subset, run).subset(n, k, &mut out);
        assert_eq!(
          out,
          full(Rng::keyed(9, 4, Purpose::Subset, run), n, k),
          "n {n}, k {k}, run {run}"
        );
      }
    }
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

  #[test]
  fn ziggurat_normals_match_the_normal_distribution() {
    let n = 1_000_000;
    let xs: Vec<f64> = Rng::new(3, 1).normals().take(n).collect();
    let again: Vec<f64> = Rng::new(3, 1).normals().take(100).collect();
    assert_eq!(&xs[..100], &again[..]);
    let mean = xs.iter().sum::<f64>() / n as f64;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
    let kurt = xs.iter().map(|x| (x - mean).powi(4)).sum::<f64>() / n as f64;
    assert!(mean.abs() < 0.005, "mean {mean}");
    assert!((var - 1.0).abs() < 0.005, "var {var}");
    assert!((kurt - 3.0).abs() < 0.05, "kurtosis {kurt}");
    // Probabilities of a few intervals (the base layer, a wedge and the tail included), each
    // within 5 standard errors of the exact value.
    let cdf = |x: f64| 0.5 * (1.0 + erf(x / std::f64::consts::SQRT_2));
    for (lo, hi) in [
      (-0.1, 0.1),
      (0.5, 1.0),
      (1.0, 2.0),
      (2.5, 3.6),
      (3.6, 10.0),
      (-10.0, -3.0),
    ] {
      let p = cdf(hi) - cdf(lo);
      let got = xs.iter().filter(|&&x| x >= lo && x < hi).count() as f64 / n as f64;
      let se = (p * (1.0 - p) / n as f64).sqrt();
      assert!(
        (got - p).abs() < 5.0 * se + 1e-7,
        "[{lo}, {hi}): {got} vs {p}"
      );
    }
  }

  /// erf by its Taylor series / continued fraction is overkill here: Abramowitz–Stegun 7.1.26
  /// has an absolute error below 1.5e-7, enough for the interval probabilities above.
  fn erf(x: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
    let poly = t
      * (0.254_829_592
        + t * (-0.284_496_736 + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let v = 1.0 - poly * (-x * x).exp();
    if x < 0.0 {
      -v
    } else {
      v
    }
  }
}
