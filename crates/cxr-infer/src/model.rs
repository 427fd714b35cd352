//! Loading an ONNX model with its card, checking that they agree, and running batches.

use crate::int8_float;
use crate::patch_input;
use crate::patch_opening::{PatchLayout, PatchOpening};
use cxr_core::card::CardError;
use cxr_core::{ClassSet, GreyImage, ImageError, ModelCard};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tract_onnx::pb;
use tract_onnx::prelude::*;

/// Why a model could not be loaded or run. Every variant names the file it is about.
#[derive(Debug, thiserror::Error)]
pub enum InferError {
    #[error(transparent)]
    Card(#[from] CardError),
    #[error("{path}: cannot read model: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error(
        "{path}: not an ONNX model ({reason}); pass an .onnx model with its .card.json beside it (as `cxr export` writes them in builds with the `train` feature)"
    )]
    NotOnnx { path: PathBuf, reason: String },
    #[error("{path}: input does not match its card {card}: {reason}")]
    InputMismatch { path: PathBuf, card: PathBuf, reason: String },
    #[error("{path}: outputs do not match its card {card}: {reason}")]
    OutputMismatch { path: PathBuf, card: PathBuf, reason: String },
    #[error("{path}: tract cannot prepare this model: {reason}")]
    Unsupported { path: PathBuf, reason: String },
    #[error("{path}: inference failed: {reason}")]
    Run { path: PathBuf, reason: String },
    #[error(
        "{path}: card says its model file is {file}, but {model} does not exist; keep the .onnx beside its .card.json"
    )]
    MissingModelFile { path: PathBuf, file: String, model: PathBuf },
    #[error("no model named `{name}`{}; list them with `cxr models`, or pass a path to an .onnx file", if .searched.is_empty() { String::new() } else { format!(" in {}", .searched.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")) })]
    UnknownModel { name: String, searched: Vec<PathBuf> },
    #[error("this cxr binary was built without an embedded model ({reason}); pass --model PATH|NAME")]
    NoEmbeddedModel { reason: String },
    #[error(transparent)]
    Image(#[from] ImageError),
}

/// How the batch dimension of the plan is fixed.
///
/// Measured on the seed CNN (see the crate's benchmarks): a plan optimised for a concrete
/// batch lets tract pick its kernels for that shape, so one-image latency is lower with
/// `Fixed(1)`; a symbolic batch serves any `n` from one plan. Scoring runs one image per
/// call on each worker, so `Fixed(1)` is the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Batch {
    Fixed(usize),
    Symbolic,
}

impl Default for Batch {
    fn default() -> Self {
        Batch::Fixed(1)
    }
}

/// A model card and the optimised tract plan it describes.
#[derive(Debug, Clone)]
pub struct Model {
    pub card: ModelCard,
    /// Where the card came from (`<embedded>/…` for the built-in model); used in messages.
    pub card_path: PathBuf,
    /// Where the ONNX came from; used in messages.
    pub model_path: PathBuf,
    /// Size of the ONNX file in bytes.
    pub file_size: u64,
    /// Class-activation-map head read from the ONNX initializers, when the card exports a feature map.
    pub(crate) cam_head: Option<crate::cam_head::CamHead>,
    /// Set when the graph was cut after a patch opening, which cxr runs itself on patches
    /// (see [`crate::patch_input`]); the plan then starts after it.
    opening: Option<PatchOpening>,
    /// Set when an int8 graph's integer ops run as float products (see [`crate::int8_float`]).
    int8_as_float: bool,
    /// Convolutions computed by cxr's kernels instead of tract's.
    own_kernels: OwnKernels,
    batch: Batch,
    /// Threads each run of the plan may use ([`Model::set_intra_op_threads`]).
    threads: crate::IntraOpThreads,
    pub(crate) plan: Arc<TypedRunnableModel>,
}

