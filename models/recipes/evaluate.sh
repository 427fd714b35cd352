#!/usr/bin/env bash
# Sourced by the recipes, after prepare.sh, with $name set: evaluates models/$name.onnx on the
# committed test and cross-source holdout splits (models/splits/seed42.csv) with the centre-occlusion
# shortcut check, reports in out/eval-$name-{test,holdout}, and records both evaluations in
# models/$name.card.json, naming the stored split CI re-scores.
for split in test holdout; do
    target/release/cxr eval --model "models/$name.onnx" --data models/splits/seed42.csv \
        --data-root ../shared/datasets --split "$split" --occlude-center --report "out/eval-$name-$split"
done
python3 models/recipes/record-evaluations.py "models/$name.card.json" \
    "out/eval-$name-test" "out/eval-$name-holdout"
