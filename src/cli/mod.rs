//! One module per subcommand; each exposes its clap arguments and a `run` returning the exit code.

pub mod data;