/// Which load-time rewrites a model's graph gets. Both leave the file and its probabilities as
/// they are (up to float rounding) and only change how tract computes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GraphForm {
    /// A patch-convolution opening run by cxr on space-to-depth input ([`crate::patch_input`]).
    pub patch_input: bool,
    /// int8 integer products as float products on the same quantized values ([`crate::int8_float`]).
    pub int8_as_float: bool,
    /// Depthwise convolutions computed by cxr's kernel instead of tract's ([`crate::depthwise`]).
    pub depthwise: bool,
    /// Which plans compute 1 × 1 convolutions over large planes by cxr's kernel ([`crate::pointwise`]).
    pub pointwise: PointwisePlans,
}

/// Which plans get cxr's 1 × 1 kernel ([`crate::pointwise`]). [`GraphForm::from_env`] picks
/// [`PointwisePlans::Batched`]: the kernel pays where tract's batched products restore their
/// layout in separate passes, not for one image (the measurements are in the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PointwisePlans {
    /// tract computes every 1 × 1 convolution.
    None,
    /// Plans for a fixed batch of more than one image.
    Batched,
    /// Every plan.
    All,
}

impl PointwisePlans {
    fn applies_to(self, batch: Batch) -> bool {
        match self {
            PointwisePlans::None => false,
            PointwisePlans::Batched => matches!(batch, Batch::Fixed(n) if n > 1),
            PointwisePlans::All => true,
        }
    }
}

/// How many convolutions of a loaded model cxr's own kernels compute instead of tract's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OwnKernels {
    /// [`crate::depthwise`].
    pub depthwise: usize,
    /// [`crate::pointwise`].
    pub pointwise: usize,
}

impl GraphForm {
    /// The graph exactly as the file writes it.
    pub const AS_WRITTEN: GraphForm =
        GraphForm { patch_input: false, int8_as_float: false, depthwise: false, pointwise: PointwisePlans::None };

    /// Every rewrite, the 1 × 1 kernel for batched plans only ([`PointwisePlans`]), unless
    /// `CXR_GRAPH_FORM=onnx` (none) or `CXR_INT8_KERNELS=integer` (tract's integer kernels; see
    /// [`int8_float::wanted`] for the default per CPU).
    pub fn from_env() -> GraphForm {
        let rewrites = patch_input::enabled();
        GraphForm {
            patch_input: rewrites,
            int8_as_float: rewrites && int8_float::wanted(),
            depthwise: rewrites,
            pointwise: if rewrites { PointwisePlans::Batched } else { PointwisePlans::None },
        }
    }
}

/// One image's result.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Prediction {
    /// Probability of each class, in the order of [`ClassSet::names`].
    pub probabilities: Vec<f32>,
    /// Index into [`ClassSet::names`] of the decided class.
    pub class_index: usize,
    /// Index of covid in `probabilities`, which depends on the class set.
    pub covid_index: usize,
}

impl Prediction {
    /// P(covid): what thresholds, AUCs and heatmaps are about, whatever the class set.
    pub fn p_covid(&self) -> f32 {
        self.probabilities[self.covid_index]
    }
}

impl Model {
    /// Loads `model_path` with the card beside it (`x.onnx` → `x.card.json`).
    pub fn load(model_path: &Path) -> Result<Model, InferError> {
        Model::load_with_card(model_path, &ModelCard::path_for(model_path), Batch::default())
    }

    /// Loads a model file and a card from explicit paths.
    pub fn load_with_card(model_path: &Path, card_path: &Path, batch: Batch) -> Result<Model, InferError> {
        // The model first: for a missing `x.onnx`, "x.card.json: cannot read" would blame the card.
        let bytes =
            std::fs::read(model_path).map_err(|source| InferError::Io { path: model_path.to_owned(), source })?;
        let card = ModelCard::load(card_path)?;
        Model::from_bytes(card, card_path, model_path, &bytes, batch)
    }

