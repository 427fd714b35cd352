//! The runtime on real X-rays with a real (tiny) ONNX network written by `tiny_cnn`:
//! loading, refusing mismatched cards and non-ONNX files, batches, int8, heatmaps.

use cxr_core::{ClassSet, ModelCard, load_image};
use cxr_infer::tiny_cnn::TinyCnn;
use cxr_infer::{Batch, Catalog, InferError, Method, Model, ModelSource, PointwisePlans, SessionState};
use cxr_test_support::datasets;
use std::path::{Path, PathBuf};

fn xrays() -> Vec<PathBuf> {
    let d = datasets();
    vec![
        d.join("covid19-radiography/COVID/COVID-1.jpg"),
        d.join("covid19-radiography/Normal/Normal-1.jpg"),
        d.join("chest_xray/test/NORMAL/IM-0001-0001.jpeg"),
    ]
}

fn write(dir: &Path, name: &str, net: TinyCnn) -> PathBuf {
    net.write(dir, name).expect("temp dir is writable")
}

/// The tiny network's forward pass written out in plain loops, for reference values that do not
/// come from tract: its weights read from the ONNX file, then Conv (3×3, stride 2, padding 1) →
/// ReLU → global mean → Gemm → sigmoid (one logit) or softmax, in f64. Returns the ONNX output.
fn reference_output(onnx: &Path, input: &[f32], size: usize) -> Vec<f64> {
    use cxr_infer::onnx_proto;
    use prost::Message;
    let graph = tract_onnx::pb::ModelProto::decode(std::fs::read(onnx).unwrap().as_slice()).unwrap().graph.unwrap();
    let weights = |name: &str| -> Vec<f64> {
        let tensor = onnx_proto::initializer(&graph, name).unwrap_or_else(|| panic!("no `{name}`"));
        onnx_proto::float_values(tensor).unwrap().into_iter().map(f64::from).collect()
    };
    let (conv_w, conv_b, head_w, head_b) =
        (weights("conv.weight"), weights("conv.bias"), weights("head.weight"), weights("head.bias"));
    let side = size.div_ceil(2);
    let pixel = |c: usize, y: isize, x: isize| {
        let inside = (0..size as isize).contains(&y) && (0..size as isize).contains(&x);
        if inside { f64::from(input[(c * size + y as usize) * size + x as usize]) } else { 0.0 }
    };
    let pooled: Vec<f64> = (0..conv_b.len())
        .map(|f| {
            let mut sum = 0.0;
            for (oy, ox) in (0..side).flat_map(|oy| (0..side).map(move |ox| (oy, ox))) {
                let mut acc = conv_b[f];
                for (c, ky, kx) in (0..3).flat_map(|c| (0..3).flat_map(move |ky| (0..3).map(move |kx| (c, ky, kx)))) {
                    acc += conv_w[((f * 3 + c) * 3 + ky) * 3 + kx]
                        * pixel(c, (oy * 2 + ky) as isize - 1, (ox * 2 + kx) as isize - 1);
                }
                sum += acc.max(0.0);
            }
            sum / (side * side) as f64
        })
        .collect();
    let logits: Vec<f64> = head_b
        .iter()
        .enumerate()
        .map(|(k, b)| b + pooled.iter().enumerate().map(|(f, p)| head_w[k * pooled.len() + f] * p).sum::<f64>())
        .collect();
    if let [logit] = logits[..] {
        return vec![1.0 / (1.0 + (-logit).exp())];
    }
    let top = logits.iter().copied().fold(f64::MIN, f64::max);
    let total: f64 = logits.iter().map(|l| (l - top).exp()).sum();
    logits.iter().map(|l| (l - top).exp() / total).collect()
}

