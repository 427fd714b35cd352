//! The patch opening (`cxr_infer::patch_opening`) of every shipped model that has one, with each
//! inner loop this CPU can run: what picking the widest kernel buys, measured side by side.
//!
//! The input is a real X-ray in the model's patch layout, prepared outside the timed loop.

mod fixtures;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use cxr_infer::Batch;
use cxr_infer::patch_opening::OpeningKernel;
use std::hint::black_box;

fn opening(c: &mut Criterion) {
    let image = cxr_core::load_image(&fixtures::Format::Jpeg.source_file()).expect("a real X-ray decodes");
    for model in fixtures::models() {
        let loaded = model.load(Batch::Fixed(1));
        let Some(opening) = loaded.patch_opening() else { continue };
        let mut input = Vec::new();
        loaded.preprocess_into(&image, &mut input);
        let mut out = vec![0.0f32; opening.output_len()];
        let mut group = c.benchmark_group(format!("opening/{}", model.label()));
        for kernel in OpeningKernel::available() {
            group.bench_function(BenchmarkId::from_parameter(format!("{kernel:?}")), |b| {
                b.iter(|| opening.run_on(kernel, black_box(&input), &mut out))
            });
        }
        group.finish();
    }
}

criterion_group! { name = benches; config = fixtures::criterion(); targets = opening }
criterion_main!(benches);
