#!/usr/bin/env python3
"""Writes `cxr eval` results into a model card's `evaluations`, as the shipped cards carry them.

    record-evaluations.py models/x.card.json TEST_REPORT_DIR HOLDOUT_REPORT_DIR

Each report folder is a `cxr eval --data models/splits/seed42.csv --data-root ../shared/datasets
--split test|holdout --occlude-center` run; the records name that stored split so CI
(tests/model_accuracy.rs) can measure them again. The ONNX file, and so the card's sha256, is untouched.
"""
import json
import sys

CROSS_SOURCE = "cross-source (hannover-covid + nih-chestxray14-sample held out)"


def record(name, split, report_dir, card):
    with open(f"{report_dir}/metrics.json") as f:
        metrics = json.load(f)
    if metrics["model"]["sha256"] != card["sha256"]:
        sys.exit(f"{report_dir}: evaluated model {metrics['model']['sha256']}, the card is for {card['sha256']}")
    full, occluded = metrics["full"], metrics["occluded_center"]
    r4 = lambda x: round(x, 4)
    return {
        "name": name,
        "images": metrics["data"]["scored"],
        "auc": r4(full["auc"]["auc"]),
        "auc_ci95": [r4(full["auc"]["ci"]["lower"]), r4(full["auc"]["ci"]["upper"])],
        "sensitivity": r4(full["at_threshold"]["sensitivity"]["estimate"]),
        "specificity": r4(full["at_threshold"]["specificity"]["estimate"]),
        "auc_occluded_center": r4(occluded["auc"]["auc"]) if occluded and occluded.get("auc") else None,
        "stored_split": {"file": "splits/seed42.csv", "split": split},
    }


card_path, test_dir, holdout_dir = sys.argv[1:4]
with open(card_path) as f:
    card = json.load(f)
card["evaluations"] = [record("test", "test", test_dir, card), record(CROSS_SOURCE, "holdout", holdout_dir, card)]
with open(card_path, "w") as f:
    f.write(json.dumps(card, indent=2, ensure_ascii=False) + "\n")