#[test]
fn tiny_model_scores_real_xrays_with_valid_probabilities() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "tiny", TinyCnn::default());
    let model = Model::load(&path).unwrap();
    let mut session = model.session();
    let scores: Vec<f32> = xrays()
        .iter()
        .map(|p| {
            let pred = session.predict_file(p).unwrap();
            assert_eq!(pred.probabilities.len(), 2);
            assert!((pred.probabilities.iter().sum::<f32>() - 1.0).abs() < 1e-5);
            assert!(pred.probabilities.iter().all(|v| (0.0..=1.0).contains(v)));
            let img = load_image(p).unwrap();
            let expected = reference_output(&path, &model.card.preprocess.apply(&img), 64)[0];
            assert!(
                (f64::from(pred.probabilities[1]) - expected).abs() < 1e-5,
                "P(covid) {} vs {expected}",
                pred.probabilities[1]
            );
            pred.probabilities[1]
        })
        .collect();
    assert!(
        scores.windows(2).any(|w| (w[0] - w[1]).abs() > 1e-4),
        "different X-rays should get different scores: {scores:?}"
    );
}

#[test]
fn batched_and_single_runs_agree_for_fixed_and_symbolic_plans() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "tiny", TinyCnn::default());
    let card_path = ModelCard::path_for(&path);
    let single = Model::load(&path).unwrap();
    let images: Vec<_> = xrays().iter().map(|p| load_image(p).unwrap()).collect();
    let mut batch_input = Vec::new();
    for img in &images {
        single.preprocess_into(img, &mut batch_input);
    }
    let one_by_one: Vec<f32> =
        images.iter().map(|img| single.session().predict_image(img).unwrap().probabilities[1]).collect();
    for batch in [Batch::Symbolic, Batch::Fixed(2), Batch::Fixed(1)] {
        let model = Model::load_with_card(&path, &card_path, batch).unwrap();
        let out = model.session().run(&batch_input, images.len()).unwrap();
        assert_eq!(out.predictions.len(), 3);
        for (p, expected) in out.predictions.iter().zip(&one_by_one) {
            assert!((p.probabilities[1] - expected).abs() < 1e-5, "{batch:?}: {} vs {expected}", p.probabilities[1]);
        }
        let (shape, values) = out.feature_map.expect("the tiny net exports its feature map");
        assert_eq!(shape[0], 3, "{batch:?}");
        assert_eq!(values.len(), shape.iter().product::<usize>());
    }
}

#[test]
fn int8_qlinearconv_model_loads_and_tracks_the_fp32_one() {
    let dir = tempfile::tempdir().unwrap();
    let fp32 = Model::load(&write(dir.path(), "fp32", TinyCnn::default())).unwrap();
    let int8 = Model::load(&write(dir.path(), "int8", TinyCnn { int8: true, ..TinyCnn::default() })).unwrap();
    assert_eq!(int8.card.precision, "int8");
    for path in xrays() {
        let a = fp32.session().predict_file(&path).unwrap().probabilities[1];
        let b = int8.session().predict_file(&path).unwrap().probabilities[1];
        assert!((a - b).abs() < 0.05, "{}: fp32 {a} vs int8 {b}", path.display());
    }
}

/// Each probability is the network's own for its class, in covid / normal / pneumonia order (as
/// the loops above compute it, not as tract does), and the decided class follows the card's rule:
/// covid at or above the threshold, else the likelier of the other two.
#[test]
fn three_class_model_gives_a_softmax_over_covid_normal_pneumonia() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "three", TinyCnn { class_set: ClassSet::ThreeClass, ..TinyCnn::default() });
    let model = Model::load(&path).unwrap();
    assert_eq!(model.class_set().names(), ["covid", "normal", "pneumonia"]);
    let mut decided = std::collections::BTreeSet::new();
    for file in xrays() {
        let img = load_image(&file).unwrap();
        let pred = model.session().predict_image(&img).unwrap();
        let expected = reference_output(&path, &model.card.preprocess.apply(&img), model.card.preprocess.size as usize);
        for (got, want) in pred.probabilities.iter().zip(&expected) {
            assert!(
                (f64::from(*got) - want).abs() < 1e-5,
                "{}: {:?} vs {expected:?}",
                file.display(),
                pred.probabilities
            );
        }
        assert_eq!(pred.probabilities.len(), 3);
        let rule = if expected[0] >= model.card.threshold {
            0
        } else if expected[1] >= expected[2] {
            1
        } else {
            2
        };
        assert_eq!(pred.class_index, rule, "{}: {expected:?}", file.display());
        decided.insert(rule);
    }
    eprintln!("classes decided on the X-rays: {decided:?}");
}

