//! What both Raspberry Pi examples share: the model compiled into their binaries, and scoring
//! one file's bytes with it.
//!
//! The model is embedded so that a Pi needs exactly one file, the binary: no model folder to
//! copy, no path to get wrong in a systemd unit, and the card's sha256 is checked at start-up
//! all the same. `--model PATH` in both examples loads another model instead (e.g. the fp32
//! one, to compare ARM against x86 within 1e-4).

use cxr_core::Class;
use cxr_infer::{Batch, Catalog, EmbeddedModel, InferError, Model, ModelSource, Session};
use std::path::Path;

/// `models/NAME.card.json` and `models/NAME.onnx`, compiled in.
macro_rules! embed {
    ($name:literal) => {
        EmbeddedModel {
            card_file: concat!($name, ".card.json"),
            card_json: include_str!(concat!("../../../models/", $name, ".card.json")),
            onnx_file: concat!($name, ".onnx"),
            onnx: include_bytes!(concat!("../../../models/", $name, ".onnx")),
        }
    };
}

/// The model the Pi binaries carry: the int8 (QLinearConv) seed CNN, a quarter of the fp32
/// file's size; see firmware-examples/README.md for which model suits which Pi.
pub const EMBEDDED: EmbeddedModel = embed!("seed-cnn-int8");

/// Loads the embedded model, or the `.onnx` (card beside it) or `.card.json` at `path`.
/// One image per run, so the plan is optimised for a batch of one.
pub fn load(path: Option<&Path>) -> Result<Model, InferError> {
    let source = path.map_or(ModelSource::Embedded, |p| ModelSource::Path(p.to_owned()));
    Catalog { embedded: Ok(EMBEDDED), dirs: vec![] }.load(&source, Batch::Fixed(1))
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
