//! End-to-end tests of the map / reduce protocol: hand-worked curves, shard invariance, and
//! typed errors. A "model" here is a closure from (sample, mask) to the sample's value.

// A single shard is a list of one range, on purpose.
#![allow(clippy::unwrap_used, clippy::single_range_in_vec_init)]

use std::ops::Range;

use super::*;
use crate::rng::Rng;

/// One shard's map phase: values and new attribution per (sample, step), row per sample.
struct ShardRun {
  stats: SoundnessStats,
  values: Vec<f64>,
  new: Vec<f64>,
}

fn map_shard(
  snd: Soundness,
  indicator: Indicator,
  maps: &[f32],
  pixels: usize,
  range: Range<usize>,
  model: &dyn Fn(usize, usize, &[u8]) -> f64,
) -> ShardRun {
  let (n, s) = (range.len(), snd.steps());
  let shard_maps = &maps[range.start * pixels..range.end * pixels];
  let mut run = ShardRun {
    stats: SoundnessStats::new(snd.mode, indicator),
    values: vec![0.0; n * s],
    new: vec![0.0; n * s],
  };
  let (mut masks, mut new) = (vec![0u8; n * pixels], vec![0.0; n]);
  for k in 0..s {
    snd
      .masks(
        shard_maps,
        pixels,
        range.start as u64,
        k,
        &mut masks,
        &mut new,
      )
      .unwrap();
    let values: Vec<f64> = (0..n)
      .map(|i| model(range.start + i, k, &masks[i * pixels..(i + 1) * pixels]))
      .collect();
    run.stats.add_values(k, &values).unwrap();
    for i in 0..n {
      run.values[i * s + k] = values[i];
      run.new[i * s + k] = new[i];
    }
  }
  run
}

/// The two-phase protocol over `shards`; returns the merged curve and every sample's ratios.
fn run_protocol(
  snd: Soundness,
  indicator: Indicator,
  maps: &[f32],
  pixels: usize,
  shards: &[Range<usize>],
  model: &dyn Fn(usize, usize, &[u8]) -> f64,
) -> (SoundnessCurve, Vec<f64>) {
  let mut runs: Vec<ShardRun> = shards
    .iter()
    .map(|r| map_shard(snd, indicator, maps, pixels, r.clone(), model))
    .collect();
  // Reduce the counts (through bytes, as across machines), decide, broadcast.
  let mut counts = SoundnessStats::new(snd.mode, indicator);
  for r in &runs {
    counts
      .merge(&SoundnessStats::from_bytes(&r.stats.to_bytes()).unwrap())
      .unwrap();
  }
  let flags: Vec<Flag> = counts.decisions().unwrap().iter().map(|d| d.flag).collect();
  let mut ratios = Vec::new();
  for r in &mut runs {
    ratios.extend(r.stats.apply(&flags, &r.values, &r.new).unwrap().ratios);
  }
  // Merge in reverse order, to exercise commutativity.
  let mut all = SoundnessStats::new(snd.mode, indicator);
  for r in runs.iter().rev() {
    all.merge(&r.stats).unwrap();
  }
  (all.curve().unwrap(), ratios)
}

fn bits(v: &[f64]) -> Vec<u64> {
  v.iter().map(|x| x.to_bits()).collect()
}

fn assert_same(a: &SoundnessCurve, b: &SoundnessCurve) {
  assert_eq!(bits(&a.indicator), bits(&b.indicator));
  assert_eq!(bits(&a.soundness), bits(&b.soundness));
  assert_eq!(
    (&a.flags, &a.flagged, &a.undefined, a.samples),
    (&b.flags, &b.flagged, &b.undefined, b.samples)
  );
}

/// Correct iff pixel 0 is kept.
fn pixel0(_: usize, _: usize, mask: &[u8]) -> f64 {
  f64::from(u8::from(mask[0] == 0))
}