#[test]
fn sha256_mismatch_is_refused_naming_model_and_card() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "tiny", TinyCnn::default());
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(b"\0");
    std::fs::write(&path, bytes).unwrap();
    let err = Model::load(&path).unwrap_err();
    assert!(matches!(err, InferError::Card(_)), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("tiny.onnx") && msg.contains("tiny.card.json") && msg.contains("sha256"), "{msg}");
}

#[test]
fn a_file_that_is_not_onnx_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("photo.onnx");
    std::fs::copy(&xrays()[0], &path).unwrap();
    // A card that matches the bytes, so the sha check passes and the ONNX check is what refuses.
    let bytes = std::fs::read(&path).unwrap();
    TinyCnn::default().card("photo", "photo.onnx", &bytes).save(&ModelCard::path_for(&path)).unwrap();
    let err = Model::load(&path).unwrap_err();
    assert!(matches!(err, InferError::NotOnnx { .. }), "{err:?}");
    assert!(err.to_string().contains("photo.onnx") && err.to_string().contains("not an ONNX model"), "{err}");
}

#[test]
fn a_card_whose_input_size_differs_from_the_graph_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "tiny", TinyCnn::default());
    let card_path = ModelCard::path_for(&path);
    let mut card = ModelCard::load(&card_path).unwrap();
    card.preprocess.size = 128;
    card.save(&card_path).unwrap();
    let err = Model::load(&path).unwrap_err();
    assert!(matches!(err, InferError::InputMismatch { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("64") && msg.contains("128") && msg.contains("tiny.card.json"), "{msg}");
}

#[test]
fn a_card_naming_a_missing_output_or_the_wrong_class_count_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "tiny", TinyCnn::default());
    let card_path = ModelCard::path_for(&path);
    let original = ModelCard::load(&card_path).unwrap();

    let mut card = original.clone();
    card.io.probabilities = "scores".into();
    card.save(&card_path).unwrap();
    let err = Model::load(&path).unwrap_err();
    assert!(matches!(err, InferError::OutputMismatch { .. }) && err.to_string().contains("scores"), "{err}");

    let mut card = original;
    card.class_set = ClassSet::ThreeClass;
    card.save(&card_path).unwrap();
    let err = Model::load(&path).unwrap_err();
    assert!(matches!(err, InferError::OutputMismatch { .. }) && err.to_string().contains("[N, 3]"), "{err}");
}

#[test]
fn a_resumed_session_runs_as_a_fresh_one_and_drops_another_models_state() {
    let dir = tempfile::tempdir().unwrap();
    let model = Model::load(&write(dir.path(), "tiny", TinyCnn::default())).unwrap();
    let other = Model::load(&write(dir.path(), "three", TinyCnn { size: 48, ..TinyCnn::default() })).unwrap();
    let images: Vec<_> = xrays().iter().map(|p| load_image(p).unwrap()).collect();
    let fresh = |m: &Model, img| m.session().predict_image(img).unwrap().probabilities;
    // One state carried through every call, as the Python binding keeps one per thread.
    let mut state = SessionState::default();
    for _ in 0..2 {
        for img in &images {
            let mut session = model.resume(state);
            assert_eq!(session.predict_image(img).unwrap().probabilities, fresh(&model, img));
            state = session.into_state();
        }
    }
    // The other model's plan takes 48-pixel inputs: running this state would fail.
    let mut session = other.resume(state);
    assert_eq!(session.predict_image(&images[0]).unwrap().probabilities, fresh(&other, &images[0]));
}

