//! Region perturbation: pixels grouped into regions (square patches or superpixels), regions
//! ranked by their attribution, and perturbed rows that replace the first `count` regions of a
//! sample's order (every channel) by its baseline snapshot.
//!
//! A region map is a label per pixel, `0..regions`, either one map shared by all samples (a patch
//! grid) or one per sample (superpixels). Orders are `[n, R]` region ids, `R` the largest region
//! count; a sample with fewer regions pads its order with [`NO_REGION`].

use crate::error::{check_finite, expect_len, CoreError, Result};
use crate::layout::Layout;
use crate::rng::{Purpose, Rng};

/// Padding of an order after a sample's last region.
pub const NO_REGION: u32 = u32::MAX;

/// A grid of non-overlapping square patches over an `H × W` image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchGrid {
  /// Patch of every pixel, `[H · W]`, row-major patches.
  pub labels: Vec<u32>,
  /// Patch rows and columns.
  pub rows: usize,
  pub cols: usize,
  /// Zero-padding before the first row and column (Quantus's layout; 0 for the paper's).
  pub offset: (usize, usize),
}

impl PatchGrid {
  pub fn count(&self) -> usize {
    self.rows * self.cols
  }
}

/// The patches of size `ps` over `h × w`.
///
/// - `quantus_padding = false` (the paper's): blocks start at the top-left pixel; the last row and
///   column of patches are smaller where `ps` does not divide the side (no padding artefacts).
/// - `true` (Quantus 0.6): the grid lies on the image padded by `t = (ps − side % ps) % ps` per
///   side, `⌊t/2⌋` before and `⌈t/2⌉` after; a patch is the block's intersection with the image
///   (every block meets the image since `t < ps`).
///
/// # Errors
/// `INVALID_OPTION` (arg `patchSize`) for `ps = 0` or a patch larger than the image.
pub fn patch_grid(h: usize, w: usize, ps: usize, quantus_padding: bool) -> Result<PatchGrid> {
  if ps == 0 || ps > h || ps > w {
    return Err(CoreError::param(
      "patchSize",
      format!(
        "expected 1 ≤ patchSize ≤ min(H, W) = {}, got {ps}",
        h.min(w)
      ),
    ));
  }
  let pad = |side: usize| (ps - side % ps) % ps;
  let (top, left) = if quantus_padding {
    (pad(h) / 2, pad(w) / 2)
  } else {
    (0, 0)
  };
  let (rows, cols) = if quantus_padding {
    ((h + pad(h)) / ps, (w + pad(w)) / ps)
  } else {
    (h.div_ceil(ps), w.div_ceil(ps))
  };
  let mut labels = vec![0u32; h * w];
  for i in 0..h {
    for j in 0..w {
      labels[i * w + j] = (((i + top) / ps) * cols + (j + left) / ps) as u32;
    }
  }
  Ok(PatchGrid {
    labels,
    rows,
    cols,
    offset: (top, left),
  })
}

/// How a region's attribution is summarised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reduce {
  /// Sum over every attribution entry of the region (all channels): patches.
  Sum,
  /// Mean over every attribution entry of the region: superpixels (Quantus's IROF).
  Mean,
}

/// In which order regions are removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegionOrder {
  /// Most relevant first; ties to the lower region id.
  Morf,
  /// Least relevant first: the exact reverse of [`RegionOrder::Morf`].
  Lerf,
  /// A uniformly random permutation per sample from `Rng::keyed(seed, global sample, Order, 0)`.
  Random { seed: u64, first_sample: u64 },
}

/// Region maps of a data set: one shared map or one per sample.
#[derive(Debug, Clone, Copy)]
pub struct Regions<'a> {
  /// `[H·W]` (shared) or `[n, H·W]`.
  pub labels: &'a [u32],
  pub shared: bool,
}

impl Regions<'_> {
  fn of(&self, sample: usize, pixels: usize) -> &[u32] {
    if self.shared {
      self.labels
    } else {
      &self.labels[sample * pixels..][..pixels]
    }
  }

  fn validate(&self, samples: usize, pixels: usize) -> Result<()> {
    expect_len(
      "segments",
      self.labels.len(),
      if self.shared {
        pixels
      } else {
        samples * pixels
      },
    )
  }
}

