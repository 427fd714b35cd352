//! `cxr-infer`: runs cxr's ONNX models with pure-Rust tract, so scoring needs neither Python
//! nor libtorch and builds for a Raspberry Pi as easily as for a server.
//!
//! A [`Model`] is a model card plus one optimised tract plan. The card is checked against the
//! ONNX file (sha256, input shape, output names) before anything runs, because a model fed the
//! wrong preprocessing or read through the wrong output gives confident nonsense, not an error.
//! The plan is shared; each worker thread opens its own [`Session`] (tract's per-run state), so
//! scoring scales across images rather than inside one.

mod cam_head;
pub mod catalog;
mod clip;
mod cpu;
pub mod depthwise;
pub mod explain;
pub mod int8_float;
pub mod model;
pub mod onnx_proto;
pub mod patch_input;
pub mod patch_opening;
pub mod pointwise;
pub mod profile;
#[cfg(test)]
mod test_data;
pub mod threads;
pub mod tiny_cnn;

pub use catalog::{Catalog, EmbeddedModel, ModelSource, ShippedModel};
pub use explain::{Heatmap, Method};
pub use model::{
    Batch, BatchOutput, GraphForm, InferError, Model, OwnKernels, PointwisePlans, Prediction, Session, SessionState,
};
pub use profile::NodeTime;
pub use threads::IntraOpThreads;
