#!/usr/bin/env python3
"""How much AUC an int8 model gives up against its fp32 model, on the committed splits, in onnxruntime.

    .venv/bin/pip install onnxruntime onnx pillow numpy   # once (scripts/benchmark.sh makes .venv)
    .venv/bin/python scripts/int8-vs-fp32.py FP32.onnx INT8.onnx [SPLIT ...]

Scores every image of each SPLIT (default: test holdout) of models/splits/seed42.csv, read from
../shared/datasets (override with CXR_DATASETS), with both models and prints, per split, both AUCs,
their difference with a paired bootstrap 95 % interval (1,000 resamples of the same images), and
sensitivity / specificity at each card's threshold. One JSON line per split.

Why onnxruntime and not `cxr eval`: tract's integer kernels on x86 run the transfer models' int8
files ~45× slower than their fp32 files (BENCHMARKS.md), hours for these splits on two cores, while
onnxruntime's are fast. But onnxruntime's uint8 × int8 kernels on AVX2 without VNNI sum pairs of
products in saturating 16-bit lanes (VPMADDUBSW), which moves scores that tract's exact integer
products do not; so the int8 model is first rewritten into the identical uint8 × uint8 form (every
int8 weight + 128, zero point 128), whose kernels widen to 32 bits. Both models go through the same
decoder and resize (PIL, bench_onnxruntime.py), so the difference is the quantization's alone; the
absolute AUCs may differ from `cxr eval`'s by the resize's few thousandths.
"""

import csv
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_onnxruntime import card_for, p_covid, preprocess, session  # noqa: E402
import onnx  # noqa: E402
from onnx import numpy_helper  # noqa: E402

SPLITS_FILE = "models/splits/seed42.csv"
BOOTSTRAP = 1000


def auc(scores, positive):
    """Mann–Whitney AUC with ties counted half (average ranks)."""
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    i = 0
    while i < len(scores):
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    n_pos = positive.sum()
    n_neg = len(positive) - n_pos
    return (ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def unsigned_weights(model_path):
    """The int8 model with its int8 weights as uint8 (+128, zero point +128): the same integers
    multiplied, through onnxruntime's non-saturating uint8 × uint8 kernels."""
    model = onnx.load(model_path)
    initializers = {t.name: t for t in model.graph.initializer}

    def unsigned(name, default_shape=None):
        """A new uint8 initializer holding `name`'s int8 values + 128 (or 128s when `name` is absent)."""
        if name and initializers[name].data_type != onnx.TensorProto.INT8:
            sys.exit(f"{model_path}: `{name}` is not int8; only int8 weights are rewritten")
        values = numpy_helper.to_array(initializers[name]).astype(np.int16) if name else np.zeros(default_shape, np.int16)
        new = f"{name or 'zero'}.u8.{len(model.graph.initializer)}"
        model.graph.initializer.append(numpy_helper.from_array((values + 128).astype(np.uint8), new))
        return new

    for node in model.graph.node:
        if node.op_type == "QLinearConv":  # x, x_scale, x_zp, w, w_scale, w_zp, …
            node.input[3], node.input[5] = unsigned(node.input[3]), unsigned(node.input[5])
        elif node.op_type == "MatMulInteger":  # a, b, a_zp, [b_zp]
            b_zero = node.input[3] if len(node.input) > 3 and node.input[3] else None
            node.input[1] = unsigned(node.input[1])
            zero = unsigned(b_zero, default_shape=())
            if len(node.input) > 3:
                node.input[3] = zero
            else:
                node.input.append(zero)
    used = {name for node in model.graph.node for name in node.input}
    kept = [t for t in model.graph.initializer if t.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
    return model.SerializeToString()


def at_threshold(scores, positive, threshold):
    called = scores >= threshold
    return called[positive].mean(), (~called[~positive]).mean()


def main(fp32_path, int8_path, splits):
    root = os.environ.get("CXR_DATASETS", "../shared/datasets")
    rows = list(csv.DictReader(open(SPLITS_FILE)))
    cards = [card_for(fp32_path), card_for(int8_path)]
    if cards[0]["preprocess"] != cards[1]["preprocess"]:
        sys.exit(f"{int8_path}: its card's preprocess differs from {fp32_path}'s; is it that model's int8?")
    sessions = [session(fp32_path, 0), session(unsigned_weights(int8_path), 0)]
    rng = np.random.default_rng(42)
    for split in splits:
        chosen = [r for r in rows if r["split"] == split]
        positive = np.array([r["label"] == "covid" for r in chosen])
        # Each image is decoded once and the same input scored by both models.
        scores = [[], []]
        for r in chosen:
            x = preprocess(os.path.join(root, r["path"]), cards[0])[None]
            for sess, card, out in zip(sessions, cards, scores):
                out.append(p_covid(sess.run(None, {sess.get_inputs()[0].name: x})[0], card))
        scores = [np.array(s) for s in scores]
        aucs = [auc(s, positive) for s in scores]
        deltas = []
        for _ in range(BOOTSTRAP):
            idx = rng.integers(0, len(chosen), len(chosen))
            if positive[idx].all() or not positive[idx].any():
                continue
            deltas.append(auc(scores[1][idx], positive[idx]) - auc(scores[0][idx], positive[idx]))
        result = {"split": split, "images": len(chosen), "auc_fp32": round(aucs[0], 4), "auc_int8": round(aucs[1], 4),
                  "delta_auc": round(aucs[1] - aucs[0], 4),
                  "delta_auc_ci95": [round(float(np.percentile(deltas, q)), 4) for q in (2.5, 97.5)],
                  "max_abs_delta_p": round(float(np.abs(scores[1] - scores[0]).max()), 4),
                  "mean_abs_delta_p": round(float(np.abs(scores[1] - scores[0]).mean()), 4)}
        for label, card, s in zip(("fp32", "int8"), cards, scores):
            sens, spec = at_threshold(s, positive, card["threshold"])
            result[f"sens_spec_{label}"] = [round(float(sens), 4), round(float(spec), 4)]
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2], sys.argv[3:] or ["test", "holdout"])
