//! `cxr._native`: the Rust side of the `cxr` Python package (see `python/cxr/__init__.py`, which
//! wraps it into the public API).
//!
//! Everything here calls the same functions as the `cxr` CLI — `cxr_core::load_image` to decode,
//! `cxr_infer::Session` to run — so a probability printed by Python and by `cxr predict --json` is
//! the same `f32`. Values cross into Python in plain shapes (lists, tuples, raw byte buffers)
//! and the Python layer builds numpy arrays and result objects from them: this keeps the
//! extension free of the numpy C API, so one abi3 wheel serves every CPython ≥ 3.9.
//! Inference runs with the GIL released, so Python threads can score in parallel.

mod catalog;
mod input;
mod model;

use pyo3::prelude::*;

pyo3::create_exception!(
    cxr,
    CxrError,
    pyo3::exceptions::PyException,
    "A file, image or model cxr cannot use; the message names it and says why."
);

/// A `CxrError` carrying an error and its causes, each said once (as the CLI prints them).
pub(crate) fn cxr_error(err: &(dyn std::error::Error + 'static)) -> PyErr {
    CxrError::new_err(cxr_core::error_message(err))
}

/// `f32` values as their native-endian bytes, which numpy reads back without a copy per value.
pub(crate) fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_ne_bytes()).collect()
}

/// The image files under `folder`, found exactly as `cxr score` finds them (`cxr_core::walk`):
/// recursive and sorted, hidden entries skipped, links followed with each real folder listed once.
#[pyfunction]
fn walk(folder: std::path::PathBuf) -> Vec<String> {
    cxr_core::walk::walk(&folder).images.into_iter().map(|p| p.to_string_lossy().into_owned()).collect()
}

#[pymodule]
mod _native {
    #[pymodule_export]
    use super::CxrError;
    #[pymodule_export]
    use super::input::load_image;
    #[pymodule_export]
    use super::model::Model;
    #[pymodule_export]
    use super::walk;
}
