//! `cxr._native.Model`: one loaded model (card + optimised tract plan) and what Python can ask
//! of it. Each calling thread runs its own `Session` (tract's per-run state), kept between its
//! calls, so one `Model` can be used from several Python threads at once, each running with the
//! GIL released.

use crate::input::Input;
use cxr_infer::{Batch, InferError, Method, Session, SessionState};
use pyo3::prelude::*;
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::thread::ThreadId;

/// A prediction as it crosses into Python: class probabilities (in `class_names` order) and the
/// index of the decided class.
type Scored = (Vec<f32>, usize);

/// One input's outcome in a batch: a `(probabilities, class index)` tuple, or the error message.
#[derive(IntoPyObject)]
enum Outcome {
    Scored(Scored),
    Failed(String),
}

#[pyclass(frozen, module = "cxr._native")]
pub struct Model {
    model: cxr_infer::Model,
    /// Each calling thread's session state, between its calls, so that `predict` of one image
    /// does not build tract's run state and scratch space again every call. Kept per thread
    /// because tract keeps part of that scratch with the thread that ran the state; a thread
    /// takes its state out for the call, so threads never wait on one another's runs.
    states: Mutex<HashMap<ThreadId, SessionState>>,
}

/// States kept at most: a program that starts a thread per call leaves one behind per thread,
/// and past this many an arbitrary one is dropped (its thread, if still alive, starts afresh).
const MAX_STATES: usize = 64;

impl Model {
    /// Runs `f` on the calling thread's session, and keeps the session's state for its next call.
    fn with_session<T>(&self, f: impl FnOnce(&mut Session<'_>) -> T) -> T {
        let thread = std::thread::current().id();
        let states = || self.states.lock().unwrap_or_else(PoisonError::into_inner);
        let state = states().remove(&thread).unwrap_or_default();
        let mut session = self.model.resume(state);
        let out = f(&mut session);
        let mut states = states();
        if states.len() >= MAX_STATES
            && let Some(other) = states.keys().next().copied()
        {
            states.remove(&other);
        }
        states.insert(thread, session.into_state());
        out
    }
}

/// A heatmap as Python receives it: `(height, width)`, scaled values and signed evidence, as f32 bytes.
type HeatmapBytes = ((u32, u32), Vec<u8>, Vec<u8>);

#[pymethods]
impl Model {
    /// Loads `source`: `"default"` (the model built into this package), a shipped model's name
    /// (looked up in `$CXR_MODELS`, then `./models`), or a path to an `.onnx` (card beside it) or
    /// `.card.json`. The card is checked against the file (sha256, input, outputs) first.
    #[new]
    fn new(py: Python<'_>, source: &str) -> PyResult<Model> {
        let source = cxr_infer::ModelSource::parse(source);
        let model = py
            .detach(|| crate::catalog::catalog().load(&source, Batch::default()))
            .map_err(|e| crate::cxr_error(&e))?;
        Ok(Model { model, states: Mutex::default() })
    }

    /// The model card, as JSON (the `.card.json` file's fields).
    #[getter]
    fn card_json(&self) -> PyResult<String> {
        serde_json::to_string(&self.model.card)
            .map_err(|e| crate::CxrError::new_err(format!("cannot write the model card as JSON: {e}")))
    }

    /// Class names in the order of every probability list.
    #[getter]
    fn class_names(&self) -> Vec<&'static str> {
        self.model.class_set().names().to_vec()
    }

    /// Index of `covid` in `class_names`.
    #[getter]
    fn covid_index(&self) -> usize {
        self.model.class_set().index(cxr_core::Class::Covid)
    }

    /// Where the ONNX file was read from (`<embedded>/…` for the built-in model).
    #[getter]
    fn model_path(&self) -> String {
        self.model.model_path.display().to_string()
    }

    /// Scores each input on this thread's session, with the GIL released for the whole list. A
    /// failure is returned in the input's place as its message (naming the input), so one bad
    /// file in a batch costs only its own row.
    fn predict_many(&self, py: Python<'_>, inputs: Vec<Input>) -> Vec<Outcome> {
        py.detach(|| {
            self.with_session(|session| {
                inputs
                    .iter()
                    .map(|input| match predict(session, input) {
                        Ok(scored) => Outcome::Scored(scored),
                        Err(e) => Outcome::Failed(cxr_core::error_message(&e)),
                    })
                    .collect()
            })
        })
    }

    /// The model's input tensor for one X-ray: `(shape, f32 values as bytes)`, `[channels, size,
    /// size]` as the card's preprocessing makes it.
    fn preprocess(&self, py: Python<'_>, input: Input) -> PyResult<(Vec<usize>, Vec<u8>)> {
        let preprocess = &self.model.card.preprocess;
        let values = py.detach(|| input.image().map(|img| preprocess.apply(&img))).map_err(|e| crate::cxr_error(&e))?;
        let shape = preprocess.shape(1)[1..].to_vec();
        Ok((shape, crate::f32_bytes(&values)))
    }

    /// A heatmap of the evidence for P(covid) over the model's input: `((height, width), scaled
    /// values, signed evidence)`, the maps as f32 bytes. `method` is `"class-activation-map"`,
    /// `"occlusion"` or `None` for the model's own choice.
    #[pyo3(signature = (input, method=None))]
    fn explain(&self, py: Python<'_>, input: Input, method: Option<&str>) -> PyResult<HeatmapBytes> {
        let method = match method {
            None => None,
            Some("class-activation-map" | "cam") => Some(Method::ClassActivationMap),
            Some("occlusion") => Some(Method::Occlusion),
            Some(other) => {
                return Err(pyo3::exceptions::PyValueError::new_err(format!(
                    "unknown explain method `{other}`; use \"class-activation-map\" or \"occlusion\""
                )));
            }
        };
        let heat = py
            .detach(|| -> Result<_, InferError> {
                let image = input.image()?;
                self.with_session(|session| session.explain(&image, method))
            })
            .map_err(|e| crate::cxr_error(&e))?;
        Ok(((heat.height, heat.width), crate::f32_bytes(&heat.values), crate::f32_bytes(&heat.evidence)))
    }
}

/// Decodes one input and runs it, as `Session::predict_file` does for a path.
fn predict(session: &mut cxr_infer::Session<'_>, input: &Input) -> Result<Scored, InferError> {
    let prediction = session.predict_image(&input.image()?)?;
    Ok((prediction.probabilities, prediction.class_index))
}
