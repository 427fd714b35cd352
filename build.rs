//! Embeds the default model into the `cxr` binary, so `cxr predict x.png` needs no file beside it.
//!
//! `models/DEFAULT` holds one line: the name of a card in `models/` (`NAME.card.json`, whose
//! `file` field names the ONNX). Without it, or with the files missing, the binary builds without
//! a model and says so when asked to use it. Cargo re-runs this when `models/DEFAULT` or the
//! embedded card or ONNX file changes (or, while there is none to embed, anything in `models/`),
//! not whenever another model is added: shipping a model does not rebuild the binary.
//! `CXR_DEFAULT_MODEL=path/to/NAME.card.json` embeds another model (e.g. an int8 one for a Pi).
//!
//! The Python package (`crates/cxr-py`) runs this same script, so its `default` is this model
//! too; `models/` is therefore looked for from the building package's folder upwards.

use std::path::{Path, PathBuf};

fn main() {
    let models = models_dir();
    println!("cargo:rerun-if-changed={}", models.join("DEFAULT").display());
    println!("cargo:rerun-if-env-changed=CXR_DEFAULT_MODEL");
    let out = Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("embedded_model.rs");
    let chosen = match std::env::var_os("CXR_DEFAULT_MODEL") {
        Some(card) => card_and_model(Path::new(&card)),
        None => find_default(&models),
    };
    let code = match chosen {
        Ok((card, onnx)) => {
            println!("cargo:rerun-if-changed={}", card.display());
            println!("cargo:rerun-if-changed={}", onnx.display());
            let abs = |p: &Path| std::fs::canonicalize(p).expect("checked to exist").display().to_string();
            let name = |p: &Path| p.file_name().unwrap().to_string_lossy().into_owned();
            format!(
                "Ok(cxr_infer::EmbeddedModel {{ card_file: {:?}, card_json: include_str!({:?}), onnx_file: {:?}, onnx: include_bytes!({:?}) }})",
                name(&card),
                abs(&card),
                name(&onnx),
                abs(&onnx)
            )
        }
        Err(reason) => {
            println!("cargo:rerun-if-changed={}", models.display());
            println!("cargo:warning=building without an embedded model: {reason}");
            format!("Err({reason:?})")
        }
    };
    let code = format!(
        "/// The model compiled into this binary (chosen by `models/DEFAULT` at build time), or why there is none.\n\
         pub const EMBEDDED_MODEL: Result<cxr_infer::EmbeddedModel, &str> = {code};\n"
    );
    std::fs::write(&out, code).expect("OUT_DIR is writable");
}

/// `models/` beside the package being built, or in the nearest folder above it that has a
/// `models/DEFAULT` (the workspace root, for the Python package).
fn models_dir() -> PathBuf {
    let package = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    package
        .ancestors()
        .map(|dir| dir.join("models"))
        .find(|m| m.join("DEFAULT").is_file())
        .unwrap_or_else(|| package.join("models"))
}

/// Paths of the default card and its ONNX file, or why they cannot be embedded.
fn find_default(models: &Path) -> Result<(std::path::PathBuf, std::path::PathBuf), String> {
    let default = models.join("DEFAULT");
    let name = std::fs::read_to_string(&default).map_err(|e| format!("{}: {e}", default.display()))?;
    let name = name.trim();
    let card = models.join(format!("{name}.card.json"));
    if !card.is_file() {
        return Err(format!("{} names `{name}`, but {} is missing", default.display(), card.display()));
    }
    card_and_model(&card)
}

/// A card and the ONNX file its `file` field names, beside it.
fn card_and_model(card: &Path) -> Result<(std::path::PathBuf, std::path::PathBuf), String> {
    let text = std::fs::read_to_string(card).map_err(|e| format!("{}: {e}", card.display()))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: not JSON: {e}", card.display()))?;
    let file = json["file"].as_str().ok_or_else(|| format!("{}: no `file` field", card.display()))?;
    let onnx = card.parent().unwrap_or(Path::new(".")).join(file);
    if !onnx.is_file() {
        return Err(format!("{} names {file}, which is missing", card.display()));
    }
    Ok((card.to_owned(), onnx))
}