#[test]
fn paper_curve_by_hand() {
  // Two 2×2 maps with the same values: sample 0 attributes most to pixel 0, sample 1 least.
  // Masked pixels: 3 (steps 0–24), 2 (25–49), 1 (50–74), 0 (75–98). Accuracy 1/2, then 1.
  let maps = [4.0, 3.0, 2.0, 1.0, 1.0, 2.0, 3.0, 4.0];
  let snd = Soundness {
    mode: Mode::Paper,
    seed: 1,
  };
  let (c, _) = run_protocol(snd, Indicator::Accuracy, &maps, 4, &[0..2], &pixel0);
  for k in 0..99 {
    let (acc, flag, q) = match k {
      0 => (0.5, Flag::Clear, 1.0),           // gain 0.5 from 0
      1..=24 => (0.5, Flag::All, 1.0),        // flagged, but nothing new
      25..=49 => (0.5, Flag::All, 4.0 / 7.0), // F = 3 of 7
      50..=74 => (0.5, Flag::All, 4.0 / 9.0), // F = 5 of 9
      75 => (1.0, Flag::Clear, 0.5),          // sample 1 turns correct
      _ => (1.0, Flag::All, 0.5),
    };
    assert_eq!(
      (c.indicator[k], c.flags[k], c.soundness[k]),
      (acc, flag, q),
      "step {k}"
    );
    assert_eq!(c.flagged[k], if flag == Flag::All { 2 } else { 0 });
  }
  assert_eq!(
    (c.ratios[0], c.ratios[98], c.samples, c.undefined[0]),
    (0.99, 0.01, 2, 0)
  );
  assert_eq!(c.points()[80], (1.0, 0.5));
}

#[test]
fn soco_curve_by_hand() {
  // uint8 maps; masked: 3 (steps 0–23), 2 (24–48), 1 (49–73), 0 (74–95).
  let maps = [40.0, 30.0, 20.0, 10.0, 10.0, 20.0, 30.0, 40.0];
  let snd = Soundness {
    mode: Mode::Soco,
    seed: 1,
  };
  let (c, _) = run_protocol(snd, Indicator::Accuracy, &maps, 4, &[0..2], &pixel0);
  let a = |v: f32| f64::from(v / 255.0);
  let (r1, r2, r3, r4) = (
    a(40.0),
    a(40.0) + a(30.0),
    a(40.0) + a(30.0) + a(20.0),
    a(40.0) + a(30.0) + a(20.0) + a(10.0),
  );
  let (f1, f2) = (a(30.0), a(30.0) + a(20.0));
  let q = |r: f64, f: f64| (r - f) / (r + 1e-6);
  for k in 0..96 {
    let (acc, flag, want) = match k {
      0 => (1.0 / (2.0 + 1e-6), Flag::Clear, q(r1, 0.0)),
      1..=23 => (1.0 / (2.0 + 1e-6), Flag::All, q(r1, 0.0)),
      24 => (1.0 / (2.0 + 1e-6), Flag::All, q(r2, 0.0)), // lag: step 24's flag shows at 25
      25..=48 => (1.0 / (2.0 + 1e-6), Flag::All, q(r2, f1)),
      49 => (1.0 / (2.0 + 1e-6), Flag::All, q(r3, f1)),
      50..=73 => (1.0 / (2.0 + 1e-6), Flag::All, q(r3, f2)),
      74 => (2.0 / (2.0 + 1e-6), Flag::Clear, q(r4, f2)),
      _ => (2.0 / (2.0 + 1e-6), Flag::All, q(r4, f2)),
    };
    assert_eq!((c.indicator[k], c.flags[k]), (acc, flag), "step {k}");
    assert!(
      (c.soundness[k] - want).abs() < 1e-15,
      "step {k}: {} vs {want}",
      c.soundness[k]
    );
  }
  assert_eq!((c.ratios[0], c.ratios[95]), (0.98, 0.03));
}

#[test]
fn score_indicator_flags_each_sample_by_its_own_gain() {
  // 3×1 maps. Sample 0's score grows at every step where a pixel arrives; sample 1's never.
  let maps = [3.0, 2.0, 1.0, 3.0, 2.0, 1.0];
  let kept = |m: &[u8]| m.iter().filter(|&&x| x == 0).count() as f64;
  let model = move |s: usize, _: usize, m: &[u8]| if s == 0 { kept(m) } else { 5.0 };
  let snd = Soundness {
    mode: Mode::Paper,
    seed: 0,
  };
  let (c, ratios) = run_protocol(snd, Indicator::Score, &maps, 3, &[0..1, 1..2], &model);
  // Paper, D = 3: 2 masked for steps 0–32, 1 for 33–65, 0 for 66–98.
  // Sample 0: gains 1 at steps 0, 33, 66 (not flagged), 0 elsewhere (flagged, nothing new): q = 1.
  // Sample 1: gain 5 at step 0, then 0: pixels arriving at 33 and 66 are false.
  let s = 99;
  assert!(ratios[..s].iter().all(|&q| q == 1.0));
  assert_eq!(
    (ratios[s + 32], ratios[s + 33], ratios[s + 66]),
    (1.0, 0.6, 0.5)
  ); // 3/5, 3/6
  assert_eq!(
    (c.flags[0], c.flagged[0], c.flagged[33]),
    (Flag::OwnGain, 0, 1)
  );
  assert_eq!((c.indicator[0], c.indicator[98]), (3.0, 4.0)); // mean of (1, 5) and (3, 5)
  assert_eq!(c.soundness[33], (1.0 + 0.6) / 2.0);
}

