//! NumPy `.npy` arrays, chunk by chunk: the header is parsed and each chunk's bytes are decoded by
//! [`npyz`] (the maintained Rust implementation of NumPy's format: versions 1–3, Python-literal
//! header dicts, every byte order), to `f32` (float arrays) or `i32` (integer and boolean arrays)
//! in C order. No I/O: the caller reads the bytes of a row range (from a file, a zip member, a
//! decompressing stream) and hands them in, so memory is bounded by the chunk, not by the array.
//!
//! A chunk of rows `[start, end)` is, in the file:
//! - C order: one run of `(end − start) · row_size` values;
//! - Fortran order: `row_size` runs of `end − start` values (the first axis varies fastest), one
//!   per element of a row in Fortran order. Concatenated, these runs are the chunk as a Fortran
//!   array of shape `[end − start, rest…]`, which [`NpyLayout::decode`] transposes to C order.

use std::io::{self, Cursor};

use npyz::{DType, Deserialize, NpyHeader, Order, TypeChar, TypeRead, TypeStr};

use crate::{CoreError, Result};

/// The value family of an array: what it decodes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
  /// `f2`, `f4`, `f8`: decoded to `f32`.
  Float,
  /// `i1`–`i8`: decoded to `i32` (values outside `i32` are an error).
  Int,
  /// `u1`–`u8`: decoded to `i32` (values above `i32::MAX` are an error).
  Uint,
  /// `b1`: decoded to `i32` 0 or 1.
  Bool,
}

impl Kind {
  /// NumPy's kind character.
  pub fn code(self) -> char {
    match self {
      Kind::Float => 'f',
      Kind::Int => 'i',
      Kind::Uint => 'u',
      Kind::Bool => 'b',
    }
  }
}

/// Decoded values of a chunk.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
  F32(Vec<f32>),
  I32(Vec<i32>),
}

/// What an `.npy` header says: element type, memory order, shape and where the values start.
#[derive(Debug, Clone)]
pub struct NpyLayout {
  /// The dtype as NumPy writes it, e.g. `<f4`, `>i8`, `|b1`.
  pub descr: String,
  pub kind: Kind,
  /// Bytes per value.
  pub item_size: usize,
  pub fortran_order: bool,
  pub shape: Vec<u64>,
  /// Byte offset of the first value from the start of the `.npy` bytes.
  pub data_offset: u64,
  /// Length of the first axis (1 for a 0-d array).
  pub rows: u64,
  /// Values per row: the product of the shape after the first axis.
  pub row_size: u64,
  dtype: DType,
  /// For Fortran order: the C-order position within a row of each Fortran-order element.
  fortran_to_c: Vec<usize>,
}

const SUPPORTED: &str = "float16/32/64, int8/16/32/64, uint8/16/32/64 or bool";

/// Arrays larger than this many bytes cannot be addressed by a JS number (2^53).
const MAX_BYTES: u64 = 1 << 53;

fn bad(reason: impl Into<String>) -> CoreError {
  CoreError::param("npy", reason)
}

