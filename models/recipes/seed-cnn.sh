#!/usr/bin/env bash
# Reproduces models/seed-cnn.onnx and models/seed-cnn.card.json: the seed paper's CNN trained on the
# train split of a leak-free manifest of ../shared/datasets, with hannover-covid and
# nih-chestxray14-sample held out entirely for cross-source testing. CPU; split seed 42, training seed 42.
# Run from anywhere. The shipped weights are epoch 13 (best validation AUC, 0.956) of 18 epochs:
# early stopping ended the run after 5 epochs without a better one. An epoch took 150–230 s on the
# 2-core x86 box with other work beside it, so this takes about an hour after the build.
source "$(dirname "${BASH_SOURCE[0]}")/prepare.sh"

rm -rf "$work/run"
target/release/cxr train --arch seed-cnn --manifest "$manifest" --out models --name seed-cnn \
    --run-dir "$work/run" --epochs 20 --batch-size 32 --lr 0.001 --seed 42 --patience 5
name=seed-cnn
source "$(dirname "${BASH_SOURCE[0]}")/evaluate.sh"
