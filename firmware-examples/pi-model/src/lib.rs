//! What both Raspberry Pi examples share: the model compiled into their binaries, and scoring
//! one file's bytes with it.
//!
//! The model is embedded so that a Pi needs exactly one file, the binary: no model folder to
//! copy, no path to get wrong in a systemd unit, and the card's sha256 is checked at start-up
//! all the same. It is `cxr`'s own default: this package runs the workspace's `build.rs`, which
//! embeds the model `models/DEFAULT` names (or the card in `CXR_DEFAULT_MODEL` at build time),
//! so the Pi and the desktop give the same answer for the same film. `--model PATH` in both
//! examples loads another model instead (an int8 one, say).

use cxr_core::Class;
use cxr_infer::{Batch, Catalog, InferError, IntraOpThreads, Model, ModelSource, Session};
use std::path::Path;

include!(concat!(env!("OUT_DIR"), "/embedded_model.rs"));

/// The model the Pi binaries carry (`models/DEFAULT`, as in `cxr`), or why there is none.
pub const EMBEDDED: Result<cxr_infer::EmbeddedModel, &str> = EMBEDDED_MODEL;

/// Loads the embedded model, or the `.onnx` (card beside it) or `.card.json` at `path`.
/// One image per run, so the plan is optimised for a batch of one; each run splits its matrix
/// products over `threads_per_image` threads (1: none; 0: one per core; see
/// [`cxr_infer::threads`]), since a Pi scores one film at a time and has 4 cores.
pub fn load(path: Option<&Path>, threads_per_image: usize) -> Result<Model, InferError> {
    let source = path.map_or(ModelSource::Embedded, |p| ModelSource::Path(p.to_owned()));
    let mut model =
        Catalog { embedded: EMBEDDED.map_err(str::to_owned), dirs: vec![] }.load(&source, Batch::Fixed(1))?;
    if threads_per_image != 1 && !IntraOpThreads::SUPPORTED {
        eprintln!("note: this 32-bit ARM build scores each image on one thread (--threads-per-image is ignored)");
    }
    model.set_intra_op_threads(IntraOpThreads::new(threads_per_image));
    Ok(model)
}

/// One image's result, in the terms a user reads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score {
    pub p_covid: f32,
    /// The decided class name (`covid` at or above the card's threshold).
    pub class: &'static str,
}

/// Decodes `bytes` (PNG, JPEG or DICOM) and scores them. `path` is only used in messages, so
/// callers that hash or buffer the bytes themselves (stdin, the watch folder) score exactly
/// what they read, once.
pub fn score(session: &mut Session<'_>, path: &Path, bytes: &[u8]) -> Result<Score, InferError> {
    let image = cxr_core::image::decode_xray(path, bytes)?;
    let prediction = session.predict_image(&image)?;
    let classes = session.model().class_set();
    Ok(Score {
        p_covid: prediction.probabilities[classes.index(Class::Covid)],
        class: classes.names()[prediction.class_index],
    })
}

#[cfg(test)]
mod tests {
    /// A Pi and `cxr` must give the same answer for the same film: the same model, compiled in.
    #[test]
    fn embeds_the_model_cxr_embeds() {
        let default = include_str!("../../../models/DEFAULT").trim();
        let embedded = super::EMBEDDED.expect("models/DEFAULT names a shipped model");
        assert_eq!(embedded.card_file, format!("{default}.card.json"));
        assert_eq!(embedded.card().unwrap().name, default);
    }
}
