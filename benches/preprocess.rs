//! Getting from a file's bytes to a model's input tensor, per input format (JPEG, PNG, DICOM):
//! decoding alone, then decode + resize + normalise for each distinct preprocessing recipe the
//! shipped models' cards ask for. File reading is left out (see `end_to_end`).

mod fixtures;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use cxr_core::Preprocess;
use cxr_core::image::decode_image;
use std::hint::black_box;

fn recipe_name(p: &Preprocess) -> String {
    format!("{}px-{:?}-{}ch-{:?}", p.size, p.resize, p.channels, p.normalize).to_lowercase()
}

fn preprocess(c: &mut Criterion) {
    let mut recipes: Vec<Preprocess> = Vec::new();
    for model in fixtures::models() {
        if !recipes.contains(&model.card.preprocess) {
            recipes.push(model.card.preprocess);
        }
    }
    for format in fixtures::FORMATS {
        let path = format.source_file();
        let bytes = format.bytes();
        let mut group = c.benchmark_group(format!("preprocess/{}", format.name()));
        group.bench_function("decode", |b| b.iter(|| decode_image(&path, black_box(&bytes)).expect("decodes")));
        for recipe in &recipes {
            let mut out = Vec::with_capacity(recipe.len());
            group.bench_function(BenchmarkId::new("decode+resize+normalise", recipe_name(recipe)), |b| {
                b.iter(|| {
                    out.clear();
                    recipe.apply_into(&decode_image(&path, black_box(&bytes)).expect("decodes"), &mut out);
                    out.len()
                })
            });
        }
        group.finish();
    }
}

criterion_group! { name = benches; config = fixtures::criterion(); targets = preprocess }
criterion_main!(benches);
