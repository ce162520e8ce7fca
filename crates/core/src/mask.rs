//! Perturbed rows for many (sample, step) pairs at once, written into one caller-owned buffer.
//!
//! A row is described by a [`RowSpec`]: the sample, how many ranked features are swapped, from
//! which end of the ranking, and which way (delete: input → baseline; insert: baseline → input).
//! A row extends the latest earlier row of the same sample and direction in the buffer (copy +
//! delta), so a whole curve costs one pass over its rows — also when the rows of two curves are
//! interleaved step by step, as SRG's MIF/LIF pairs are.

use crate::error::{bad_index, checked_len, expect_len, CoreError, Result};
use crate::layout::Layout;

/// Swap the *least* important features first (LIF) instead of the most important (MIF).
pub const FROM_END: u32 = 1;
/// Start from the baseline and insert input features (Insertion), instead of deleting them.
pub const INSERT: u32 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowSpec {
  pub sample: u32,
  /// Number of ranked features swapped, `0..=F`.
  pub count: u32,
  /// Bit set of [`FROM_END`] and [`INSERT`].
  pub flags: u32,
}

impl RowSpec {
  /// Parses `(sample, count, flags)` triples.
  pub fn parse(triples: &[u32]) -> Result<Vec<RowSpec>> {
    if !triples.len().is_multiple_of(3) {
      return Err(CoreError::shape(
        "rows",
        "a multiple of 3 (sample, count, flags)",
        triples.len(),
      ));
    }
    Ok(
      triples
        .chunks(3)
        .map(|t| RowSpec {
          sample: t[0],
          count: t[1],
          flags: t[2],
        })
        .collect(),
    )
  }
}

/// Inputs shared by every row: the data set, its baselines and its feature orders.
pub struct Source<'a> {
  pub x: &'a [f32],
  pub baselines: &'a [f32],
  pub order: &'a [u32],
  pub samples: usize,
  pub layout: Layout,
}

impl Source<'_> {
  fn validate(&self) -> Result<()> {
    let row = self.layout.row_len();
    let features = self.layout.features();
    expect_len("x", self.x.len(), checked_len("x", self.samples, row)?)?;
    expect_len(
      "baselines",
      self.baselines.len(),
      checked_len("baselines", self.samples, row)?,
    )?;
    expect_len(
      "order",
      self.order.len(),
      checked_len("order", self.samples, features)?,
    )
  }
}

