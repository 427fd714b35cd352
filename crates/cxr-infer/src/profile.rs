//! Where one inference's time goes: the optimised tract plan run node by node with a clock
//! around each node (and around the patch opening cxr runs before it, [`crate::patch_opening`]), so a slow model can be traced to the ops, and the tract kernels behind
//! them, that cost it (see `benches/node_profile.rs` and BENCHMARKS.md).

use crate::model::{InferError, Model};
use std::time::Instant;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::plan::eval;

/// One node of the optimised plan and its median time per run.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct NodeTime {
    /// The node's name in the optimised graph (tract renames fused nodes after their origin).
    pub node: String,
    /// The optimised op, as tract prints it (e.g. `OptMatMul`, `MaxPool`).
    pub op: String,
    /// tract's own description of the op: for a matrix product, its m×k×n and the kernel tract
    /// picked for this CPU (e.g. `fma_mmm_f32_16x6`), which tells a fast path from a fallback.
    pub detail: String,
    pub median_ms: f64,
}

impl Model {
    /// Runs `n` preprocessed images (as [`Model::preprocess_into`] writes them, `n` the plan's
    /// batch) `runs` times and returns every node's median time, slowest first.
    pub fn profile(&self, inputs: &[f32], n: usize, runs: usize) -> Result<Vec<NodeTime>, InferError> {
        let run_err = |e: TractError| InferError::Run { path: self.model_path.clone(), reason: format!("{e:#}") };
        let mut state = TypedSimpleState::new(&self.plan).map_err(run_err)?;
        let nodes = self.plan.model().nodes();
        let mut times: Vec<Vec<f64>> = vec![Vec::with_capacity(runs); nodes.len()];
        let mut opening_times = Vec::with_capacity(runs);
        for _ in 0..runs.max(1) {
            let started = Instant::now();
            let tensor = self.plan_input(inputs, n).map_err(run_err)?;
            opening_times.push(started.elapsed().as_secs_f64() * 1e3);
            state
                .run_plan_with_eval(tvec!(tensor.into()), |ctx, op_state, node, input| {
                    let started = Instant::now();
                    let out = eval(ctx, op_state, node, input);
                    times[node.id].push(started.elapsed().as_secs_f64() * 1e3);
                    out
                })
                .map_err(run_err)?;
        }
        let mut profile: Vec<NodeTime> = nodes
            .iter()
            .zip(times)
            .filter(|(_, t)| !t.is_empty())
            .map(|(node, mut t)| {
                t.sort_by(f64::total_cmp);
                NodeTime {
                    node: node.name.clone(),
                    op: node.op().name().into_owned(),
                    detail: node.op().info().map(|lines| lines.join("; ")).unwrap_or_default(),
                    median_ms: t[t.len() / 2],
                }
            })
            .collect();
        if let Some(opening) = self.patch_opening() {
            opening_times.sort_by(f64::total_cmp);
            let [c, q, _] = opening.output_dims();
            let layout = opening.layout;
            profile.push(NodeTime {
                node: "cxr.patch.opening".into(),
                op: "PatchOpening".into(),
                detail: format!(
                    "cxr's kernel before the plan: {c} channels × {q}×{q} cells, {k}×{k} patch convolution, {p}×{p} max pool, ReLU {relu}",
                    k = layout.kernel,
                    p = layout.pool,
                    relu = opening.relu
                ),
                median_ms: opening_times[opening_times.len() / 2],
            });
        }
        profile.sort_by(|a, b| b.median_ms.total_cmp(&a.median_ms));
        Ok(profile)
    }
}
