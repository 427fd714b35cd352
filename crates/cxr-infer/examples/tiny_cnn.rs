//! Writes the tiny test network (fp32 and int8, with cards) into a folder, to try `cxr` or
//! benchmark the runtime before a trained model exists:
//! `cargo run -p cxr-infer --example tiny_cnn -- DIR [SIZE]`.

use cxr_infer::tiny_cnn::TinyCnn;
use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().unwrap_or_else(|| ".".into()));
    let size: u32 = args.next().map(|s| s.parse().expect("SIZE must be a number of pixels")).unwrap_or(64);
    std::fs::create_dir_all(&dir)?;
    for (name, int8) in [("tiny-cnn", false), ("tiny-cnn-int8", true)] {
        let path = TinyCnn { size, int8, ..TinyCnn::default() }.write(&dir, name)?;
        println!("wrote {} and its card", path.display());
    }
    Ok(())
}
