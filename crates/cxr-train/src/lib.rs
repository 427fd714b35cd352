//! `cxr-train`: trains cxr's networks with libtorch (through `tch`) and exports them to ONNX.
//!
//! Each architecture is described once ([`network::Network`], built in [`zoo`]); the same
//! description drives the libtorch module ([`tch_backend`]) and the ONNX writer ([`onnx_graph`]),
//! so what was trained and what ships cannot drift apart.

pub mod adversary;
pub mod augment;
pub mod balance;
pub mod data;
pub mod device;
pub mod export;
pub mod features;
pub mod lung_field;
pub mod network;
pub mod onnx_graph;
pub mod pretrained;
pub mod quantize;
pub mod run;
pub mod segmenter;
pub mod soft_targets;
pub mod tch_backend;
pub mod train;
pub mod zoo;

pub use augment::Augmentation;
pub use balance::Balance;
pub use data::{LabeledImage, TrainingData};
pub use export::export_checkpoint;
pub use network::{Network, NetworkError};
pub use train::{TrainConfig, TrainState, train};