/// Random maps (with ties), a random "model", random shards: the curve is the same bits.
#[test]
fn shard_and_merge_invariance_random() {
  let (mut flagged, mut unsound) = (0, 0);
  for trial in 0..24u64 {
    let mut rng = Rng::new(99, trial);
    let mode = if trial % 2 == 0 {
      Mode::Paper
    } else {
      Mode::Soco
    };
    let indicator = if trial % 4 < 2 {
      Indicator::Accuracy
    } else {
      Indicator::Score
    };
    let n = 1 + (rng.next_u64() % 30) as usize;
    let pixels = 1 + (rng.next_u64() % 12) as usize;
    let levels = 1 + rng.next_u64() % 6; // few levels: many ties
    let maps: Vec<f32> = (0..n * pixels)
      .map(|_| {
        let l = (rng.next_u64() % levels) as f32;
        if mode == Mode::Soco {
          l * 40.0
        } else {
          l / 7.0
        }
      })
      .collect();
    let secret: Vec<usize> = (0..n)
      .map(|_| (rng.next_u64() % pixels as u64) as usize)
      .collect();
    let noise: Vec<f64> = (0..n * 99).map(|_| rng.normal()).collect();
    let model = move |s: usize, k: usize, m: &[u8]| -> f64 {
      let seen = m[secret[s]] == 0;
      match indicator {
        Indicator::Accuracy => f64::from(u8::from(seen || noise[s * 99 + k] > 1.0)),
        Indicator::Score => f64::from(u8::from(seen)) * 3.0 + noise[s * 99 + k] * 0.01,
      }
    };
    let snd = Soundness { mode, seed: trial };
    let (single, ratios) = run_protocol(snd, indicator, &maps, pixels, &[0..n], &model);
    let a = (rng.next_u64() % (n as u64 + 1)) as usize;
    let b = a + (rng.next_u64() % ((n - a) as u64 + 1)) as usize;
    let (sharded, ratios3) =
      run_protocol(snd, indicator, &maps, pixels, &[0..a, a..b, b..n], &model);
    assert_same(&single, &sharded);
    assert_eq!(bits(&ratios), bits(&ratios3), "trial {trial}");
    flagged += single.flagged.iter().sum::<u64>();
    unsound += single.soundness.iter().filter(|&&q| q < 0.99).count();
  }
  assert!(
    flagged > 0 && unsound > 0,
    "the random cases exercise the bookkeeping"
  );
}

#[test]
fn round_by_round_equals_two_phase() {
  let mut rng = Rng::new(7, 0);
  let (n, pixels) = (9, 6);
  let maps: Vec<f32> = (0..n * pixels)
    .map(|_| (rng.next_u64() % 4) as f32)
    .collect();
  let model = |s: usize, _: usize, m: &[u8]| f64::from(u8::from(m[s % 6] == 0));
  let snd = Soundness {
    mode: Mode::Paper,
    seed: 5,
  };
  let (two_phase, _) = run_protocol(
    snd,
    Indicator::Accuracy,
    &maps,
    pixels,
    &[0..4, 4..9],
    &model,
  );

  // One barrier per step: map step k on both shards, reduce its counts, decide, advance.
  let shards = [0..4usize, 4..9];
  let mut stats: Vec<SoundnessStats> = shards
    .iter()
    .map(|_| SoundnessStats::new(snd.mode, Indicator::Accuracy))
    .collect();
  let mut states: Vec<Vec<SampleState>> = shards
    .iter()
    .map(|r| vec![SampleState::default(); r.len()])
    .collect();
  let mut prev: Option<StepCounts> = None;
  for k in 0..snd.steps() {
    let mut step = StepCounts::default();
    let mut local = Vec::new();
    for (st, r) in stats.iter_mut().zip(&shards) {
      let (mut masks, mut new) = (vec![0u8; r.len() * pixels], vec![0.0; r.len()]);
      snd
        .masks(
          &maps[r.start * pixels..r.end * pixels],
          pixels,
          r.start as u64,
          k,
          &mut masks,
          &mut new,
        )
        .unwrap();
      let values: Vec<f64> = (0..r.len())
        .map(|i| model(r.start + i, k, &masks[i * pixels..][..pixels]))
        .collect();
      st.add_values(k, &values).unwrap();
      step.merge(st.counts(k));
      local.push((values, new));
    }
    let flag = decide(snd.mode, Indicator::Accuracy, prev.as_ref(), &step)
      .unwrap()
      .flag;
    for ((st, state), (values, new)) in stats.iter_mut().zip(&mut states).zip(&local) {
      st.apply_step(k, flag, state, values, new).unwrap();
    }
    prev = Some(step);
  }
  let mut all = stats[1].clone();
  all.merge(&stats[0]).unwrap();
  assert_same(&all.curve().unwrap(), &two_phase);
}

