//! Checked conversions of JS numbers. napi-rs reads a `u32` argument with
//! `napi_get_value_uint32`, which wraps silently (2^32 + 5 → 5, −1 → 4294967295, 1.5 → 1), and an
//! `i64` with `napi_get_value_int64`, which truncates fractions and maps NaN to 0. So counts,
//! shapes, indices and seeds cross as `f64` and are checked here: a value that is not a
//! non-negative integer JS can represent exactly is a typed error naming the argument.

use napi::bindgen_prelude::*;
use xai_eval_core::CoreError;

use crate::js_error;

/// `Number.MAX_SAFE_INTEGER`: the largest integer below which every integer is a JS number.
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

fn non_negative_integer(v: f64) -> Option<u64> {
  (v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v <= MAX_SAFE_INTEGER).then_some(v as u64)
}

/// A seed: a non-negative safe integer (`INVALID_OPTION` naming `name` otherwise).
pub(crate) fn seed(name: &'static str, v: f64) -> Result<u64> {
  non_negative_integer(v).ok_or_else(|| {
    js_error(CoreError::InvalidParam {
      name,
      reason: format!("a seed must be an integer in [0, 2^53), got {v}"),
    })
  })
}

/// A global sample index, e.g. `firstSample`: a non-negative safe integer.
pub(crate) fn index(name: &'static str, v: f64) -> Result<u64> {
  non_negative_integer(v).ok_or_else(|| {
    js_error(CoreError::InvalidParam {
      name,
      reason: format!("must be an integer in [0, 2^53), got {v}"),
    })
  })
}

/// A count or size (`samples`, `pixels`, `step`, …): a non-negative safe integer that fits in
/// `usize`.
pub(crate) fn count(name: &'static str, v: f64) -> Result<usize> {
  index(name, v).and_then(|n| {
    usize::try_from(n).map_err(|_| {
      js_error(CoreError::InvalidParam {
        name,
        reason: format!("{n} does not fit in this platform's usize"),
      })
    })
  })
}

/// `[N, C, H, W]` (`SHAPE_MISMATCH` naming `shape` for another length or a dimension that is not
/// a non-negative safe integer).
pub(crate) fn shape4(shape: &[f64]) -> Result<[usize; 4]> {
  let bad = || {
    js_error(CoreError::ShapeMismatch {
      arg: "shape",
      expected: "[N, C, H, W] of non-negative integers below 2^53".into(),
      got: format!("{shape:?}"),
    })
  };
  let dims: Vec<usize> = shape
    .iter()
    .map(|&d| non_negative_integer(d).and_then(|d| usize::try_from(d).ok()))
    .collect::<Option<_>>()
    .ok_or_else(bad)?;
  dims.try_into().map_err(|_| bad())
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn numbers_napi_would_wrap_or_truncate_are_rejected() {
    assert!(matches!(seed("seed", 7.0), Ok(7)));
    assert!(matches!(
      seed("seed", MAX_SAFE_INTEGER),
      Ok(9_007_199_254_740_991)
    ));
    for bad in [
      -1.0,
      1.5,
      f64::NAN,
      f64::INFINITY,
      2f64.powi(53),
      2f64.powi(64),
    ] {
      assert!(seed("seed", bad).is_err(), "{bad}");
      assert!(index("firstSample", bad).is_err(), "{bad}");
    }
    assert!(
      matches!(count("samples", 2f64.powi(32) + 5.0), Ok(n) if n as f64 == 2f64.powi(32) + 5.0)
    );
    assert!(matches!(shape4(&[1.0, 2.0, 3.0, 4.0]), Ok([1, 2, 3, 4])));
    assert!(shape4(&[1.0, 2.0, 3.0]).is_err());
    assert!(shape4(&[1.0, -2.0, 3.0, 4.0]).is_err());
    let err = shape4(&[1.0, 2.0, 0.5, 4.0]).err().map(|e| e.reason);
    assert!(err.is_some_and(|m| m.starts_with("SHAPE_MISMATCH|shape|")));
    let err = seed("baseline.seed", -1.0).err().map(|e| e.reason);
    assert!(err.is_some_and(|m| m.starts_with("INVALID_OPTION|baseline.seed|")));
  }
}
