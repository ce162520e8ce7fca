//! Typed errors. Every variant carries the data a caller needs to fix its input, and a stable
//! [`CoreError::code`] that the N-API binding passes through unchanged (tests assert on codes,
//! never on message text). Nothing in this crate panics on user input.

use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub enum CoreError {
  /// An array's length or a shape does not match what the other arguments imply.
  ShapeMismatch {
    arg: &'static str,
    expected: String,
    got: String,
  },
  /// A parameter is out of its documented range.
  InvalidParam { name: &'static str, reason: String },
  /// A NaN or ±Inf at flat `index` of `arg`.
  NonFinite { arg: &'static str, index: usize },
  /// The input is empty where at least one element is needed.
  EmptyInput { arg: &'static str },
  /// The caller's stop flag was raised (an `AbortSignal` on the JS side) while the call ran.
  Aborted,
}

impl CoreError {
  /// Stable machine-readable code, shared with the TypeScript `XaiEvalError`.
  pub fn code(&self) -> &'static str {
    match self {
      CoreError::ShapeMismatch { .. } => "SHAPE_MISMATCH",
      CoreError::InvalidParam { .. } => "INVALID_OPTION",
      CoreError::NonFinite { .. } => "NON_FINITE",
      CoreError::EmptyInput { .. } => "EMPTY_INPUT",
      CoreError::Aborted => "ABORTED",
    }
  }

  /// The argument the error is about.
  pub fn arg(&self) -> &'static str {
    match self {
      CoreError::ShapeMismatch { arg, .. }
      | CoreError::NonFinite { arg, .. }
      | CoreError::EmptyInput { arg } => arg,
      CoreError::InvalidParam { name, .. } => name,
      CoreError::Aborted => "signal",
    }
  }

  pub(crate) fn shape(
    arg: &'static str,
    expected: impl fmt::Display,
    got: impl fmt::Display,
  ) -> Self {
    CoreError::ShapeMismatch {
      arg,
      expected: expected.to_string(),
      got: got.to_string(),
    }
  }

  pub(crate) fn param(name: &'static str, reason: impl Into<String>) -> Self {
    CoreError::InvalidParam {
      name,
      reason: reason.into(),
    }
  }
}

impl fmt::Display for CoreError {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match self {
      CoreError::ShapeMismatch { arg, expected, got } => {
        write!(f, "`{arg}`: expected {expected}, got {got}")
      }
      CoreError::InvalidParam { name, reason } => write!(f, "`{name}`: {reason}"),
      CoreError::NonFinite { arg, index } => {
        write!(
          f,
          "`{arg}` contains a NaN or infinite value at flat index {index}"
        )
      }
      CoreError::EmptyInput { arg } => write!(f, "`{arg}` is empty"),
      CoreError::Aborted => write!(f, "the evaluation was aborted"),
    }
  }
}

impl std::error::Error for CoreError {}

pub type Result<T> = std::result::Result<T, CoreError>;

/// Checks that `len == expected`, naming `arg` otherwise.
pub fn expect_len(arg: &'static str, len: usize, expected: usize) -> Result<()> {
  if len == expected {
    Ok(())
  } else {
    Err(CoreError::shape(
      arg,
      format!("{expected} elements"),
      format!("{len}"),
    ))
  }
}

/// Index of the first NaN/±Inf in `values`, as a typed error.
pub fn check_finite(arg: &'static str, values: &[f32]) -> Result<()> {
  match values.iter().position(|v| !v.is_finite()) {
    Some(index) => Err(CoreError::NonFinite { arg, index }),
    None => Ok(()),
  }
}

/// `count · size` elements of `arg`, or a `SHAPE_MISMATCH` instead of a wrapped product.
pub fn checked_len(arg: &'static str, count: usize, size: usize) -> Result<usize> {
  count.checked_mul(size).ok_or_else(|| {
    CoreError::shape(
      arg,
      "an element count that fits in usize",
      format!("{count} × {size}"),
    )
  })
}

/// A zeroed buffer of `len` elements for output `arg`, or a typed error (arg `arg`) where the
/// allocator refuses, instead of aborting the process. For outputs whose size is not bounded by
/// an input's length.
pub fn zeroed<T: Clone + Default>(arg: &'static str, len: usize) -> Result<Vec<T>> {
  let mut v = Vec::new();
  v.try_reserve_exact(len)
    .map_err(|_| CoreError::param(arg, format!("cannot allocate {len} elements")))?;
  v.resize(len, T::default());
  Ok(v)
}

/// The error for a feature index of an order that is out of range. Orders come from JS, and
/// their entries index rows and masks: checked where they are used, not by a scan of every
/// order at every call.
pub fn bad_index(arg: &'static str, index: usize, features: usize) -> CoreError {
  CoreError::param(
    arg,
    format!("feature index {index} is out of range ({features} features)"),
  )
}

/// Checks that the global indices `first_sample .. first_sample + n` of a shard's samples fit in
/// a `u64`, naming `firstSample` otherwise.
pub fn check_sample_range(first_sample: u64, n: usize) -> Result<()> {
  match first_sample.checked_add(n as u64) {
    Some(_) => Ok(()),
    None => Err(CoreError::param(
      "firstSample",
      format!("{first_sample} + {n} samples overflows a 64-bit sample index"),
    )),
  }
}