#[test]
fn masks_do_not_depend_on_batching_and_follow_the_schedule() {
  let mut rng = Rng::new(3, 3);
  let (n, pixels) = (7, 50);
  for mode in [Mode::Paper, Mode::Soco] {
    let maps: Vec<f32> = (0..n * pixels)
      .map(|_| (rng.next_u64() % 20) as f32)
      .collect();
    let snd = Soundness { mode, seed: 42 };
    let mut previous = vec![1u8; n * pixels];
    for k in 0..snd.steps() {
      let (mut all, mut new_all) = (vec![0u8; n * pixels], vec![0.0; n]);
      snd
        .masks(&maps, pixels, 0, k, &mut all, &mut new_all)
        .unwrap();
      let (mut tail, mut new_tail) = (vec![0u8; 3 * pixels], vec![0.0; 3]);
      snd
        .masks(&maps[4 * pixels..], pixels, 4, k, &mut tail, &mut new_tail)
        .unwrap();
      assert_eq!(
        (&all[4 * pixels..], &new_all[4..]),
        (&tail[..], &new_tail[..])
      );
      for i in 0..n {
        let m = &all[i * pixels..][..pixels];
        assert_eq!(m.iter().filter(|&&x| x == 1).count(), snd.masked(k, pixels));
        let map = &maps[i * pixels..][..pixels];
        let (max_masked, min_kept) =
          m.iter()
            .zip(map)
            .fold((f32::MIN, f32::MAX), |(a, b), (&x, &v)| {
              if x == 1 {
                (a.max(v), b)
              } else {
                (a, b.min(v))
              }
            });
        assert!(max_masked <= min_kept, "LeRF: the lowest are masked");
        if mode == Mode::Paper {
          // Nested sets: the pixels included at this step carry exactly `new`.
          let p = &previous[i * pixels..][..pixels];
          assert!(m.iter().zip(p).all(|(&x, &y)| x <= y));
          let fresh: f64 = m
            .iter()
            .zip(p)
            .zip(map)
            .filter(|((&x, &y), _)| x == 0 && y == 1)
            .map(|(_, &v)| f64::from(v))
            .sum();
          assert_eq!(fresh, new_all[i]);
        }
      }
      previous = all;
    }
  }
}