/// Number of regions of every sample: `max label + 1`.
///
/// # Errors
/// `INVALID_OPTION` (arg `segments`) when a sample's labels are not exactly `0..K` (a label unused,
/// or one ≥ `max_regions`).
pub fn region_counts(
  regions: &Regions,
  samples: usize,
  pixels: usize,
  max_regions: usize,
) -> Result<Vec<u32>> {
  regions.validate(samples, pixels)?;
  let maps = if regions.shared { 1 } else { samples };
  let mut counts = Vec::with_capacity(samples);
  let mut seen = Vec::new();
  for s in 0..maps {
    let labels = regions.of(s, pixels);
    let k = labels.iter().copied().max().unwrap_or(0) as usize + 1;
    if k > max_regions {
      return Err(CoreError::param(
        "segments",
        format!(
          "sample {s} has a label {} (at most {max_regions} regions)",
          k - 1
        ),
      ));
    }
    seen.clear();
    seen.resize(k, false);
    labels.iter().for_each(|&l| seen[l as usize] = true);
    if let Some(missing) = seen.iter().position(|&b| !b) {
      return Err(CoreError::param(
        "segments",
        format!(
          "labels of sample {s} must be 0…{} without gaps; {missing} is unused",
          k - 1
        ),
      ));
    }
    counts.push(k as u32);
  }
  if regions.shared {
    counts.resize(samples, counts[0]);
  }
  Ok(counts)
}

/// Attribution of every region of one sample into `out` (length ≥ its region count).
fn region_scores(
  a: &[f32],
  layout: &Layout,
  labels: &[u32],
  reduce: Reduce,
  abs: bool,
  out: &mut [f64],
  sizes: &mut [u64],
) {
  out.iter_mut().for_each(|v| *v = 0.0);
  sizes.iter_mut().for_each(|v| *v = 0);
  for channel in a.chunks(layout.pixels) {
    for (&l, &v) in labels.iter().zip(channel) {
      let v = f64::from(v);
      out[l as usize] += if abs { v.abs() } else { v };
      sizes[l as usize] += 1;
    }
  }
  if reduce == Reduce::Mean {
    out
      .iter_mut()
      .zip(sizes.iter())
      .for_each(|(v, &n)| *v /= n.max(1) as f64);
  }
}

/// Region orders `[n, R]` (`R = max counts`, padded with [`NO_REGION`]) of attributions `a`
/// (`[n, C_a, H, W]`, see [`Layout`]).
///
/// # Errors
/// `SHAPE_MISMATCH` for inconsistent lengths; `NON_FINITE` for NaN/Inf in `a`.
#[allow(clippy::too_many_arguments)]
pub fn region_orders(
  a: &[f32],
  samples: usize,
  layout: &Layout,
  regions: &Regions,
  counts: &[u32],
  reduce: Reduce,
  abs: bool,
  order: RegionOrder,
) -> Result<Vec<u32>> {
  expect_len("a", a.len(), samples * layout.attr_len())?;
  expect_len("counts", counts.len(), samples)?;
  regions.validate(samples, layout.pixels)?;
  check_finite("a", a)?;
  let width = counts.iter().copied().max().unwrap_or(0) as usize;
  let mut out = vec![NO_REGION; samples * width];
  let mut scores = vec![0f64; width];
  let mut sizes = vec![0u64; width];
  let mut draw = Vec::new();
  for s in 0..samples {
    let k = counts[s] as usize;
    let row = &mut out[s * width..][..k];
    match order {
      RegionOrder::Random { seed, first_sample } => {
        Rng::keyed(seed, first_sample + s as u64, Purpose::Order, 0).subset(k, k, &mut draw);
        row.copy_from_slice(&draw);
      }
      RegionOrder::Morf | RegionOrder::Lerf => {
        let labels = regions.of(s, layout.pixels);
        region_scores(
          &a[s * layout.attr_len()..][..layout.attr_len()],
          layout,
          labels,
          reduce,
          abs,
          &mut scores[..k],
          &mut sizes[..k],
        );
        row.iter_mut().enumerate().for_each(|(i, o)| *o = i as u32);
        let key = |i: u32| scores[i as usize];
        row.sort_unstable_by(|&i, &j| key(j).total_cmp(&key(i)).then(i.cmp(&j)));
        if order == RegionOrder::Lerf {
          row.reverse();
        }
      }
    }
  }
  Ok(out)
}

/// Region counts and orders of a data set in one call: [`region_counts`] then [`region_orders`].
///
/// # Errors
/// As theirs.
#[allow(clippy::too_many_arguments)]
pub fn rank_regions(
  a: &[f32],
  samples: usize,
  layout: &Layout,
  regions: &Regions,
  max_regions: usize,
  reduce: Reduce,
  abs: bool,
  order: RegionOrder,
) -> Result<(Vec<u32>, Vec<u32>)> {
  let counts = region_counts(regions, samples, layout.pixels, max_regions)?;
  let orders = region_orders(a, samples, layout, regions, &counts, reduce, abs, order)?;
  Ok((orders, counts))
}

