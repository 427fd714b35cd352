#!/usr/bin/env python3
"""The onnxruntime side of BENCHMARKS.md: what a Python user would run on cxr's ONNX files.

    latency  MODEL.onnx --image X --batch N --threads T   median ms of session.run (T=0: all cores)
    score    MODEL.onnx --folder DIR --out results.csv    a plain PIL + onnxruntime folder scorer
    predict  MODEL.onnx IMAGE                             one probability, for cold-start timing

Preprocessing follows the model card beside the ONNX file (size, resize, channels, normalisation),
the way a user would re-implement it with PIL and numpy. Each command prints one JSON line.
"""

import argparse
import csv
import json
import os
import statistics
import sys
import time

import numpy as np
import onnxruntime as ort
from PIL import Image

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def card_for(model_path):
    with open(model_path[: -len(".onnx")] + ".card.json") as f:
        return json.load(f)


def session(model_path, threads):
    options = ort.SessionOptions()
    if threads > 0:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])


def preprocess(path, card):
    """Grey image → CHW float32, as the card's `preprocess` says (stretch or centre crop)."""
    p = card["preprocess"]
    size, channels = p["size"], p["channels"]
    img = Image.open(path).convert("L")
    if p.get("resize", "stretch") == "center-crop":
        side = min(img.size)
        left, top = (img.width - side) // 2, (img.height - side) // 2
        img = img.crop((left, top, left + side, top + side))
    elif p.get("resize", "stretch") != "stretch":
        sys.exit(f"{p['resize']}: resize mode not implemented in this script")
    x = np.asarray(img.resize((size, size), Image.BILINEAR), dtype=np.float32) / 255.0
    x = np.repeat(x[None, :, :], channels, axis=0)
    normalize = p.get("normalize", "unit")
    if normalize == "symmetric":
        x = (x * 255.0 - 127.0) / 128.0
    elif normalize == "imagenet":
        mean, std = (IMAGENET_MEAN, IMAGENET_STD) if channels == 3 else (IMAGENET_MEAN.mean(), IMAGENET_STD.mean())
        x = (x - np.reshape(mean, (-1, 1, 1))) / np.reshape(std, (-1, 1, 1))
    return x.astype(np.float32)


def p_covid(probabilities, card):
    """P(covid) from one output row: the only column of a binary model, `covid` of a three-class one."""
    row = probabilities.reshape(-1)
    return float(row[0])


def latency(args):
    card = card_for(args.model)
    sess = session(args.model, args.threads)
    x = np.stack([preprocess(args.image, card)] * args.batch)
    feed = {card["io"]["input"]: x}
    outputs = [card["io"]["probabilities"]]
    for _ in range(args.warmup):
        sess.run(outputs, feed)
    times = []
    for _ in range(args.runs):
        started = time.perf_counter()
        sess.run(outputs, feed)
        times.append((time.perf_counter() - started) * 1e3)
    print(json.dumps({
        "engine": f"onnxruntime {ort.__version__}",
        "batch": args.batch,
        "threads": args.threads or os.cpu_count(),
        "runs": len(times),
        "median_ms": statistics.median(times),
        "min_ms": min(times),
    }))


def score(args):
    """What a user writes: walk the folder, one image at a time through PIL and onnxruntime."""
    started = time.perf_counter()
    card = card_for(args.model)
    sess = session(args.model, 0)
    paths = sorted(
        os.path.join(root, name)
        for root, _, names in os.walk(args.folder)
        for name in names
        if name.lower().endswith(IMAGE_SUFFIXES)
    )
    with open(args.out, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["path", "p_covid"])
        for path in paths:
            x = preprocess(path, card)[None]
            prob = sess.run([card["io"]["probabilities"]], {card["io"]["input"]: x})[0]
            out.writerow([path, f"{p_covid(prob, card):.6f}"])
    print(json.dumps({"images": len(paths), "seconds": time.perf_counter() - started}))


def predict(args):
    card = card_for(args.model)
    prob = session(args.model, 0).run([card["io"]["probabilities"]], {card["io"]["input"]: preprocess(args.image, card)[None]})[0]
    print(f"{args.image}: P(covid) = {p_covid(prob, card):.4f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    lat = commands.add_parser("latency")
    lat.add_argument("model")
    lat.add_argument("--image", required=True)
    lat.add_argument("--batch", type=int, default=1)
    lat.add_argument("--threads", type=int, default=1, help="0: onnxruntime's default (all cores)")
    lat.add_argument("--runs", type=int, default=50)
    lat.add_argument("--warmup", type=int, default=5)
    lat.set_defaults(run=latency)
    sc = commands.add_parser("score")
    sc.add_argument("model")
    sc.add_argument("--folder", required=True)
    sc.add_argument("--out", required=True)
    sc.set_defaults(run=score)
    pr = commands.add_parser("predict")
    pr.add_argument("model")
    pr.add_argument("image")
    pr.set_defaults(run=predict)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
