//! Finding models: the one embedded in the binary, a path, or a shipped model by name.

use crate::model::{Batch, InferError, Model};
use cxr_core::ModelCard;
use std::path::{Path, PathBuf};

/// A model compiled into the binary, so `cxr predict x.png` works with nothing beside it.
#[derive(Debug, Clone, Copy)]
pub struct EmbeddedModel {
    pub card_file: &'static str,
    pub card_json: &'static str,
    pub onnx_file: &'static str,
    pub onnx: &'static [u8],
}

impl EmbeddedModel {
    /// Label used in messages for the embedded files, e.g. `<embedded>/seed-cnn.onnx`.
    pub fn label(file: &str) -> PathBuf {
        Path::new("<embedded>").join(file)
    }

    pub fn card(&self) -> Result<ModelCard, InferError> {
        Ok(ModelCard::from_json(&EmbeddedModel::label(self.card_file), self.card_json)?)
    }
}

/// What `--model` named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSource {
    /// The model built into the binary.
    Embedded,
    /// An `.onnx` file (card beside it) or a `.card.json` (model file named inside it).
    Path(PathBuf),
    /// A card `name` (or file stem) among the shipped models.
    Name(String),
}

impl ModelSource {
    /// `default`/`embedded` → the built-in model; anything that looks like a path or exists as
    /// a file → that path; otherwise a shipped model's name.
    pub fn parse(arg: &str) -> ModelSource {
        let path = Path::new(arg);
        if arg == "default" || arg == "embedded" {
            ModelSource::Embedded
        } else if arg.contains(std::path::MAIN_SEPARATOR)
            || arg.contains('/')
            || arg.ends_with(".onnx")
            || arg.ends_with(".json")
            || path.is_file()
        {
            ModelSource::Path(path.to_owned())
        } else {
            ModelSource::Name(arg.to_owned())
        }
    }
}

/// A model card found among the shipped models.
#[derive(Debug, Clone)]
pub struct ShippedModel {
    pub card: ModelCard,
    /// Card file, or `<embedded>/…` for the built-in one.
    pub card_path: PathBuf,
    /// Size of the ONNX file, `None` when it is missing.
    pub file_size: Option<u64>,
    /// This is (also) the model compiled into the binary.
    pub embedded: bool,
}

/// Where models are looked up: the embedded one and a list of folders of `*.card.json`.
#[derive(Debug, Clone)]
pub struct Catalog {
    /// The built-in model, or why there is none.
    pub embedded: Result<EmbeddedModel, String>,
    /// Folders searched for `NAME`, in order.
    pub dirs: Vec<PathBuf>,
}

impl Catalog {
    pub fn load(&self, source: &ModelSource, batch: Batch) -> Result<Model, InferError> {
        match source {
            ModelSource::Embedded => {
                let e =
                    self.embedded.as_ref().map_err(|reason| InferError::NoEmbeddedModel { reason: reason.clone() })?;
                Model::from_bytes(
                    e.card()?,
                    &EmbeddedModel::label(e.card_file),
                    &EmbeddedModel::label(e.onnx_file),
                    e.onnx,
                    batch,
                )
            }
            ModelSource::Path(path) => {
                let (card_path, model_path) = card_and_model_paths(path)?;
                Model::load_with_card(&model_path, &card_path, batch)
            }
            ModelSource::Name(name) => {
                if let Ok(e) = &self.embedded
                    && e.card()?.name == *name
                {
                    return self.load(&ModelSource::Embedded, batch);
                }
                let shipped = self.find(name)?;
                self.load(&ModelSource::Path(shipped.card_path), batch)
            }
        }
    }