/// Everything a region row needs.
pub struct RegionSource<'a> {
  /// Inputs `[n, C, H, W]`.
  pub x: &'a [f32],
  /// Baseline snapshots, same shape.
  pub baselines: &'a [f32],
  pub regions: Regions<'a>,
  /// `[n, width]` region orders.
  pub orders: &'a [u32],
  pub width: usize,
  pub samples: usize,
  pub channels: usize,
  pub pixels: usize,
}

/// Pixels of every region of one map, grouped: `start[r]..start[r + 1]` index `pixels`.
struct Groups {
  start: Vec<usize>,
  pixels: Vec<u32>,
}

impl Groups {
  fn new(labels: &[u32], regions: usize) -> Self {
    let mut start = vec![0usize; regions + 1];
    labels.iter().for_each(|&l| start[l as usize + 1] += 1);
    for r in 0..regions {
      start[r + 1] += start[r];
    }
    let mut next = start.clone();
    let mut pixels = vec![0u32; labels.len()];
    for (p, &l) in labels.iter().enumerate() {
      pixels[next[l as usize]] = p as u32;
      next[l as usize] += 1;
    }
    Groups { start, pixels }
  }

  fn of(&self, region: u32) -> &[u32] {
    let r = region as usize;
    &self.pixels[self.start[r]..self.start[r + 1]]
  }
}

