//! `.npy` headers and chunk decoding (`npy::NpyLayout`): conversion only. The JS side reads the
//! bytes of each row range; decoding runs on the libuv pool.

use std::sync::Arc;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use xai_eval_core::npy::{self, Values};

use crate::{convert, guarded};

/// The parsed header of an `.npy` array, and the decoder of its row ranges.
#[napi]
pub struct NpyLayout {
  inner: Arc<npy::NpyLayout>,
}

#[napi]
impl NpyLayout {
  /// Parses the header at the start of `prefix`; `whole` says whether `prefix` is the entire
  /// file (running out of bytes is then a truncated header).
  #[napi(factory)]
  pub fn parse(prefix: Uint8Array, whole: bool) -> Result<Self> {
    let inner = guarded(|| npy::NpyLayout::parse(&prefix, whole))?;
    Ok(NpyLayout {
      inner: Arc::new(inner),
    })
  }

  /// The dtype as NumPy writes it, e.g. `<f4`.
  #[napi(getter)]
  pub fn descr(&self) -> String {
    self.inner.descr.clone()
  }

  /// NumPy's kind: `"f"`, `"i"`, `"u"` or `"b"`.
  #[napi(getter, ts_return_type = "'f' | 'i' | 'u' | 'b'")]
  pub fn kind(&self) -> String {
    self.inner.kind.code().to_string()
  }

  #[napi(getter)]
  pub fn item_size(&self) -> u32 {
    self.inner.item_size as u32
  }

  #[napi(getter)]
  pub fn fortran_order(&self) -> bool {
    self.inner.fortran_order
  }

  /// Whether a row's values are strided in the file (Fortran order, more than one value per row).
  #[napi(getter)]
  pub fn strided(&self) -> bool {
    self.inner.strided()
  }

  #[napi(getter)]
  pub fn shape(&self) -> Vec<f64> {
    self.inner.shape.iter().map(|&d| d as f64).collect()
  }

  /// Byte offset of the first value.
  #[napi(getter)]
  pub fn data_offset(&self) -> f64 {
    self.inner.data_offset as f64
  }

  #[napi(getter)]
  pub fn rows(&self) -> f64 {
    self.inner.rows as f64
  }

  #[napi(getter)]
  pub fn row_size(&self) -> f64 {
    self.inner.row_size as f64
  }

  /// Decodes `rows` rows of raw values (in file order: one run in C order, `rowSize` runs of
  /// `rows` values in Fortran order) to float32 (float arrays) or int32, C order.
  #[napi(ts_return_type = "Promise<Float32Array | Int32Array>")]
  pub fn decode(&self, raw: Uint8Array, rows: f64) -> Result<AsyncTask<DecodeTask>> {
    Ok(AsyncTask::new(DecodeTask {
      layout: Arc::clone(&self.inner),
      raw,
      rows: convert::count("rows", rows)?,
    }))
  }
}

pub struct DecodeTask {
  layout: Arc<npy::NpyLayout>,
  raw: Uint8Array,
  rows: usize,
}

#[napi]
impl Task for DecodeTask {
  type Output = Values;
  type JsValue = Either<Float32Array, Int32Array>;

  fn compute(&mut self) -> Result<Self::Output> {
    guarded(|| self.layout.decode(&self.raw, self.rows))
  }

  fn resolve(&mut self, _env: Env, values: Self::Output) -> Result<Self::JsValue> {
    Ok(match values {
      Values::F32(v) => Either::A(v.into()),
      Values::I32(v) => Either::B(v.into()),
    })
  }
}