#[test]
fn typed_errors() {
  let snd = Soundness {
    mode: Mode::Paper,
    seed: 0,
  };
  let (mut m, mut new) = (vec![0u8; 4], vec![0.0; 1]);
  let err = |r: crate::Result<()>| {
    let e = r.unwrap_err();
    (e.code(), e.arg())
  };
  assert_eq!(
    err(snd.masks(&[1.0; 4], 0, 0, 0, &mut m, &mut new)),
    ("EMPTY_INPUT", "pixels")
  );
  assert_eq!(
    err(snd.masks(&[1.0; 3], 2, 0, 0, &mut m, &mut new)),
    ("SHAPE_MISMATCH", "maps")
  );
  assert_eq!(
    err(snd.masks(&[1.0, f32::NAN, 0.0, 0.0], 4, 0, 0, &mut m, &mut new)),
    ("NON_FINITE", "maps")
  );
  assert_eq!(
    err(snd.masks(&[1.0, -0.5, 0.0, 0.0], 4, 0, 0, &mut m, &mut new)),
    ("INVALID_OPTION", "maps")
  );
  assert_eq!(
    err(snd.masks(&[1.0; 4], 4, 0, 99, &mut m, &mut new)),
    ("INVALID_OPTION", "step")
  );
  assert_eq!(
    err(snd.masks(&[1.0; 4], 4, 0, 0, &mut [0u8; 3], &mut new)),
    ("SHAPE_MISMATCH", "masks")
  );
  assert_eq!(
    err(snd.masks(&[1.0; 4], 4, 0, 0, &mut m, &mut [])),
    ("SHAPE_MISMATCH", "new")
  );
  assert!(snd.masks(&[], 4, 0, 0, &mut [], &mut []).is_ok()); // no samples: nothing to do

  let mut st = SoundnessStats::new(Mode::Paper, Indicator::Accuracy);
  assert_eq!(err(st.add_values(0, &[0.5])), ("INVALID_OPTION", "values"));
  assert_eq!(
    err(st.add_values(0, &[f64::INFINITY])),
    ("NON_FINITE", "values")
  );
  assert_eq!(st.curve().unwrap_err().code(), "EMPTY_INPUT");
  st.add_values(2, &[1.0]).unwrap();
  assert_eq!(st.decisions().unwrap_err().code(), "SHAPE_MISMATCH"); // values after a gap
  let mut st = SoundnessStats::new(Mode::Paper, Indicator::Accuracy);
  for k in 0..99 {
    st.add_values(k, &[1.0, 0.0]).unwrap();
  }
  assert_eq!(st.curve().unwrap_err().arg(), "stats"); // counts, but no ratios yet
  let flags = vec![Flag::Clear; 99];
  assert_eq!(
    st.apply(&flags[1..], &[0.0; 99], &[0.0; 99])
      .unwrap_err()
      .arg(),
    "flags"
  );
  assert_eq!(
    st.apply(&flags, &[0.0; 99], &[0.0; 98]).unwrap_err().arg(),
    "new"
  );
  assert_eq!(
    st.apply(&[Flag::OwnGain; 99], &[0.0; 99], &[0.0; 99])
      .unwrap_err()
      .arg(),
    "flags"
  );
  assert_eq!(
    st.apply(&flags, &[0.0; 99], &[-1.0; 99]).unwrap_err().arg(),
    "new"
  );
  st.apply(&flags, &[0.0; 198], &[1.0; 198]).unwrap();
  // Step 1 gains nothing: the merged counts decide `All`, but `Clear` was applied.
  assert_eq!(st.curve().unwrap_err().arg(), "stats");
  let mut clash = SoundnessStats::new(Mode::Paper, Indicator::Accuracy);
  clash
    .apply(&[Flag::All; 99], &[0.0; 99], &[0.0; 99])
    .unwrap();
  let before = st.clone();
  assert_eq!(st.merge(&clash).unwrap_err().arg(), "other");
  assert_eq!(st, before, "a failed merge changes nothing");
  assert_eq!(
    st.merge(&SoundnessStats::new(Mode::Soco, Indicator::Accuracy))
      .unwrap_err()
      .arg(),
    "other"
  );

  let bytes = st.to_bytes();
  assert_eq!(SoundnessStats::from_bytes(&bytes).unwrap(), st);
  for bad in [
    &bytes[..bytes.len() - 1],
    &bytes[1..],
    &[bytes.as_slice(), &[0]].concat()[..],
  ] {
    assert_eq!(SoundnessStats::from_bytes(bad).unwrap_err().arg(), "bytes");
  }
  let c = CompletenessStats::new(Mode::Soco, Indicator::Score);
  assert_eq!(CompletenessStats::from_bytes(&c.to_bytes()).unwrap(), c);
  assert_eq!(
    CompletenessStats::from_bytes(&bytes).unwrap_err().arg(),
    "bytes"
  );
}

#[test]
fn completeness_shard_invariance_with_scores() {
  let mut rng = Rng::new(1, 1);
  let n = 23;
  let clean: Vec<f64> = (0..n).map(|_| rng.normal() * 5.0).collect();
  let steps: Vec<Vec<f64>> = (0..9)
    .map(|_| (0..n).map(|_| rng.normal() * 5.0).collect())
    .collect();
  let stats = |r: Range<usize>| {
    let mut s = CompletenessStats::new(Mode::Paper, Indicator::Score);
    s.add_clean(&clean[r.clone()]).unwrap();
    steps
      .iter()
      .enumerate()
      .for_each(|(k, v)| s.add_values(k, &v[r.clone()]).unwrap());
    s
  };
  let single = stats(0..n).curve().unwrap();
  let mut merged = stats(15..n);
  merged
    .merge(&CompletenessStats::from_bytes(&stats(0..4).to_bytes()).unwrap())
    .unwrap();
  merged.merge(&stats(4..15)).unwrap();
  let three = merged.curve().unwrap();
  assert_eq!(
    (bits(&single.difference), single.clean.to_bits()),
    (bits(&three.difference), three.clean.to_bits())
  );
}

#[test]
fn quantize_like_the_authors() {
  assert_eq!(
    quantize_u8(&[0.0, 1.0, 2.0, 5.0, 5.0, 5.0], 3).unwrap(),
    [0.0, 127.0, 255.0, 0.0, 0.0, 0.0]
  );
  assert_eq!(quantize_u8(&[-1.0, 3.0], 2).unwrap(), [0.0, 255.0]);
  assert_eq!(
    quantize_u8(&[1.0, f32::NAN], 2).unwrap_err().code(),
    "NON_FINITE"
  );
}