#[test]
fn heatmaps_cover_the_input_by_cam_and_by_occlusion() {
    let dir = tempfile::tempdir().unwrap();
    let model = Model::load(&write(dir.path(), "tiny", TinyCnn::default())).unwrap();
    assert_eq!(model.default_explain_method(), Method::ClassActivationMap);
    let img = load_image(&xrays()[0]).unwrap();
    let mut session = model.session();
    for method in [Method::ClassActivationMap, Method::Occlusion] {
        let heat = session.explain(&img, Some(method)).unwrap();
        assert_eq!(heat.method, method);
        assert_eq!((heat.width, heat.height), (64, 64));
        assert_eq!(heat.values.len(), 64 * 64);
        assert!(heat.values.iter().all(|v| (0.0..=1.0).contains(v)));
        assert!(heat.values.iter().any(|&v| v > 0.5), "{method:?} map is flat");
        let picture = cxr_infer::explain::overlay(&model.card.preprocess.fit(&img), &heat.image());
        assert_eq!(picture.dimensions(), (64, 64));
    }
    let occlusion = session.explain(&img, Some(Method::Occlusion)).unwrap().values;
    let by_definition = occlusion_by_definition(&model, &img);
    let worst = occlusion.iter().zip(&by_definition).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(worst < 1e-3, "occlusion map differs from its definition by up to {worst}");
}

/// Occlusion sensitivity as `explain` documents it (Zeiler & Fergus), one image at a time: a
/// mid-grey square of a 1/8 side slid at half-square steps over the fitted image, each pixel's
/// mean drop in P(covid) over the squares covering it, scaled min–max to [0, 1]. One image per
/// run where `explain` batches them, so the two agree to float noise, not bit for bit.
fn occlusion_by_definition(model: &Model, img: &cxr_core::GreyImage) -> Vec<f32> {
    let fitted = model.card.preprocess.fit(img);
    let side = fitted.width as usize;
    let (patch, stride) = (side / 8, side / 16);
    let mut session = model.session();
    let base = session.predict_image(&fitted).unwrap().probabilities[1];
    let (mut drop, mut cover) = (vec![0.0f32; side * side], vec![0u32; side * side]);
    for y0 in (0..=side - patch).step_by(stride) {
        for x0 in (0..=side - patch).step_by(stride) {
            let mut occluded = fitted.clone();
            let square = |i: usize| (y0..y0 + patch).contains(&(i / side)) && (x0..x0 + patch).contains(&(i % side));
            for i in (0..side * side).filter(|&i| square(i)) {
                occluded.pixels[i] = 0.5;
            }
            let p = session.predict_image(&occluded).unwrap().probabilities[1];
            for i in (0..side * side).filter(|&i| square(i)) {
                drop[i] += base - p;
                cover[i] += 1;
            }
        }
    }
    let mean: Vec<f32> = drop.iter().zip(&cover).map(|(d, &n)| d / n.max(1) as f32).collect();
    let (lo, hi) = mean.iter().fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    mean.iter().map(|v| (v - lo) / (hi - lo)).collect()
}

#[test]
fn catalog_finds_models_by_name_and_says_where_it_looked() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "tiny-a", TinyCnn::default());
    write(dir.path(), "tiny-b", TinyCnn { int8: true, ..TinyCnn::default() });
    let catalog = Catalog { embedded: Err("none in tests".into()), dirs: vec![dir.path().to_owned()] };
    let names: Vec<String> = catalog.shipped().into_iter().map(|m| m.card.name).collect();
    assert_eq!(names, ["tiny-a", "tiny-b"]);
    let model = catalog.load(&ModelSource::Name("tiny-b".into()), Batch::default()).unwrap();
    assert_eq!(model.card.precision, "int8");
    let err = catalog.load(&ModelSource::Name("resnet".into()), Batch::default()).unwrap_err().to_string();
    assert!(err.contains("resnet") && err.contains(&dir.path().display().to_string()), "{err}");
    let err = catalog.load(&ModelSource::Embedded, Batch::default()).unwrap_err().to_string();
    assert!(err.contains("none in tests"), "{err}");
    let by_card = catalog.load(&ModelSource::Path(dir.path().join("tiny-a.card.json")), Batch::default()).unwrap();
    assert_eq!(by_card.card.name, "tiny-a");
}

