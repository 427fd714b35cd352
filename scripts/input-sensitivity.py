#!/usr/bin/env python3
"""How far invisible pixel noise moves a model's P(covid): the yardstick for int8's moves.

    .venv/bin/python scripts/input-sensitivity.py MANIFEST.csv MODEL.onnx [MODEL.onnx ...]

Scores 100 validation images of MANIFEST (drawn with seed 1) with each fp32 model in onnxruntime
(.venv from scripts/benchmark.sh), then again with uniform noise of ±0.5 and ±2 grey levels added
to the 8-bit image, and prints the largest and mean |ΔP(covid)|. Preprocessing follows the model
card (stretch to the input size, grey copied to 3 channels, ImageNet or [0, 1] normalisation),
with PIL's bilinear resize standing in for cxr's: it is the same for the clean and noisy runs.
"""
import csv
import json
import random
import sys

import numpy as np
import onnxruntime as ort
from PIL import Image

IMAGENET = (np.array([0.485, 0.456, 0.406], np.float32), np.array([0.229, 0.224, 0.225], np.float32))


def main(manifest, models):
    rows = list(csv.DictReader(open(manifest)))
    random.seed(1)
    val = random.sample([r for r in rows if r["split"] == "val"], 100)
    rng = np.random.default_rng(0)
    for model in models:
        card = json.load(open(model.removesuffix(".onnx") + ".card.json"))
        pre = card["preprocess"]
        size = pre["size"]
        grey = np.stack([np.asarray(Image.open(r["path"]).convert("L").resize((size, size), Image.BILINEAR), np.float32) for r in val])
        session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
        input_name = session.get_inputs()[0].name

        def p_covid(g):
            x = np.repeat((g / 255.0)[:, None], pre["channels"], 1)
            if pre.get("normalize") == "imagenet":
                x = (x - IMAGENET[0][:, None, None]) / IMAGENET[1][:, None, None]
            return session.run(None, {input_name: x.astype(np.float32)})[0][:, 0]

        clean = p_covid(grey)
        for noise in (0.5, 2.0):
            moved = np.abs(p_covid(grey + rng.uniform(-noise, noise, grey.shape).astype(np.float32)) - clean)
            print(f"{card['name']}: noise ±{noise} grey levels moves P(covid) by up to {moved.max():.3f} (mean {moved.mean():.4f}) over {len(val)} images")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2:])