impl NpyLayout {
  /// Parses the header at the start of `prefix` (the first bytes of the `.npy`: at least the
  /// whole header). `whole` says whether `prefix` is the entire file, so that running out of
  /// bytes means a truncated header rather than a header longer than the prefix.
  pub fn parse(prefix: &[u8], whole: bool) -> Result<NpyLayout> {
    let mut cursor = Cursor::new(prefix);
    let header =
      NpyHeader::from_reader(&mut cursor).map_err(|e| header_error(&e, prefix, whole))?;
    let data_offset = cursor.position();
    let dtype = header.dtype();
    let ty = match &dtype {
      DType::Plain(ty) => ty.clone(),
      other => {
        return Err(bad(format!(
          "dtype {} (expected {SUPPORTED}; structured arrays are not read)",
          other.descr()
        )))
      }
    };
    let descr = ty.to_string();
    let unsupported = || bad(format!("dtype '{descr}' (expected {SUPPORTED})"));
    let size = ty.size_field();
    let kind = match (ty.type_char(), size) {
      (TypeChar::Float, 2 | 4 | 8) => Kind::Float,
      (TypeChar::Int, 1 | 2 | 4 | 8) => Kind::Int,
      (TypeChar::Uint, 1 | 2 | 4 | 8) => Kind::Uint,
      (TypeChar::Bool, 1) => Kind::Bool,
      _ => return Err(unsupported()),
    };
    let item_size = ty.num_bytes().ok_or_else(unsupported)?;
    let shape = header.shape().to_vec();
    // npyz's own element count is an unchecked product (it wraps in release builds): the size is
    // recomputed with checks, and bounded by what a JS number addresses.
    let rest = shape
      .iter()
      .skip(1)
      .try_fold(1u64, |p, &d| p.checked_mul(d));
    let rows = shape.first().copied().unwrap_or(1);
    let bytes = rest
      .and_then(|r| r.checked_mul(rows))
      .and_then(|n| n.checked_mul(item_size as u64))
      .filter(|&b| b < MAX_BYTES);
    let (Some(row_size), Some(_)) = (rest, bytes) else {
      return Err(bad(format!(
        "shape ({}) is too large (more than 2^53 bytes)",
        shape
          .iter()
          .map(u64::to_string)
          .collect::<Vec<_>>()
          .join(", ")
      )));
    };
    let fortran_order = header.order() == Order::Fortran && row_size > 1;
    let fortran_to_c = if fortran_order {
      fortran_positions(&shape[1..])?
    } else {
      Vec::new()
    };
    Ok(NpyLayout {
      descr,
      kind,
      item_size,
      fortran_order: header.order() == Order::Fortran,
      shape,
      data_offset,
      rows,
      row_size,
      dtype,
      fortran_to_c,
    })
  }

  /// Whether the rows of a chunk are strided in the file (Fortran order with more than one value
  /// per row).
  pub fn strided(&self) -> bool {
    !self.fortran_to_c.is_empty()
  }

  /// Decodes the values of `rows` rows (`raw`, in file order: see the module docs) to C order.
  pub fn decode(&self, raw: &[u8], rows: usize) -> Result<Values> {
    let row_size = usize::try_from(self.row_size).map_err(|_| bad("row too large"))?;
    let count = crate::error::checked_len("raw", rows, row_size)?;
    crate::error::expect_len(
      "raw",
      raw.len(),
      crate::error::checked_len("raw", count, self.item_size)?,
    )?;
    let place = |i: usize| {
      if self.fortran_to_c.is_empty() {
        i
      } else {
        // Fortran position i = j · rows + r → C position r · row_size + c(j).
        (i % rows) * row_size + self.fortran_to_c[i / rows]
      }
    };
    let ty = match &self.dtype {
      DType::Plain(ty) => ty,
      _ => return Err(bad("structured dtype")),
    };
    let int = |v: i64| {
      i32::try_from(v).map_err(|_| bad(format!("value {v} does not fit a 32-bit integer label")))
    };
    let uint = |v: u64| {
      i32::try_from(v).map_err(|_| bad(format!("value {v} does not fit a 32-bit integer label")))
    };
    match (self.kind, self.item_size) {
      (Kind::Float, 2) => floats::<npyz::half::f16>(ty, raw, count, place, |v| Ok(v.to_f32())),
      (Kind::Float, 4) => floats::<f32>(ty, raw, count, place, Ok),
      (Kind::Float, 8) => floats::<f64>(ty, raw, count, place, |v| Ok(v as f32)),
      (Kind::Int, 1) => ints::<i8>(ty, raw, count, place, |v| Ok(v.into())),
      (Kind::Int, 2) => ints::<i16>(ty, raw, count, place, |v| Ok(v.into())),
      (Kind::Int, 4) => ints::<i32>(ty, raw, count, place, Ok),
      (Kind::Int, 8) => ints::<i64>(ty, raw, count, place, int),
      (Kind::Uint, 1) => ints::<u8>(ty, raw, count, place, |v| Ok(v.into())),
      (Kind::Uint, 2) => ints::<u16>(ty, raw, count, place, |v| Ok(v.into())),
      (Kind::Uint, 4) => ints::<u32>(ty, raw, count, place, |v| uint(v.into())),
      (Kind::Uint, 8) => ints::<u64>(ty, raw, count, place, uint),
      (Kind::Bool, _) => ints::<bool>(ty, raw, count, place, |v| Ok(v.into())),
      _ => Err(bad(format!("dtype '{}'", self.descr))),
    }
  }
}

