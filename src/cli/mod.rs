//! One module per subcommand; each exposes its clap arguments and a `run` returning the exit code.
//! They print with `out!` and `outln!` (as `print!` and `println!`), never the std macros: see
//! [`stdout`] for why.

/// `print!` that survives a closed stdout ([`stdout`]).
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::stdout::write(format_args!($($arg)*))
    };
}

/// `println!` that survives a closed stdout ([`stdout`]).
macro_rules! outln {
    () => {
        $crate::cli::stdout::write(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::cli::stdout::write(format_args!("{}\n", format_args!($($arg)*)))
    };
}

pub mod bench;
pub mod data;
pub mod eval;
pub mod explain;
pub mod models;
pub mod predict;
pub mod score;
pub mod stdout;
#[cfg(feature = "train")]
pub mod train;

/// Width of a table's first column: its longest entry or its header, so every later column lines
/// up however long a model's name is.
pub(crate) fn column_width<'a>(header: &str, entries: impl IntoIterator<Item = &'a str>) -> usize {
    entries.into_iter().map(|e| e.chars().count()).fold(header.chars().count(), usize::max)
}