/// Fills `out` (`rows.len() · C·H·W`) with the perturbed rows.
///
/// # Errors
/// `SHAPE_MISMATCH` for inconsistent lengths; `INVALID_OPTION` (arg `rows`) for a sample index or
/// count out of range or an unknown flag, (arg `order`) for a feature index out of range.
pub fn fill_rows(src: &Source, rows: &[RowSpec], out: &mut [f32]) -> Result<()> {
  src.validate()?;
  let row_len = src.layout.row_len();
  let features = src.layout.features();
  expect_len("out", out.len(), checked_len("out", rows.len(), row_len)?)?;
  for r in rows {
    if r.sample as usize >= src.samples
      || r.count as usize > features
      || r.flags & !(FROM_END | INSERT) != 0
    {
      return Err(CoreError::param(
        "rows",
        format!(
          "row {r:?} out of range ({} samples, {features} features)",
          src.samples
        ),
      ));
    }
  }
  if row_len == 0 {
    return Ok(());
  }

  // Latest row index of the current sample for each of the four flag combinations.
  let mut latest: [Option<usize>; 4] = [None; 4];
  for (i, r) in rows.iter().enumerate() {
    if i > 0 && rows[i - 1].sample != r.sample {
      latest = [None; 4];
    }
    let (done, current) = out.split_at_mut(i * row_len);
    let current = &mut current[..row_len];
    let s = r.sample as usize;
    let (start, fill) = if r.flags & INSERT != 0 {
      (
        &src.baselines[s * row_len..][..row_len],
        &src.x[s * row_len..][..row_len],
      )
    } else {
      (
        &src.x[s * row_len..][..row_len],
        &src.baselines[s * row_len..][..row_len],
      )
    };
    let order = &src.order[s * features..][..features];
    let ranked = |k: usize| -> usize {
      if r.flags & FROM_END != 0 {
        order[features - 1 - k] as usize
      } else {
        order[k] as usize
      }
    };
    // Extend the latest row of the same curve when it is an earlier point of it.
    let from = match latest[r.flags as usize] {
      Some(j) if rows[j].count <= r.count => {
        current.copy_from_slice(&done[j * row_len..][..row_len]);
        rows[j].count as usize
      }
      _ => {
        current.copy_from_slice(start);
        0
      }
    };
    for k in from..r.count as usize {
      let feature = ranked(k);
      if feature >= features {
        return Err(bad_index("order", feature, features));
      }
      src
        .layout
        .for_each_index(feature, |idx| current[idx] = fill[idx]);
    }
    latest[r.flags as usize] = Some(i);
  }
  Ok(())
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::layout::FeatureUnit;

  fn src<'a>(x: &'a [f32], b: &'a [f32], order: &'a [u32], layout: Layout) -> Source<'a> {
    Source {
      x,
      baselines: b,
      order,
      samples: x.len() / layout.row_len(),
      layout,
    }
  }

  fn rows(triples: &[u32]) -> Vec<RowSpec> {
    RowSpec::parse(triples).unwrap()
  }

  #[test]
  fn mif_lif_and_insertion_rows() {
    let l = Layout::new(1, 4, 1, FeatureUnit::Entry).unwrap();
    let (x, b, order) = ([1.0, 2.0, 3.0, 4.0], [0.0; 4], [2, 0, 3, 1]);
    let s = src(&x, &b, &order, l);
    let spec = rows(&[
      0, 0, 0, 0, 1, 0, 0, 2, 0, 0, 1, FROM_END, 0, 1, INSERT, 0, 4, 0,
    ]);
    let mut out = vec![9.0; spec.len() * 4];
    fill_rows(&s, &spec, &mut out).unwrap();
    assert_eq!(
      out,
      [
        1.0, 2.0, 3.0, 4.0, // clean
        1.0, 2.0, 0.0, 4.0, // most important (2) deleted
        0.0, 2.0, 0.0, 4.0, // then 0
        1.0, 0.0, 3.0, 4.0, // least important (1) deleted
        0.0, 0.0, 3.0, 0.0, // most important inserted into the baseline
        0.0, 0.0, 0.0, 0.0, // everything deleted
      ]
    );
  }

  #[test]
  fn pixel_unit_swaps_all_channels() {
    let l = Layout::new(2, 2, 1, FeatureUnit::Pixel).unwrap();
    let (x, b, order) = ([1.0, 2.0, 3.0, 4.0], [-1.0; 4], [1, 0]);
    let mut out = vec![0.0; 4];
    fill_rows(&src(&x, &b, &order, l), &rows(&[0, 1, 0]), &mut out).unwrap();
    assert_eq!(out, [1.0, -1.0, 3.0, -1.0]);
  }

  #[test]
  fn incremental_equals_from_scratch() {
    let l = Layout::new(1, 6, 1, FeatureUnit::Entry).unwrap();
    let x: Vec<f32> = (0..12).map(|v| v as f32).collect();
    let b = vec![-1.0; 12];
    let order = [5, 3, 1, 0, 2, 4, 0, 1, 2, 3, 4, 5];
    let s = src(&x, &b, &order, l);
    // Sample 1: MIF/LIF interleaved step by step; sample 0: LIF then an insertion curve.
    let all = rows(&[
      1, 1, 0, 1, 1, 1, 1, 3, 0, 1, 2, 1, 1, 6, 0, 0, 2, 1, 0, 4, 1, 0, 1, 2, 0, 3, 2,
    ]);
    let mut together = vec![0.0; all.len() * 6];
    fill_rows(&s, &all, &mut together).unwrap();
    for (i, r) in all.iter().enumerate() {
      let mut alone = vec![0.0; 6];
      fill_rows(&s, &[*r], &mut alone).unwrap();
      assert_eq!(&together[i * 6..(i + 1) * 6], &alone[..], "row {i}");
    }
  }

  #[test]
  fn out_of_range_rows_are_errors() {
    let l = Layout::new(1, 2, 1, FeatureUnit::Entry).unwrap();
    let s = src(&[0.0; 2], &[0.0; 2], &[0, 1], l);
    let mut out = vec![0.0; 2];
    for bad in [[1, 0, 0], [0, 3, 0], [0, 0, 4]] {
      assert_eq!(
        fill_rows(&s, &rows(&bad), &mut out).unwrap_err().code(),
        "INVALID_OPTION"
      );
    }
    assert_eq!(
      fill_rows(&s, &rows(&[0, 0, 0]), &mut [0.0; 3])
        .unwrap_err()
        .code(),
      "SHAPE_MISMATCH"
    );
    // An order from JS naming a feature that does not exist: an error, not a panic.
    let s = src(&[0.0; 2], &[0.0; 2], &[0, 7], l);
    let err = fill_rows(&s, &rows(&[0, 2, 0]), &mut out).unwrap_err();
    assert_eq!((err.code(), err.arg()), ("INVALID_OPTION", "order"));
  }
}