    /// Builds a model from an already-read card and ONNX bytes; the paths are for messages.
    ///
    /// Checks, in order: the card's sha256, that the bytes are ONNX, that the graph's input is
    /// named and shaped as the card's preprocessing says, that the card's outputs exist and the
    /// probabilities have one column per class (one for binary models). Then optimises once,
    /// after the load-time rewrites the environment asks for ([`GraphForm::from_env`]).
    pub fn from_bytes(
        card: ModelCard,
        card_path: &Path,
        model_path: &Path,
        bytes: &[u8],
        batch: Batch,
    ) -> Result<Model, InferError> {
        Model::from_bytes_with(card, card_path, model_path, bytes, batch, GraphForm::from_env())
    }

    /// As [`Model::from_bytes`], but runs the graph exactly as the file writes it (to measure or
    /// check the rewrites against).
    pub fn from_bytes_as_written(
        card: ModelCard,
        card_path: &Path,
        model_path: &Path,
        bytes: &[u8],
        batch: Batch,
    ) -> Result<Model, InferError> {
        Model::from_bytes_with(card, card_path, model_path, bytes, batch, GraphForm::AS_WRITTEN)
    }

    /// As [`Model::from_bytes`], with the rewrites named in `form`.
    pub fn from_bytes_with(
        card: ModelCard,
        card_path: &Path,
        model_path: &Path,
        bytes: &[u8],
        batch: Batch,
        form: GraphForm,
    ) -> Result<Model, InferError> {
        card.verify(card_path, model_path, bytes)?;
        let proto = decode_onnx(model_path, bytes)?;
        check_graph_against_card(&proto, &card, card_path, model_path)?;
        let cam_head = match &card.io.feature_map {
            Some(_) => crate::cam_head::CamHead::from_onnx(&proto, &card),
            None => None,
        };
        let float_int8 = if form.int8_as_float { int8_float::rewrite(&proto) } else { None };
        let int8_as_float = float_int8.is_some();
        let proto = float_int8.unwrap_or(proto);
        let rewritten = if form.patch_input { patch_input::rewrite(&proto, &card.io, &card.preprocess) } else { None };
        let dims = match &rewritten {
            Some((_, opening)) => opening.output_dims(),
            None => {
                let [_, c, h, w] = card.preprocess.shape(1);
                [c, h, w]
            }
        };
        let (plan, own_kernels) =
            build_plan(rewritten.as_ref().map_or(&proto, |(p, _)| p), &card, card_path, model_path, batch, dims, form)?;
        let opening = rewritten.map(|(_, opening)| opening);
        Ok(Model {
            card,
            card_path: card_path.to_owned(),
            model_path: model_path.to_owned(),
            file_size: bytes.len() as u64,
            cam_head,
            opening,
            int8_as_float,
            own_kernels,
            batch,
            threads: crate::IntraOpThreads::default(),
            plan,
        })
    }

    pub fn class_set(&self) -> ClassSet {
        self.card.class_set
    }

    /// First 12 hex digits of the model's sha256, enough to tell models apart in a table.
    pub fn short_sha(&self) -> &str {
        &self.card.sha256[..self.card.sha256.len().min(12)]
    }

    /// How many images one [`Session::run`] call takes, `None` for any number.
    pub fn batch_size(&self) -> Option<usize> {
        match self.batch {
            Batch::Fixed(n) => Some(n),
            Batch::Symbolic => None,
        }
    }

    /// Lets every later run of this model (in any of its sessions) split its matrix products
    /// over `threads` ([`crate::threads`]); the default is the calling thread alone.
    pub fn set_intra_op_threads(&mut self, threads: crate::IntraOpThreads) {
        self.threads = threads;
    }

    /// The threads one run uses.
    pub fn intra_op_threads(&self) -> &crate::IntraOpThreads {
        &self.threads
    }

