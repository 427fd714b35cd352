//! What a user waits for, per shipped model: loading it (read, sha256 check, parse, optimise;
//! most of a cold start) and one file on disk → P(covid) (read, decode, preprocess, infer), per
//! input format.

mod fixtures;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use cxr_infer::Batch;
use std::hint::black_box;

fn end_to_end(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let files: Vec<_> = fixtures::FORMATS
        .iter()
        .map(|format| {
            let path = dir.path().join(format!("xray.{}", format.name()));
            std::fs::write(&path, format.bytes()).expect("temporary folder is writable");
            (format.name(), path)
        })
        .collect();
    for model in fixtures::models() {
        let mut group = c.benchmark_group(format!("end_to_end/{}", model.label()));
        group.bench_function("load", |b| b.iter(|| model.load(Batch::Fixed(1))));
        let loaded = model.load(Batch::Fixed(1));
        let covid = loaded.class_set().index(cxr_core::Class::Covid);
        let mut session = loaded.session();
        for (format, path) in &files {
            group.bench_function(BenchmarkId::new("file-to-probability", format), |b| {
                b.iter(|| session.predict_file(black_box(path)).expect("scores").probabilities[covid])
            });
        }
        group.finish();
    }
}

criterion_group! { name = benches; config = fixtures::criterion(); targets = end_to_end }
criterion_main!(benches);
