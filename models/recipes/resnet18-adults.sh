#!/usr/bin/env bash
# Reproduces resnet18-adults (not shipped; docs/within-source.md, levers table): ResNet-18 from scratch
# at 96 × 96 px on the within-source protocol's `adults` manifest (covid-chestxray-dataset,
# hannover-covid and Kermany's paediatric chest_xray held out; prepare-within-source.sh), the
# from-scratch settings of the shipped models but 10 epochs, then evaluates it within the held-out
# collection (all 520 films, and the 52 of them in the old test split) with the lung masks.
source "$(dirname "${BASH_SOURCE[0]}")/prepare-within-source.sh" adults
name=resnet18-adults
run="$work/run"
rm -rf "$run"
target/release/cxr train --arch resnet18 --image-size 96 --manifest "$manifest" --out "$work" --name "$name" \
    --run-dir "$run" --epochs 10 --batch-size 32 --lr 0.001 --seed 42 --patience 3
masks=../shared/annotations/lung-masks-v7/masks.csv
target/release/cxr eval --model "$work/$name.onnx" --data "models/splits/within-source-adults.csv" \
    --data-root ../shared/datasets --split holdout --source covid-chestxray-dataset --occlude-center \
    --lung-masks "$masks" --report "out/eval-$name-within-source"
target/release/cxr eval --model "$work/$name.onnx" --data models/splits/seed42.csv \
    --data-root ../shared/datasets --split test --source covid-chestxray-dataset --occlude-center \
    --lung-masks "$masks" --report "out/eval-$name-within-source-52"
