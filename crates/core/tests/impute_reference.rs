//! Noisy linear imputation (noise = 0) against SciPy `spsolve` fixtures written by
//! `scripts/impute_reference.py` (float64 sparse LU, cast to float32).
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use xai_eval_core::impute::{noisy_linear, NoiseKey};
use xai_eval_core::imputed::{impute_rows, Fill};

fn dir() -> PathBuf {
  PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/impute")
}

fn f32s(name: &str) -> Vec<f32> {
  let bytes = std::fs::read(dir().join(name)).unwrap();
  bytes
    .chunks_exact(4)
    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    .collect()
}

struct Case {
  name: String,
  shape: [usize; 3],
  x: Vec<f32>,
  mask: Vec<u8>,
  expected: Vec<f32>,
}

fn cases() -> Vec<Case> {
  let manifest = std::fs::read_to_string(dir().join("manifest.txt")).unwrap();
  manifest
    .lines()
    .filter(|l| !l.trim().is_empty())
    .map(|line| {
      let parts: Vec<&str> = line.split_whitespace().collect();
      let name = parts[0].to_string();
      let shape = [
        parts[1].parse().unwrap(),
        parts[2].parse().unwrap(),
        parts[3].parse().unwrap(),
      ];
      let x = f32s(&format!("{name}.x.f32"));
      let mask = std::fs::read(dir().join(format!("{name}.mask.u8"))).unwrap();
      let expected = f32s(&format!("{name}.expected.f32"));
      Case {
        name,
        shape,
        x,
        mask,
        expected,
      }
    })
    .collect()
}

#[test]
fn impute_matches_spsolve_fixtures() {
  let cases = cases();
  assert!(cases.len() >= 5);
  for case in &cases {
    let [c, h, w] = case.shape;
    let out = noisy_linear(&case.x, &case.mask, c, h, w, 0.0, 0, NoiseKey::new(0, 0)).unwrap();
    assert_eq!(out.len(), case.expected.len(), "{}", case.name);
    let worst = out
      .iter()
      .zip(&case.expected)
      .map(|(a, b)| (a - b).abs())
      .fold(0.0f32, f32::max);
    assert!(worst <= 1e-5, "{}: max |diff| {worst}", case.name);
    // Known pixels are copied bit-exactly.
    for (i, (&o, &x)) in out.iter().zip(&case.x).enumerate() {
      if case.mask[i % (h * w)] == 0 {
        assert_eq!(
          o.to_bits(),
          x.to_bits(),
          "{}: known pixel {i} changed",
          case.name
        );
      }
    }
  }
}

#[test]
fn impute_batch_of_fixtures_matches_too() {
  let cases: Vec<Case> = cases()
    .into_iter()
    .filter(|c| c.shape == [3, 16, 20])
    .collect();
  assert!(cases.len() >= 2);
  let x: Vec<f32> = cases.iter().flat_map(|c| c.x.iter().copied()).collect();
  let masks: Vec<u8> = cases.iter().flat_map(|c| c.mask.iter().copied()).collect();
  let expected: Vec<f32> = cases
    .iter()
    .flat_map(|c| c.expected.iter().copied())
    .collect();
  let mut out = vec![0.0f32; x.len()];
  let n = cases.len();
  let samples: Vec<u32> = (0..n as u32).collect();
  let keys: Vec<NoiseKey> = (0..n as u64).map(|i| NoiseKey::new(i, 0)).collect();
  let fill = Fill::NoisyLinear { noise: 0.0 };
  impute_rows(
    &x,
    [n, 3, 16, 20],
    &samples,
    &masks,
    fill,
    0,
    &keys,
    &mut out,
  )
  .unwrap();
  let worst = out
    .iter()
    .zip(&expected)
    .map(|(a, b)| (a - b).abs())
    .fold(0.0f32, f32::max);
  assert!(worst <= 1e-5, "max |diff| {worst}");
}
