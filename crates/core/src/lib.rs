//! xai-eval core: the hot loops behind the metrics, with no N-API, JS types or I/O.
//!
//! Data flow of a perturbation metric:
//! attributions → [`order`] (stable feature ranking) → [`mask`] (perturbed rows for many
//! (sample, step) pairs, built from [`baseline`] snapshots) → model (outside this crate) →
//! [`curve`] (scores per step, trapezoidal AUC) → per-sample scores, reduced in [`stats`].

// Tests may unwrap: a panic there is a failing test, not a crash reaching a user.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod agreement;
pub mod baseline;
pub mod correlation;
pub mod curve;
pub mod error;
pub mod explainers;
pub mod explanation;
pub mod faithfulness;
pub mod impute;
pub mod imputed;
pub mod infidelity;
pub mod layout;
pub mod localisation;
pub mod maps;
pub mod mask;
pub mod npy;
pub mod order;
pub mod randomization;
pub mod region;
pub mod rng;
pub mod slic;
pub mod soco;
pub mod stats;
pub mod sufficiency;

pub use error::{CoreError, Result};
