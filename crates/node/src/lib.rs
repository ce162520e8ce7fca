//! N-API glue over `xai-eval-core`, one module per core module. Each export converts JS values
//! (typed arrays to slices, numbers through the checks of `convert`), calls one core function and
//! maps its error; long calls are `AsyncTask`s that run on the libuv pool, so the JS thread never
//! waits on them. No metric logic lives here. Errors cross as `"CODE|arg|message"`, parsed by
//! `src/native.ts`.

#![deny(clippy::unwrap_used)]

pub mod agreement;
pub mod baseline;
mod convert;
pub mod correlation;
pub mod curve;
mod error;
pub mod explainers;
pub mod explanation;
pub mod faithfulness;
pub mod impute;
pub mod layout;
pub mod localisation;
pub mod mask;
pub mod npy;
pub mod order;
pub mod randomization;
pub mod region;
pub mod rng;
pub mod soco;
pub mod stats;
mod stop;

pub(crate) use error::{guarded, js_error};
pub(crate) use stop::stop_flag;
