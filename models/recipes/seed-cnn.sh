#!/usr/bin/env bash
# Reproduces models/seed-cnn.onnx and models/seed-cnn.card.json: the seed paper's CNN trained on the
# train split of a leak-free manifest of ../shared/datasets, with hannover-covid and
# nih-chestxray14-sample held out entirely for cross-source testing. CPU; split seed 42, training seed 42.
# Run from anywhere. The shipped weights are epoch 3 (best validation AUC) of 4 epochs; an epoch took
# 270–470 s on a busy 2-core x86 box, so this takes ~25 minutes after the build. More epochs (up to
# --epochs 20 with early stopping, patience 5) will likely give a better model.
source "$(dirname "${BASH_SOURCE[0]}")/prepare.sh"

rm -rf "$work/run"
target/release/cxr train --arch seed-cnn --manifest "$manifest" --out models --name seed-cnn \
    --run-dir "$work/run" --epochs 4 --batch-size 32 --lr 0.001 --seed 42 --patience 5
