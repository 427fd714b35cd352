//! One module per subcommand; each exposes its clap arguments and a `run` returning the exit code.

pub mod data;
pub mod bench;
pub mod eval;
pub mod explain;
pub mod models;
pub mod predict;
pub mod score;
#[cfg(feature = "train")]
pub mod train;