/// For axes `rest` (a row's shape), the C-order position of each Fortran-order element.
fn fortran_positions(rest: &[u64]) -> Result<Vec<usize>> {
  let dims: Vec<usize> = rest
    .iter()
    .map(|&d| usize::try_from(d).map_err(|_| bad("row too large")))
    .collect::<Result<_>>()?;
  let n: usize = dims.iter().product();
  let mut strides = vec![1usize; dims.len()];
  for i in (0..dims.len().saturating_sub(1)).rev() {
    strides[i] = strides[i + 1] * dims[i + 1];
  }
  let mut out = crate::error::zeroed::<usize>("fortranOrder", n)?;
  for (j, slot) in out.iter_mut().enumerate() {
    // j's Fortran multi-index: the first axis varies fastest.
    let mut f = j;
    let mut c = 0;
    for (&d, &s) in dims.iter().zip(&strides) {
      c += (f % d) * s;
      f /= d;
    }
    *slot = c;
  }
  Ok(out)
}

fn reader<T: Deserialize>(ty: &TypeStr) -> Result<T::TypeReader> {
  T::reader(&DType::Plain(ty.clone())).map_err(|e| bad(e.to_string()))
}

fn read_all<T: Deserialize, O: Copy + Default>(
  ty: &TypeStr,
  raw: &[u8],
  count: usize,
  place: impl Fn(usize) -> usize,
  map: impl Fn(T) -> Result<O>,
) -> Result<Vec<O>> {
  let r = reader::<T>(ty)?;
  let mut out = crate::error::zeroed::<O>("values", count)?;
  if count == 0 {
    return Ok(out);
  }
  for (i, bytes) in raw.chunks_exact(raw.len() / count).enumerate() {
    let v = r.read_one(bytes).map_err(|e| bad(e.to_string()))?;
    out[place(i)] = map(v)?;
  }
  Ok(out)
}

fn floats<T: Deserialize>(
  ty: &TypeStr,
  raw: &[u8],
  count: usize,
  place: impl Fn(usize) -> usize,
  map: impl Fn(T) -> Result<f32>,
) -> Result<Values> {
  read_all(ty, raw, count, place, map).map(Values::F32)
}

fn ints<T: Deserialize>(
  ty: &TypeStr,
  raw: &[u8],
  count: usize,
  place: impl Fn(usize) -> usize,
  map: impl Fn(T) -> Result<i32>,
) -> Result<Values> {
  read_all(ty, raw, count, place, map).map(Values::I32)
}