    /// A per-thread runner. Sessions share the plan and keep their own scratch buffers.
    pub fn session(&self) -> Session<'_> {
        Session { model: self, state: None }
    }

    /// A session that goes on from `state`, which [`Session::into_state`] took from an earlier
    /// session of this model: it runs as that session would have, without building tract's run
    /// state and scratch space again. A state of another model is dropped for a fresh one.
    pub fn resume(&self, state: SessionState) -> Session<'_> {
        Session { model: self, state: state.0.filter(|state| Arc::ptr_eq(state.plan(), &self.plan)) }
    }

    /// Decides the class from probabilities: P(covid) at or above the card's threshold means
    /// covid; otherwise the most probable of the other classes.
    pub fn decide(&self, probabilities: &[f32]) -> usize {
        let covid = self.class_set().index(cxr_core::Class::Covid);
        if probabilities[covid] as f64 >= self.card.threshold {
            return covid;
        }
        (0..probabilities.len())
            .filter(|&i| i != covid)
            .max_by(|&a, &b| probabilities[a].total_cmp(&probabilities[b]))
            .unwrap_or(covid)
    }

    /// Preprocesses `img` exactly as the card says, appending the plan's input for one image to
    /// `out`: CHW values, or patches when the graph was rewritten ([`Model::patch_layout`]).
    pub fn preprocess_into(&self, img: &GreyImage, out: &mut Vec<f32>) {
        match self.patch_layout() {
            Some(layout) => layout.write(&self.card.preprocess.fit(img), out),
            None => self.card.preprocess.apply_into(img, out),
        }
    }

    /// Like [`Model::preprocess_into`] for an image [`cxr_core::Preprocess::fit`] already made
    /// (and perhaps edited since, as occlusion does): it is not fitted again.
    pub fn fitted_into(&self, fitted: &GreyImage, out: &mut Vec<f32>) {
        match self.patch_layout() {
            Some(layout) => layout.write(fitted, out),
            None => self.card.preprocess.normalize_into(fitted, out),
        }
    }

    /// Whether the int8 graph's integer products run as float products ([`crate::int8_float`]).
    pub fn int8_as_float(&self) -> bool {
        self.int8_as_float
    }

    /// How many convolutions cxr's kernels compute instead of tract's.
    pub fn own_kernels(&self) -> OwnKernels {
        self.own_kernels
    }

    /// The patch layout preprocessing writes, when the graph was rewritten.
    pub fn patch_layout(&self) -> Option<PatchLayout> {
        self.opening.as_ref().map(|o| o.layout)
    }

    /// The opening cxr runs before the plan, when the graph was rewritten.
    pub fn patch_opening(&self) -> Option<&PatchOpening> {
        self.opening.as_ref()
    }

    /// Values [`Model::preprocess_into`] writes per image.
    pub fn input_len(&self) -> usize {
        self.patch_layout().map_or_else(|| self.card.preprocess.len(), |l| l.len())
    }

    /// The shape of what [`Model::preprocess_into`] writes for `n` images.
    pub fn input_shape(&self, n: usize) -> [usize; 4] {
        self.patch_layout().map_or_else(|| self.card.preprocess.shape(n), |l| l.shape(n))
    }

    /// The tensor the plan takes for `n` preprocessed images: the images themselves, or what the
    /// patch opening makes of them.
    pub(crate) fn plan_input(&self, inputs: &[f32], n: usize) -> TractResult<Tensor> {
        let Some(opening) = &self.opening else { return Tensor::from_shape(&self.input_shape(n), inputs) };
        let [c, h, w] = opening.output_dims();
        // SAFETY: f32 has no invalid bit patterns, and `run` writes every value before tract reads it.
        let mut tensor = unsafe { Tensor::uninitialized::<f32>(&[n, c, h, w])? };
        let mut view = tensor.to_plain_array_view_mut::<f32>()?;
        opening.run(inputs, view.as_slice_mut().expect("a new tensor is contiguous"));
        Ok(tensor)
    }
}