/// Fills `out` (`rows.len() / 2` rows of `C·H·W`) with the rows `(sample, count)`: the sample with
/// the first `count` regions of its order replaced by its baseline in every channel. A row extends
/// the previous one when that is an earlier point of the same sample's curve.
///
/// # Errors
/// `SHAPE_MISMATCH` for inconsistent lengths; `INVALID_OPTION` (arg `rows`) for a sample or count
/// out of range.
pub fn fill_region_rows(src: &RegionSource, rows: &[u32], out: &mut [f32]) -> Result<()> {
  let row_len = src.channels * src.pixels;
  if !rows.len().is_multiple_of(2) {
    return Err(CoreError::shape(
      "rows",
      "(sample, count) pairs",
      rows.len(),
    ));
  }
  let n_rows = rows.len() / 2;
  expect_len("x", src.x.len(), src.samples * row_len)?;
  expect_len("baselines", src.baselines.len(), src.samples * row_len)?;
  expect_len("orders", src.orders.len(), src.samples * src.width)?;
  expect_len("out", out.len(), n_rows * row_len)?;
  src.regions.validate(src.samples, src.pixels)?;
  for pair in rows.chunks(2) {
    if pair[0] as usize >= src.samples || pair[1] as usize > src.width {
      return Err(CoreError::param(
        "rows",
        format!(
          "row {pair:?} out of range ({} samples, {} regions)",
          src.samples, src.width
        ),
      ));
    }
  }
  if row_len == 0 {
    return Ok(());
  }
  let max_label = |labels: &[u32]| labels.iter().copied().max().unwrap_or(0) as usize + 1;
  let shared = src
    .regions
    .shared
    .then(|| Groups::new(src.regions.labels, max_label(src.regions.labels)));
  let mut own: Option<(usize, Groups)> = None;
  for i in 0..n_rows {
    let (s, count) = (rows[2 * i] as usize, rows[2 * i + 1] as usize);
    if shared.is_none() && own.as_ref().is_none_or(|(o, _)| *o != s) {
      let labels = src.regions.of(s, src.pixels);
      own = Some((s, Groups::new(labels, max_label(labels))));
    }
    let groups = shared
      .as_ref()
      .or(own.as_ref().map(|(_, g)| g))
      .ok_or_else(|| CoreError::param("segments", "no region map"))?;
    let (done, current) = out.split_at_mut(i * row_len);
    let current = &mut current[..row_len];
    let from = if i > 0 && rows[2 * i - 2] as usize == s && (rows[2 * i - 1] as usize) <= count {
      current.copy_from_slice(&done[(i - 1) * row_len..]);
      rows[2 * i - 1] as usize
    } else {
      current.copy_from_slice(&src.x[s * row_len..][..row_len]);
      0
    };
    let base = &src.baselines[s * row_len..][..row_len];
    for &region in &src.orders[s * src.width..][from..count] {
      if region == NO_REGION {
        continue;
      }
      for &p in groups.of(region) {
        for c in 0..src.channels {
          let idx = c * src.pixels + p as usize;
          current[idx] = base[idx];
        }
      }
    }
  }
  Ok(())
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::layout::FeatureUnit;

  #[test]
  fn paper_grid_has_smaller_edge_patches() {
    let g = patch_grid(5, 5, 2, false).unwrap();
    assert_eq!((g.rows, g.cols), (3, 3));
    assert_eq!(&g.labels[..5], &[0, 0, 1, 1, 2]);
    assert_eq!(&g.labels[20..], &[6, 6, 7, 7, 8]);
  }

  #[test]
  fn quantus_grid_is_offset_by_the_padding() {
    // 9 with ps 4: t = 3, padding (1, 2) → 12 = 3 patches per side, the first holds 3 pixels.
    let g = patch_grid(9, 9, 4, true).unwrap();
    assert_eq!((g.rows, g.cols, g.offset), (3, 3, (1, 1)));
    assert_eq!(&g.labels[..9], &[0, 0, 0, 1, 1, 1, 1, 2, 2]);
    // 28 with ps 8: padding (2, 2): 4 × 4 patches, 6 + 8 + 8 + 6 pixels per side.
    let g = patch_grid(28, 28, 8, true).unwrap();
    assert_eq!(g.count(), 16);
    assert_eq!(g.labels[5], 0);
    assert_eq!(g.labels[6], 1);
    assert!(patch_grid(4, 4, 5, false).is_err());
    assert!(patch_grid(4, 4, 0, true).is_err());
  }

  #[test]
  fn orders_rank_region_sums_and_means() {
    let l = Layout::new(1, 4, 1, FeatureUnit::Entry).unwrap();
    let labels = [0, 0, 1, 2];
    let r = Regions {
      labels: &labels,
      shared: true,
    };
    let counts = region_counts(&r, 1, 4, 10).unwrap();
    assert_eq!(counts, [3]);
    let a = [1.0, 1.0, 1.5, -1.0];
    let sum = region_orders(
      &a,
      1,
      &l,
      &r,
      &counts,
      Reduce::Sum,
      false,
      RegionOrder::Morf,
    );
    assert_eq!(sum.unwrap(), [0, 1, 2]);
    let mean = region_orders(
      &a,
      1,
      &l,
      &r,
      &counts,
      Reduce::Mean,
      false,
      RegionOrder::Morf,
    );
    assert_eq!(mean.unwrap(), [1, 0, 2]);
    let lerf = region_orders(
      &a,
      1,
      &l,
      &r,
      &counts,
      Reduce::Mean,
      true,
      RegionOrder::Lerf,
    );
    assert_eq!(lerf.unwrap(), [2, 0, 1]);
    let random = RegionOrder::Random {
      seed: 1,
      first_sample: 5,
    };
    let mut p = region_orders(&a, 1, &l, &r, &counts, Reduce::Sum, false, random).unwrap();
    p.sort_unstable();
    assert_eq!(p, [0, 1, 2]);
  }

  #[test]
  fn counts_refuse_gaps() {
    let r = Regions {
      labels: &[0, 2, 2, 0],
      shared: false,
    };
    assert_eq!(
      region_counts(&r, 1, 4, 10).unwrap_err().code(),
      "INVALID_OPTION"
    );
  }

  #[test]
  fn rows_remove_regions_in_every_channel_incrementally() {
    // 2 channels × 4 pixels, per-sample maps, sample 1 has one region fewer.
    let x: Vec<f32> = (1..=16).map(|v| v as f32).collect();
    let b = vec![0.0; 16];
    let labels = [0, 1, 1, 2, 0, 0, 1, 1];
    let orders = [2, 0, 1, 1, 0, NO_REGION];
    let src = RegionSource {
      x: &x,
      baselines: &b,
      regions: Regions {
        labels: &labels,
        shared: false,
      },
      orders: &orders,
      width: 3,
      samples: 2,
      channels: 2,
      pixels: 4,
    };
    let rows = [0, 0, 0, 1, 0, 2, 1, 3, 1, 1];
    let mut out = vec![9.0; 5 * 8];
    fill_region_rows(&src, &rows, &mut out).unwrap();
    assert_eq!(&out[..8], &x[..8]);
    assert_eq!(&out[8..16], &[1.0, 2.0, 3.0, 0.0, 5.0, 6.0, 7.0, 0.0]);
    assert_eq!(&out[16..24], &[0.0, 2.0, 3.0, 0.0, 0.0, 6.0, 7.0, 0.0]);
    assert_eq!(&out[24..32], &[0.0; 8]);
    assert_eq!(&out[32..40], &[9.0, 10.0, 0.0, 0.0, 13.0, 14.0, 0.0, 0.0]);
    for i in 0..5 {
      let mut alone = vec![0.0; 8];
      fill_region_rows(&src, &rows[2 * i..2 * i + 2], &mut alone).unwrap();
      assert_eq!(&out[i * 8..(i + 1) * 8], &alone[..], "row {i}");
    }
    assert_eq!(
      fill_region_rows(&src, &[2, 0], &mut [0.0; 8])
        .unwrap_err()
        .code(),
      "INVALID_OPTION"
    );
  }
}
