//! Exact, order-independent sums of f64 values.
//!
//! The data-set means of soco (accuracy, mean score, mean soundness ratio) are sums over samples.
//! An f64 running sum depends on the order of its terms, so a data set split into shards would
//! give a different last bit than a single pass. [`ExactSum`] keeps the sum as an exact
//! fixed-point integer (least significant bit 2⁻¹⁰⁷⁴, the smallest subnormal), so adding and
//! merging are associative and commutative, and [`ExactSum::value`] rounds once, to nearest
//! (ties to even) — the correctly rounded sum, whatever the partition.

/// 64-bit limbs of the fixed-point integer: 2098 bits span every finite f64 (exponents
/// 2⁻¹⁰⁷⁴ … 2¹⁰²⁴), the rest is headroom against overflow (2²⁰⁶ terms of `f64::MAX`).
const LIMBS: usize = 36;

/// Exact sum of finite f64 values: a two's-complement integer, little-endian limbs.
#[derive(Clone, PartialEq, Eq)]
pub struct ExactSum {
  limbs: [u64; LIMBS],
}

impl Default for ExactSum {
  fn default() -> Self {
    ExactSum { limbs: [0; LIMBS] }
  }
}

impl std::fmt::Debug for ExactSum {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    write!(f, "ExactSum({:e})", self.value())
  }
}

impl ExactSum {
  /// Serialized size in bytes.
  pub const BYTES: usize = LIMBS * 8;

  /// Adds `v` exactly. Non-finite values are the caller's to reject (they are ignored here, so
  /// that the accumulator itself never becomes undefined).
  pub fn add(&mut self, v: f64) {
    if !v.is_finite() {
      debug_assert!(false, "ExactSum::add({v})");
      return;
    }
    let bits = v.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as usize;
    let frac = bits & ((1 << 52) - 1);
    // value = mant · 2^(shift − 1074); subnormals have no implicit bit and shift 0.
    let (mant, shift) = if exp == 0 {
      (frac, 0)
    } else {
      (frac | (1 << 52), exp - 1)
    };
    if mant == 0 {
      return;
    }
    let wide = u128::from(mant) << (shift % 64);
    let (i, lo, hi) = (shift / 64, wide as u64, (wide >> 64) as u64);
    if bits >> 63 == 0 {
      self.add_at(i, lo, hi);
    } else {
      self.sub_at(i, lo, hi);
    }
  }

  /// Adds every value of `other`.
  pub fn merge(&mut self, other: &ExactSum) {
    let mut carry = false;
    for (a, &b) in self.limbs.iter_mut().zip(&other.limbs) {
      let (s, c1) = a.overflowing_add(b);
      let (s, c2) = s.overflowing_add(u64::from(carry));
      *a = s;
      carry = c1 || c2;
    }
  }

  fn add_at(&mut self, i: usize, lo: u64, hi: u64) {
    let (s, c) = self.limbs[i].overflowing_add(lo);
    self.limbs[i] = s;
    let (s, c1) = self.limbs[i + 1].overflowing_add(hi);
    let (s, c2) = s.overflowing_add(u64::from(c));
    self.limbs[i + 1] = s;
    let mut carry = c1 || c2;
    let mut j = i + 2;
    while carry && j < LIMBS {
      let (s, c) = self.limbs[j].overflowing_add(1);
      self.limbs[j] = s;
      carry = c;
      j += 1;
    }
  }

  fn sub_at(&mut self, i: usize, lo: u64, hi: u64) {
    let (s, b) = self.limbs[i].overflowing_sub(lo);
    self.limbs[i] = s;
    let (s, b1) = self.limbs[i + 1].overflowing_sub(hi);
    let (s, b2) = s.overflowing_sub(u64::from(b));
    self.limbs[i + 1] = s;
    let mut borrow = b1 || b2;
    let mut j = i + 2;
    while borrow && j < LIMBS {
      let (s, b) = self.limbs[j].overflowing_sub(1);
      self.limbs[j] = s;
      borrow = b;
      j += 1;
    }
  }

  /// The sum, correctly rounded to f64 (±∞ if it overflows f64).
  pub fn value(&self) -> f64 {
    let negative = self.limbs[LIMBS - 1] >> 63 == 1;
    let mut mag = self.limbs;
    if negative {
      // Two's-complement negation: invert and add one.
      let mut carry = true;
      for l in mag.iter_mut() {
        let (s, c) = (!*l).overflowing_add(u64::from(carry));
        *l = s;
        carry = c;
      }
    }
    let sign = if negative { -1.0 } else { 1.0 };
    let Some(top) = mag.iter().rposition(|&l| l != 0) else {
      return 0.0;
    };
    // Position of the highest set bit.
    let p = top * 64 + 63 - mag[top].leading_zeros() as usize;
    if p < 53 {
      // mag < 2^53: m · 2^-1074 is representable (subnormal or the lowest binade): exact.
      return sign * (mag[0] as f64) * f64::from_bits(1);
    }
    let bit = |k: usize| (mag[k / 64] >> (k % 64)) & 1 == 1;
    let mut mant = bits_at(&mag, p - 52);
    let round = bit(p - 53);
    let sticky = {
      let k = p - 53; // any bit strictly below position k
      mag[..k / 64].iter().any(|&l| l != 0) || mag[k / 64] & ((1u64 << (k % 64)) - 1) != 0
    };
    let mut biased = (p - 51) as u64; // exponent p − 1074, biased by 1023
    if round && (sticky || mant & 1 == 1) {
      mant += 1;
      if mant == 1 << 53 {
        mant >>= 1;
        biased += 1;
      }
    }
    if biased >= 0x7ff {
      return sign * f64::INFINITY;
    }
    sign * f64::from_bits((biased << 52) | (mant & ((1 << 52) - 1)))
  }

