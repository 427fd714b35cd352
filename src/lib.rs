//! `cxr`: a COVID-19 chest X-ray classifier for the edge.
//!
//! This crate is the command-line tool and a thin facade over the library crates:
//! [`core`] (images, data, metrics — no ML engine) and [`infer`] (tract runtime).
//! Training lives in `cxr-train`, behind the `train` feature, because it links libtorch.

pub use cxr_core as core;
pub use cxr_infer as infer;