/// What one batch returns.
#[derive(Debug, Clone)]
pub struct BatchOutput {
    pub predictions: Vec<Prediction>,
    /// `[n, C, h, w]` when the card exports a feature map.
    pub feature_map: Option<(Vec<usize>, Vec<f32>)>,
}

/// Runs batches on one thread. Create one per worker with [`Model::session`].
pub struct Session<'m> {
    model: &'m Model,
    state: Option<TypedSimpleState>,
}

/// A [`Session`]'s run state without its borrow of the model, for a caller that cannot keep a
/// session from one call to the next (the Python binding keeps one per thread in its model
/// object) and hands it back to [`Model::resume`]. Tract keeps part of a state's scratch space
/// with the thread that ran it, so resume a state on that thread. Empty until its session ran.
#[derive(Default)]
pub struct SessionState(Option<TypedSimpleState>);

impl<'m> Session<'m> {
    pub fn model(&self) -> &'m Model {
        self.model
    }

    /// The run state, to go on with it later through [`Model::resume`].
    pub fn into_state(self) -> SessionState {
        SessionState(self.state)
    }

    /// Runs `n` preprocessed images (concatenated CHW, as [`Model::preprocess_into`] writes).
    /// With a fixed-batch plan, `n` may be anything: the images are run in chunks, the last
    /// one padded.
    pub fn run(&mut self, inputs: &[f32], n: usize) -> Result<BatchOutput, InferError> {
        let per_image = self.model.input_len();
        assert_eq!(inputs.len(), n * per_image, "inputs must hold n preprocessed images");
        match self.model.batch {
            Batch::Symbolic => self.run_exact(inputs, n),
            Batch::Fixed(b) if b == n => self.run_exact(inputs, n),
            Batch::Fixed(b) => {
                let mut all = BatchOutput { predictions: Vec::with_capacity(n), feature_map: None };
                let mut padded = Vec::with_capacity(b * per_image);
                for chunk in inputs.chunks(b * per_image) {
                    let real = chunk.len() / per_image;
                    padded.clear();
                    padded.extend_from_slice(chunk);
                    padded.resize(b * per_image, 0.0);
                    let out = self.run_exact(&padded, b)?;
                    all.predictions.extend(out.predictions.into_iter().take(real));
                    if let Some((shape, values)) = out.feature_map {
                        let per = values.len() / b;
                        let entry = all.feature_map.get_or_insert_with(|| (shape.clone(), Vec::new()));
                        entry.1.extend_from_slice(&values[..real * per]);
                        entry.0[0] = entry.1.len() / per;
                    }
                }
                Ok(all)
            }
        }
    }

    /// Decodes nothing, preprocesses and runs one image.
    pub fn predict_image(&mut self, img: &GreyImage) -> Result<Prediction, InferError> {
        let mut input = Vec::with_capacity(self.model.input_len());
        self.model.preprocess_into(img, &mut input);
        Ok(self.run(&input, 1)?.predictions.remove(0))
    }

    /// Runs one image [`cxr_core::Preprocess::fit`] already made, without fitting it again.
    pub fn predict_fitted(&mut self, fitted: &GreyImage) -> Result<Prediction, InferError> {
        let mut input = Vec::with_capacity(self.model.input_len());
        self.model.fitted_into(fitted, &mut input);
        Ok(self.run(&input, 1)?.predictions.remove(0))
    }

    /// Reads, decodes, preprocesses and runs one file.
    pub fn predict_file(&mut self, path: &Path) -> Result<Prediction, InferError> {
        let img = cxr_core::load_image(path)?;
        self.predict_image(&img)
    }

    fn run_exact(&mut self, inputs: &[f32], n: usize) -> Result<BatchOutput, InferError> {
        let model = self.model;
        let run_err = |e: TractError| InferError::Run { path: model.model_path.clone(), reason: format!("{e:#}") };
        let state = match &mut self.state {
            Some(state) => state,
            empty => empty.insert(TypedSimpleState::new(&model.plan).map_err(run_err)?),
        };
        let tensor = model.plan_input(inputs, n).map_err(run_err)?;
        let outputs = model.threads.scope(|| state.run(tvec!(tensor.into()))).map_err(run_err)?;
        let probs = outputs[0].to_plain_array_view::<f32>().map_err(run_err)?;
        let k = probs.len() / n.max(1);
        let flat: Vec<f32> = probs.iter().copied().collect();
        let predictions = flat
            .chunks(k.max(1))
            .map(|row| {
                let probabilities = match model.class_set() {
                    ClassSet::Binary => vec![1.0 - row[0], row[0]],
                    ClassSet::ThreeClass => row.to_vec(),
                };
                let class_index = model.decide(&probabilities);
                Prediction { probabilities, class_index, covid_index: model.class_set().index(cxr_core::Class::Covid) }
            })
            .collect();
        let feature_map = match outputs.get(1) {
            Some(fm) => {
                let view = fm.to_plain_array_view::<f32>().map_err(run_err)?;
                Some((view.shape().to_vec(), view.iter().copied().collect()))
            }
            None => None,
        };
        Ok(BatchOutput { predictions, feature_map })
    }
}

