//! Which model a name means from Python: the one embedded at build time (`default`), a path, or
//! a shipped model's name, as the CLI's `--model` resolves them.

use cxr_infer::Catalog;
use std::path::PathBuf;

include!(concat!(env!("OUT_DIR"), "/embedded_model.rs"));

/// The embedded model, then `$CXR_MODELS` and `./models`. Unlike the CLI there is no folder
/// "beside the executable": that would be the Python interpreter's.
pub fn catalog() -> Catalog {
    let mut dirs: Vec<PathBuf> = std::env::var_os("CXR_MODELS").map(PathBuf::from).into_iter().collect();
    dirs.push(PathBuf::from("models"));
    Catalog { embedded: EMBEDDED_MODEL.map_err(str::to_owned), dirs }
}
