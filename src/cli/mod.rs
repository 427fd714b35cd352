//! One module per subcommand; each exposes its clap arguments and a `run` returning the exit code.

pub mod bench;
pub mod data;
pub mod eval;
pub mod explain;
pub mod models;
pub mod predict;
pub mod score;
#[cfg(feature = "train")]
pub mod train;

/// Width of a table's first column: its longest entry or its header, so every later column lines
/// up however long a model's name is.
pub(crate) fn column_width<'a>(header: &str, entries: impl IntoIterator<Item = &'a str>) -> usize {
    entries.into_iter().map(|e| e.chars().count()).fold(header.chars().count(), usize::max)
}