/// CPU time each thread named `prefix…` of this process has spent running, by thread id, from
/// the kernel's per-thread `schedstat` (nanoseconds on a CPU). Linux only. Kept per thread so
/// that a pool of another model exiting between two readings (tests run side by side) cannot
/// make the total go backwards.
#[cfg(all(target_os = "linux", not(target_arch = "arm")))]
fn cpu_ns_of_threads(prefix: &str) -> std::collections::HashMap<std::ffi::OsString, u64> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| {
            let task = task.ok()?;
            let dir = task.path();
            let name = std::fs::read_to_string(dir.join("comm")).ok()?;
            if !name.trim().starts_with(prefix) {
                return None;
            }
            let ns = std::fs::read_to_string(dir.join("schedstat")).ok()?.split_whitespace().next()?.parse().ok()?;
            Some((task.file_name(), ns))
        })
        .collect()
}

/// CPU time the threads named `prefix…` spent since `before` was read: each live thread's growth,
/// counting a thread born since then from zero.
#[cfg(all(target_os = "linux", not(target_arch = "arm")))]
fn cpu_ns_since(prefix: &str, before: &std::collections::HashMap<std::ffi::OsString, u64>) -> u64 {
    cpu_ns_of_threads(prefix).iter().map(|(tid, ns)| ns.saturating_sub(before.get(tid).copied().unwrap_or(0))).sum()
}

/// A shipped model's matrix products split over an intra-op pool give the probabilities the
/// calling thread alone gives, and the pool's threads do run them (their CPU time grows while
/// the model runs), so a scope that silently stayed single-threaded would fail here.
#[test]
#[cfg(all(target_os = "linux", not(target_arch = "arm")))]
fn intra_op_threads_split_a_shipped_model_and_keep_its_probabilities() {
    use cxr_infer::GraphForm;
    use cxr_infer::IntraOpThreads;
    let onnx = cxr_test_support::workspace().join("models/seed-cnn.onnx");
    let card_path = ModelCard::path_for(&onnx);
    let bytes = std::fs::read(&onnx).unwrap();
    let load = |form| {
        let card = ModelCard::load(&card_path).unwrap();
        Model::from_bytes_with(card, &card_path, &onnx, &bytes, Batch::default(), form).unwrap()
    };
    let images: Vec<_> = xrays().iter().map(|p| load_image(p).unwrap()).collect();
    let rewritten = load(GraphForm::from_env());
    // As written, every product of the network is tract's, so the pool must do real work. (With the
    // rewrites, the opening runs in cxr's kernel on the calling thread, and what tract runs after it
    // is too small for the pool's CPU time to tell a working pool from an idle one.)
    for (single, pool_must_work) in [(load(GraphForm::AS_WRITTEN), true), (rewritten.clone(), false)] {
        let mut threaded = single.clone();
        threaded.set_intra_op_threads(IntraOpThreads::new(2));
        assert_eq!(threaded.intra_op_threads().count(), 2);
        assert_eq!(single.intra_op_threads().count(), 1);
        let (mut one, mut two) = (single.session(), threaded.session());
        // The pool is created with the model's threads; let it settle before reading its CPU time.
        two.predict_image(&images[0]).unwrap();
        let before = cpu_ns_of_threads("cxr-intra-op");
        for _ in 0..10 {
            for img in &images {
                let (a, b) = (one.predict_image(img).unwrap(), two.predict_image(img).unwrap());
                let (pa, pb) = (a.p_covid(), b.p_covid());
                let form = if pool_must_work { "as written" } else { "rewritten" };
                assert!((pa - pb).abs() < 1e-5, "{form}: 1 thread {pa} vs 2 threads {pb}");
                assert_eq!(a.class_index, b.class_index);
            }
        }
        let pool_ns = cpu_ns_since("cxr-intra-op", &before);
        assert!(!pool_must_work || pool_ns > 1_000_000, "the intra-op pool ran for only {pool_ns} ns over 30 images");
    }
    let mut threaded = rewritten.clone();
    threaded.set_intra_op_threads(IntraOpThreads::new(2));
    let mut one = rewritten.session();

    // Images spread over a rayon pool with a threaded model (`cxr bench`'s throughput figure):
    // each run stays on its worker rather than re-entering tract's scratch space, and agrees.
    use rayon::prelude::*;
    let workers = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    let spread: Vec<f32> = workers.install(|| {
        (0..8 * images.len())
            .into_par_iter()
            .map_init(|| threaded.session(), |s, i| s.predict_image(&images[i % images.len()]).unwrap().p_covid())
            .collect()
    });
    let alone: Vec<f32> = images.iter().map(|img| one.predict_image(img).unwrap().p_covid()).collect();
    for (i, p) in spread.iter().enumerate() {
        assert!((p - alone[i % images.len()]).abs() < 1e-5, "image {i}: {p} against {}", alone[i % images.len()]);
    }
}

