//! tract's per-node profile of every shipped model: which ops of the optimised plan one image
//! (and one batch of 8) spends its time in. Not a Criterion benchmark: it prints a table, the
//! starting point when a model is slower than it should be. `cargo bench --bench node_profile`;
//! `cargo test --benches` runs it with a few runs only.

mod fixtures;

use cxr_infer::Batch;

fn main() {
    let quick = !std::env::args().any(|a| a == "--bench");
    let runs = if quick { 2 } else { 200 };
    let image = cxr_core::load_image(&fixtures::Format::Jpeg.source_file()).expect("a real X-ray decodes");
    for model in fixtures::models() {
        for batch in [1, 8] {
            let loaded = model.load(Batch::Fixed(batch));
            let mut input = Vec::new();
            for _ in 0..batch {
                loaded.preprocess_into(&image, &mut input);
            }
            let profile = loaded.profile(&input, batch, runs).unwrap_or_else(|e| panic!("{e}"));
            let total: f64 = profile.iter().map(|n| n.median_ms).sum();
            println!(
                "\n{} batch {batch}: {total:.3} ms over {} nodes (medians of {runs} runs)",
                model.label(),
                profile.len()
            );
            for node in profile.iter().take(12) {
                println!(
                    "  {:>8.3} ms {:>5.1}%  {:<28} {}",
                    node.median_ms,
                    100.0 * node.median_ms / total,
                    node.op,
                    node.node
                );
                if node.op == "OptMatMul" {
                    println!("                          {}", node.detail);
                }
            }
        }
    }
}
