#!/usr/bin/env bash
# Sourced by the from-scratch recipes with NAME ARCH EPOCHS: trains ARCH from random weights (no
# ImageNet features), whole, with the seed's augmentation, at 96×96 px so that a 2-core CPU trains it
# at all (the card's preprocess records the input size), on the train split of the manifest every
# shipped model shares (prepare.sh). Adam at lr 0.001, batch 32, class-balanced loss, early stopping
# on validation AUC (patience 3) with the best epoch kept, training seed 42; then exports
# models/NAME.onnx with its card and evaluates it like every shipped model (evaluate.sh).
name=$1 arch=$2 epochs=$3
source "$(dirname "${BASH_SOURCE[0]}")/prepare.sh"

run="target/$name/run"
rm -rf "$run"
target/release/cxr train --arch "$arch" --image-size 96 --manifest "$manifest" --out models --name "$name" \
    --run-dir "$run" --epochs "$epochs" --batch-size 32 --lr 0.001 --seed 42 --patience 3
source "$(dirname "${BASH_SOURCE[0]}")/evaluate.sh"