    /// The card of `source` and where it was read from, without loading the model.
    pub fn card(&self, source: &ModelSource) -> Result<ShippedModel, InferError> {
        match source {
            ModelSource::Embedded => {
                let e =
                    self.embedded.as_ref().map_err(|reason| InferError::NoEmbeddedModel { reason: reason.clone() })?;
                Ok(ShippedModel {
                    card: e.card()?,
                    card_path: EmbeddedModel::label(e.card_file),
                    file_size: Some(e.onnx.len() as u64),
                    embedded: true,
                })
            }
            ModelSource::Path(path) => {
                let (card_path, model_path) = card_and_model_paths(path)?;
                Ok(self.mark_embedded(shipped_model(&card_path, ModelCard::load(&card_path)?, &model_path)))
            }
            ModelSource::Name(name) => match self.find(name) {
                Ok(found) => Ok(found),
                Err(err) => match &self.embedded {
                    Ok(e) if e.card()?.name == *name => self.card(&ModelSource::Embedded),
                    _ => Err(err),
                },
            },
        }
    }

    /// Every card in the model folders (first folder wins for a repeated name), then the
    /// embedded model if no folder has it.
    pub fn shipped(&self) -> Vec<ShippedModel> {
        let mut found: Vec<ShippedModel> = Vec::new();
        for dir in &self.dirs {
            for card_path in card_files(dir) {
                let Ok(card) = ModelCard::load(&card_path) else { continue };
                if found.iter().any(|m| m.card.name == card.name) {
                    continue;
                }
                let model_path = card_path.parent().unwrap_or(Path::new(".")).join(&card.file);
                found.push(self.mark_embedded(shipped_model(&card_path, card, &model_path)));
            }
        }
        if let Ok(embedded) = self.card(&ModelSource::Embedded)
            && !found.iter().any(|m| m.embedded)
        {
            found.push(embedded);
        }
        found
    }

    fn find(&self, name: &str) -> Result<ShippedModel, InferError> {
        for dir in &self.dirs {
            for card_path in card_files(dir) {
                let stem_matches =
                    card_path.file_name().and_then(|f| f.to_str()).is_some_and(|f| f == format!("{name}.card.json"));
                let Ok(card) = ModelCard::load(&card_path) else { continue };
                if card.name == name || stem_matches {
                    let model_path = card_path.parent().unwrap_or(Path::new(".")).join(&card.file);
                    return Ok(self.mark_embedded(shipped_model(&card_path, card, &model_path)));
                }
            }
        }
        Err(InferError::UnknownModel { name: name.to_owned(), searched: self.dirs.clone() })
    }

    fn mark_embedded(&self, mut model: ShippedModel) -> ShippedModel {
        model.embedded = self.embedded.as_ref().is_ok_and(|e| e.card().is_ok_and(|c| c.sha256 == model.card.sha256));
        model
    }
}

fn shipped_model(card_path: &Path, card: ModelCard, model_path: &Path) -> ShippedModel {
    let file_size = std::fs::metadata(model_path).ok().map(|m| m.len());
    ShippedModel { card, card_path: card_path.to_owned(), file_size, embedded: false }
}

/// `*.card.json` in `dir`, sorted; nothing when the folder is absent.
fn card_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return vec![] };
    let mut cards: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().and_then(|f| f.to_str()).is_some_and(|f| f.ends_with(".card.json")))
        .collect();
    cards.sort();
    cards
}

/// For an `.onnx` path: its card beside it. For a card path: the model file it names.
fn card_and_model_paths(path: &Path) -> Result<(PathBuf, PathBuf), InferError> {
    let is_card = path.file_name().and_then(|f| f.to_str()).is_some_and(|f| f.ends_with(".json"));
    if !is_card {
        return Ok((ModelCard::path_for(path), path.to_owned()));
    }
    let card = ModelCard::load(path)?;
    let model_path = path.parent().unwrap_or(Path::new(".")).join(&card.file);
    if !model_path.is_file() {
        return Err(InferError::MissingModelFile { path: path.to_owned(), file: card.file, model: model_path });
    }
    Ok((path.to_owned(), model_path))
}