  /// Little-endian limbs.
  pub fn to_le_bytes(&self) -> Vec<u8> {
    self.limbs.iter().flat_map(|l| l.to_le_bytes()).collect()
  }

  /// Inverse of [`ExactSum::to_le_bytes`]; `None` unless exactly [`ExactSum::BYTES`] long.
  pub fn from_le_bytes(bytes: &[u8]) -> Option<ExactSum> {
    if bytes.len() != Self::BYTES {
      return None;
    }
    let mut s = ExactSum::default();
    for (l, chunk) in s.limbs.iter_mut().zip(bytes.chunks_exact(8)) {
      *l = u64::from_le_bytes(chunk.try_into().ok()?);
    }
    Some(s)
  }
}

/// The 53 bits of `mag` starting at bit `start`.
fn bits_at(mag: &[u64; LIMBS], start: usize) -> u64 {
  let (i, off) = (start / 64, start % 64);
  let lo = u128::from(mag[i]);
  let hi = if i + 1 < LIMBS {
    u128::from(mag[i + 1])
  } else {
    0
  };
  ((((hi << 64) | lo) >> off) as u64) & ((1 << 53) - 1)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
  use super::*;
  use crate::rng::Rng;

  fn sum(values: &[f64]) -> f64 {
    let mut s = ExactSum::default();
    values.iter().for_each(|&v| s.add(v));
    s.value()
  }

  #[test]
  fn correctly_rounded_where_naive_summation_is_not() {
    assert_eq!((0.1 + 0.2) + 0.3, 0.6000000000000001);
    assert_eq!(sum(&[0.1, 0.2, 0.3]), 0.6);
    assert_eq!(sum(&[1e100, 1.0, -1e100]), 1.0);
    assert_eq!(sum(&[-1.5, 0.25]), -1.25);
    assert_eq!(sum(&[]), 0.0);
    assert_eq!(sum(&[3.0, -3.0]), 0.0);
  }

  #[test]
  fn ties_to_even_subnormals_and_overflow() {
    let two53 = 9_007_199_254_740_992.0;
    assert_eq!(sum(&[two53, 1.0]), two53); // 2^53 + 1: tie, to even
    assert_eq!(sum(&[two53, 1.0, 1.0]), two53 + 2.0);
    assert_eq!(sum(&[two53, 1.0, 0.25]), two53 + 2.0); // above the tie: up
    let tiny = f64::from_bits(1);
    assert_eq!(sum(&[tiny, tiny, tiny]), f64::from_bits(3));
    assert_eq!(sum(&[f64::MAX, f64::MAX]), f64::INFINITY);
    assert_eq!(sum(&[-f64::MAX, -f64::MAX]), f64::NEG_INFINITY);
    assert_eq!(sum(&[f64::MAX, f64::MAX, -f64::MAX]), f64::MAX);
    assert_eq!(sum(&[f64::MIN_POSITIVE, -tiny]), f64::MIN_POSITIVE - tiny);
  }

  #[test]
  fn order_and_partition_invariant() {
    let mut rng = Rng::new(11, 0);
    let values: Vec<f64> = (0..500)
      .map(|_| rng.normal() * 10f64.powi((rng.uniform() * 40.0) as i32 - 20))
      .collect();
    let whole = sum(&values);
    let mut reversed = values.clone();
    reversed.reverse();
    assert_eq!(sum(&reversed).to_bits(), whole.to_bits());
    let (mut a, mut b) = (ExactSum::default(), ExactSum::default());
    for (i, &v) in values.iter().enumerate() {
      if i % 3 == 0 {
        a.add(v)
      } else {
        b.add(v)
      }
    }
    b.merge(&a);
    assert_eq!(b.value().to_bits(), whole.to_bits());
    let back = ExactSum::from_le_bytes(&b.to_le_bytes()).unwrap();
    assert_eq!(back, b);
    assert!(ExactSum::from_le_bytes(&[0; 7]).is_none());
  }

  #[test]
  fn agrees_with_exact_integer_sums() {
    let mut rng = Rng::new(5, 1);
    for _ in 0..200 {
      let ints: Vec<i64> = (0..20)
        .map(|_| (rng.next_u64() % 2_000_001) as i64 - 1_000_000)
        .collect();
      let floats: Vec<f64> = ints.iter().map(|&i| i as f64 / 1024.0).collect();
      assert_eq!(sum(&floats), ints.iter().sum::<i64>() as f64 / 1024.0);
    }
  }
}
