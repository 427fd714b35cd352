//! Inference latency of every shipped model (each card is one model × precision, so fp32 and
//! int8 variants appear as they ship): one image through the single-image plan `cxr score` and
//! `cxr predict` use, and eight images through an 8-image plan, on one thread.
//!
//! The input is a real X-ray, preprocessed once outside the timed loop, so this isolates tract.

mod fixtures;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use cxr_infer::Batch;
use std::hint::black_box;

fn latency(c: &mut Criterion) {
    let image = cxr_core::load_image(&fixtures::Format::Jpeg.source_file()).expect("a real X-ray decodes");
    for model in fixtures::models() {
        let mut group = c.benchmark_group(format!("latency/{}", model.label()));
        for batch in [1, 8] {
            let loaded = model.load(Batch::Fixed(batch));
            let mut input = Vec::with_capacity(batch * loaded.card.preprocess.len());
            for _ in 0..batch {
                loaded.preprocess_into(&image, &mut input);
            }
            let mut session = loaded.session();
            group.throughput(Throughput::Elements(batch as u64));
            group.bench_function(BenchmarkId::new("batch", batch), |b| {
                b.iter(|| session.run(black_box(&input), batch).expect("inference runs"))
            });
        }
        group.finish();
    }
}

criterion_group! { name = benches; config = fixtures::criterion(); targets = latency }
criterion_main!(benches);