/// The shipped depthwise-separable network (EfficientNet-Lite0, three classes) with its
/// depthwise convolutions (all 16 on x86-64) and its 1 × 1 convolutions over large planes (10 at
/// 224 px) in cxr's kernels gives tract's probabilities on real X-rays, in a fixed and a
/// symbolic-batch plan (`cxr score`'s batches), and `CXR_GRAPH_FORM=onnx`'s form keeps tract's.
#[test]
fn convolutions_in_cxrs_kernels_keep_a_shipped_models_probabilities() {
    use cxr_infer::GraphForm;
    let onnx = cxr_test_support::workspace().join("models/efficientnet-lite0-three-class.onnx");
    let card_path = ModelCard::path_for(&onnx);
    let bytes = std::fs::read(&onnx).unwrap();
    let load = |form, batch| {
        let card = ModelCard::load(&card_path).unwrap();
        Model::from_bytes_with(card, &card_path, &onnx, &bytes, batch, form).unwrap()
    };
    let images: Vec<_> = xrays().iter().map(|p| load_image(p).unwrap()).collect();
    let tracts = load(GraphForm::AS_WRITTEN, Batch::default());
    assert_eq!(tracts.own_kernels(), cxr_infer::OwnKernels::default());
    let expected: Vec<Vec<f32>> =
        images.iter().map(|img| tracts.session().predict_image(img).unwrap().probabilities).collect();
    let ours = GraphForm { depthwise: true, pointwise: PointwisePlans::All, ..GraphForm::AS_WRITTEN };
    // `cxr`'s own form uses the 1 × 1 kernel in plans of several images only.
    let default = GraphForm::from_env();
    assert_eq!(default.pointwise, PointwisePlans::Batched);
    // (form, batch, 1 × 1 convolutions cxr computes)
    let cases = [
        (ours, Batch::default(), 10),
        (ours, Batch::Symbolic, 10),
        (default, Batch::Fixed(2), 10),
        (default, Batch::default(), 0),
    ];
    for (form, batch, pointwise) in cases {
        let model = load(form, batch);
        // On aarch64 tract moves most of the network to channel-last, which cxr's kernels leave
        // to tract (`cxr_infer::depthwise`); the probabilities must agree wherever they act.
        let own = model.own_kernels();
        if cfg!(target_arch = "x86_64") {
            assert_eq!(own.depthwise, 16, "EfficientNet-Lite0 has 16 depthwise convolutions");
            // 10: its 1 × 1 convolutions on planes of 28 × 28 or more.
            assert_eq!(own.pointwise, pointwise, "{form:?} {batch:?}");
        }
        let mut session = model.session();
        for (img, want) in images.iter().zip(&expected) {
            let got = session.predict_image(img).unwrap().probabilities;
            for (g, w) in got.iter().zip(want) {
                assert!((g - w).abs() < 1e-5, "{batch:?} {own:?}: cxr's kernels {got:?}, tract's {want:?}");
            }
        }
    }
}

/// 32-bit ARM builds have no intra-op pool (see `cxr-infer/Cargo.toml`): asking for threads
/// gives one, and the model still scores.
#[test]
#[cfg(target_arch = "arm")]
fn intra_op_threads_fall_back_to_one_on_32_bit_arm() {
    use cxr_infer::IntraOpThreads;
    assert!(!IntraOpThreads::SUPPORTED);
    let mut model = Model::load(&cxr_test_support::workspace().join("models/seed-cnn.onnx")).unwrap();
    model.set_intra_op_threads(IntraOpThreads::new(4));
    assert_eq!(model.intra_op_threads().count(), 1);
    let p = model.session().predict_image(&load_image(&xrays()[0]).unwrap()).unwrap().p_covid();
    assert!((0.0..=1.0).contains(&p));
}
