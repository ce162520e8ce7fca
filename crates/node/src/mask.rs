//! Perturbed rows from baselines (`mask::fill_rows`), off the JS thread, into a buffer JS owns.

use napi::bindgen_prelude::*;
use napi_derive::napi;
use xai_eval_core::layout::Layout;
use xai_eval_core::mask::{self, RowSpec, Source};

use crate::layout::LayoutSpec;
use crate::{convert, guarded, js_error};

pub struct FillRowsTask {
  x: Float32Array,
  baselines: Float32Array,
  order: Uint32Array,
  rows: Uint32Array,
  out: Float32Array,
  samples: usize,
  layout: Layout,
}

#[napi]
impl Task for FillRowsTask {
  type Output = ();
  type JsValue = ();

  fn compute(&mut self) -> Result<Self::Output> {
    let src = Source {
      x: &self.x,
      baselines: &self.baselines,
      order: &self.order,
      samples: self.samples,
      layout: self.layout,
    };
    let rows = RowSpec::parse(&self.rows).map_err(js_error)?;
    // SAFETY: `out` is a batch buffer owned by `src/engine.ts`, which does not read or write it
    // until this task's promise settles; no other Rust code holds it.
    #[allow(unsafe_code)]
    let out = unsafe { self.out.as_mut() };
    guarded(|| mask::fill_rows(&src, &rows, out))
  }

  fn resolve(&mut self, _env: Env, _output: Self::Output) -> Result<Self::JsValue> {
    Ok(())
  }
}

/// Writes the perturbed rows described by `rows` (`(sample, count, flags)` triples) into `out`.
#[napi(ts_return_type = "Promise<void>")]
#[allow(clippy::too_many_arguments)]
pub fn fill_rows(
  x: Float32Array,
  baselines: Float32Array,
  order: Uint32Array,
  samples: f64,
  layout: LayoutSpec,
  rows: Uint32Array,
  out: Float32Array,
  signal: Option<AbortSignal>,
) -> Result<AsyncTask<FillRowsTask>> {
  let layout = layout.parse()?;
  let task = FillRowsTask {
    x,
    baselines,
    order,
    rows,
    out,
    samples: convert::count("samples", samples)?,
    layout,
  };
  Ok(AsyncTask::with_optional_signal(task, signal))
}