/// A header error in words: what was wrong, not npyz's internals.
fn header_error(e: &io::Error, prefix: &[u8], whole: bool) -> CoreError {
  let msg = e.to_string();
  if e.kind() == io::ErrorKind::UnexpectedEof {
    if prefix.len() >= 6 && &prefix[..6] != b"\x93NUMPY" {
      return bad("bad magic (not a .npy file)");
    }
    return bad(if whole {
      format!("truncated header ({} bytes)", prefix.len())
    } else {
      format!("header longer than the {} bytes read", prefix.len())
    });
  }
  if msg.contains("magic") {
    bad("bad magic (not a .npy file)")
  } else if let Some(v) = msg.strip_prefix("unsupported version: ") {
    bad(format!("unknown format version {v}"))
  } else {
    bad(format!("corrupt header: {msg}"))
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  /// A version-1 `.npy` of `header` followed by `data` (NumPy's layout: magic, version, length).
  fn npy(header: &str, data: &[u8]) -> Vec<u8> {
    let mut h = header.to_owned();
    while !(10 + h.len() + 1).is_multiple_of(64) {
      h.push(' ');
    }
    h.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(h.len() as u16).to_le_bytes());
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(data);
    out
  }

  #[test]
  fn c_order_little_and_big_endian_floats() {
    let le: Vec<u8> = [1.5f32, -2.0, 3.25]
      .iter()
      .flat_map(|v| v.to_le_bytes())
      .collect();
    let be: Vec<u8> = [1.5f64, -2.0, 3.25]
      .iter()
      .flat_map(|v| v.to_be_bytes())
      .collect();
    for (h, data) in [
      (
        "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }",
        le,
      ),
      (
        "{'descr': '>f8', 'fortran_order': False, 'shape': (3,), }",
        be,
      ),
    ] {
      let bytes = npy(h, &data);
      let l = NpyLayout::parse(&bytes, true).unwrap();
      assert_eq!(l.data_offset % 64, 0);
      assert_eq!((l.rows, l.row_size, l.kind), (3, 1, Kind::Float));
      let off = l.data_offset as usize;
      assert_eq!(
        l.decode(&bytes[off..], 3).unwrap(),
        Values::F32(vec![1.5, -2.0, 3.25])
      );
    }
  }

  #[test]
  fn fortran_chunk_is_transposed_to_c_order() {
    // A [2, 2, 3] array v[r, i, j] = 100 r + 10 i + j, in Fortran order: r fastest, then i, then j.
    let mut data = Vec::new();
    for j in 0..3 {
      for i in 0..2 {
        for r in 0..2 {
          data.extend_from_slice(&((100 * r + 10 * i + j) as i16).to_le_bytes());
        }
      }
    }
    let bytes = npy(
      "{'descr': '<i2', 'fortran_order': True, 'shape': (2, 2, 3), }",
      &data,
    );
    let l = NpyLayout::parse(&bytes, true).unwrap();
    assert!(l.strided());
    let want: Vec<i32> = (0..2)
      .flat_map(|r| (0..2).flat_map(move |i| (0..3).map(move |j| 100 * r + 10 * i + j)))
      .collect();
    assert_eq!(
      l.decode(&bytes[l.data_offset as usize..], 2).unwrap(),
      Values::I32(want)
    );
  }

  #[test]
  fn broken_headers_are_typed() {
    let good = npy(
      "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }",
      &[0; 4],
    );
    let reason = |bytes: &[u8], whole: bool| match NpyLayout::parse(bytes, whole) {
      Err(CoreError::InvalidParam { reason, .. }) => reason,
      other => panic!("{other:?}"),
    };
    assert!(reason(b"PK\x03\x04 not numpy", true).contains("bad magic"));
    assert!(reason(&good[..40], true).contains("truncated header"));
    assert!(reason(&good[..40], false).contains("longer than"));
    let mut v9 = good.clone();
    v9[6] = 9;
    assert!(reason(&v9, true).contains("unknown format version (9, 0)"));
    let c8 = npy(
      "{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }",
      &[0; 8],
    );
    assert!(reason(&c8, true).contains("dtype '<c8'"));
    let huge = npy(
      "{'descr': '<f8', 'fortran_order': False, 'shape': (1073741824, 1073741824), }",
      &[],
    );
    assert!(reason(&huge, true).contains("too large"));
  }

  #[test]
  fn labels_out_of_i32_and_bad_bools_are_errors() {
    let big = npy(
      "{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }",
      &(1i64 << 40).to_le_bytes(),
    );
    let l = NpyLayout::parse(&big, true).unwrap();
    assert!(l.decode(&big[l.data_offset as usize..], 1).is_err());
    let b = npy(
      "{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }",
      &[1, 0, 1],
    );
    let l = NpyLayout::parse(&b, true).unwrap();
    assert_eq!(
      l.decode(&b[l.data_offset as usize..], 3).unwrap(),
      Values::I32(vec![1, 0, 1])
    );
    let bad_bool = npy(
      "{'descr': '|b1', 'fortran_order': False, 'shape': (1,), }",
      &[7],
    );
    let l = NpyLayout::parse(&bad_bool, true).unwrap();
    assert!(l.decode(&bad_bool[l.data_offset as usize..], 1).is_err());
    assert!(l.decode(&[], 1).is_err());
  }
}