fn decode_onnx(path: &Path, bytes: &[u8]) -> Result<pb::ModelProto, InferError> {
    use prost::Message;
    let not_onnx = |reason: String| InferError::NotOnnx { path: path.to_owned(), reason };
    let proto = pb::ModelProto::decode(bytes).map_err(|e| not_onnx(format!("protobuf decoding failed: {e}")))?;
    // Arbitrary bytes occasionally decode as an empty protobuf message; a model has a graph with nodes.
    match &proto.graph {
        Some(graph) if !graph.node.is_empty() && !graph.output.is_empty() => Ok(proto),
        _ => Err(not_onnx("no graph with nodes and outputs".into())),
    }
}

/// A declared dimension: a number, a symbol (e.g. `N`), or nothing.
fn declared_dims(value: &pb::ValueInfoProto) -> Option<Vec<Option<i64>>> {
    use pb::tensor_shape_proto::dimension::Value;
    let Some(pb::type_proto::Value::TensorType(t)) = value.r#type.as_ref()?.value.as_ref() else { return None };
    let shape = t.shape.as_ref()?;
    Some(
        shape
            .dim
            .iter()
            .map(|d| match d.value {
                Some(Value::DimValue(v)) if v > 0 => Some(v),
                _ => None,
            })
            .collect(),
    )
}

fn check_graph_against_card(
    proto: &pb::ModelProto,
    card: &ModelCard,
    card_path: &Path,
    model_path: &Path,
) -> Result<(), InferError> {
    let graph = proto.graph.as_ref().expect("decode_onnx checked the graph");
    let input_err =
        |reason: String| InferError::InputMismatch { path: model_path.to_owned(), card: card_path.to_owned(), reason };
    let initializers: std::collections::HashSet<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let inputs: Vec<&pb::ValueInfoProto> =
        graph.input.iter().filter(|i| !initializers.contains(i.name.as_str())).collect();
    let names: Vec<&str> = inputs.iter().map(|i| i.name.as_str()).collect();
    let [input] = inputs.as_slice() else {
        return Err(input_err(format!("expected exactly one input `{}`, the graph has {names:?}", card.io.input)));
    };
    if input.name != card.io.input {
        return Err(input_err(format!(
            "the card names the input `{}`, the graph's input is `{}`",
            card.io.input, input.name
        )));
    }
    let p = &card.preprocess;
    let expected = [None, Some(p.channels as i64), Some(p.size as i64), Some(p.size as i64)];
    if let Some(dims) = declared_dims(input) {
        let fits = dims.len() == 4 && dims.iter().zip(&expected).all(|(d, e)| d.is_none() || e.is_none() || d == e);
        if !fits {
            let show = |d: &[Option<i64>]| {
                d.iter().map(|v| v.map_or("?".into(), |v| v.to_string())).collect::<Vec<_>>().join("×")
            };
            return Err(input_err(format!(
                "the graph takes {}, the card's preprocessing makes N×{}×{}×{}",
                show(&dims),
                p.channels,
                p.size,
                p.size
            )));
        }
    }
    let output_err =
        |reason: String| InferError::OutputMismatch { path: model_path.to_owned(), card: card_path.to_owned(), reason };
    let produced: std::collections::HashSet<&str> = graph
        .node
        .iter()
        .flat_map(|n| n.output.iter().map(String::as_str))
        .chain(graph.output.iter().map(|o| o.name.as_str()))
        .collect();
    for wanted in std::iter::once(&card.io.probabilities).chain(card.io.feature_map.as_ref()) {
        if !produced.contains(wanted.as_str()) {
            let outputs: Vec<&str> = graph.output.iter().map(|o| o.name.as_str()).collect();
            return Err(output_err(format!(
                "the card reads output `{wanted}`, which the graph does not produce (its outputs: {outputs:?})"
            )));
        }
    }
    Ok(())
}

/// `input_dims`: the plan's input without the batch dim (the card's CHW, or a patch opening's output).
fn build_plan(
    proto: &pb::ModelProto,
    card: &ModelCard,
    card_path: &Path,
    model_path: &Path,
    batch: Batch,
    input_dims: [usize; 3],
    form: GraphForm,
) -> Result<(Arc<TypedRunnableModel>, OwnKernels), InferError> {
    let unsupported = |e: TractError| InferError::Unsupported { path: model_path.to_owned(), reason: format!("{e:#}") };
    let mut model = tract_onnx::onnx().model_for_proto_model(proto).map_err(unsupported)?;
    let n: TDim = match batch {
        Batch::Fixed(n) => n.into(),
        Batch::Symbolic => model.symbols.sym("N").into(),
    };
    let fact = f32::fact(&[n, input_dims[0].into(), input_dims[1].into(), input_dims[2].into()]);
    model.set_input_fact(0, fact.into()).map_err(unsupported)?;
    let mut outputs = vec![card.io.probabilities.as_str()];
    outputs.extend(card.io.feature_map.as_deref());
    model.select_outputs_by_name(&outputs).map_err(unsupported)?;
    let typed = model.into_typed().map_err(unsupported)?;
    let prob_fact = typed.output_fact(0).map_err(unsupported)?.clone();
    let columns = match card.class_set {
        ClassSet::Binary => 1,
        ClassSet::ThreeClass => 3,
    };
    let shape: Vec<String> = prob_fact.shape.iter().map(|d| d.to_string()).collect();
    let ok =
        prob_fact.shape.len() == 2 && prob_fact.shape[1] == columns.into() && prob_fact.datum_type == f32::datum_type();
    if !ok {
        return Err(InferError::OutputMismatch {
            path: model_path.to_owned(),
            card: card_path.to_owned(),
            reason: format!(
                "`{}` is {:?} [{}], a {:?} card needs f32 [N, {columns}]",
                card.io.probabilities,
                prob_fact.datum_type,
                shape.join(", "),
                card.class_set
            ),
        });
    }
    // `into_optimized` is declutter then optimise; cxr's kernels replace convolutions between
    // the two, and the graph is decluttered once either way (a second pass costs start-up time).
    let mut model = typed.into_decluttered().map_err(unsupported)?;
    let mut own = OwnKernels::default();
    if form.depthwise {
        own.depthwise = crate::depthwise::rewrite(&mut model).map_err(unsupported)?;
    }
    if form.pointwise.applies_to(batch) {
        own.pointwise = crate::pointwise::rewrite(&mut model).map_err(unsupported)?;
    }
    model.optimize().map_err(unsupported)?;
    Ok((model.into_runnable().map_err(unsupported)?, own))
}
