#!/usr/bin/env bash
# Reproduces models/densenet121-scratch.onnx and its card: torchvision's DenseNet-121 trained from
# scratch (no ImageNet weights; the seed's "DenseNet" row) on the train split of the manifest every
# shipped model shares, at 96×96 like resnet18-scratch so that a 2-core CPU trains it at all (the
# card's preprocess records the input size). Augmentation on, Adam, class-balanced loss, training
# seed 42. Two epochs, a CPU budget rather than early stopping: an epoch took 28–42 minutes on the
# 2-core machine (shared with other jobs), four to six times resnet18-scratch's, and validation AUC
# was still rising (0.867, then 0.919); there is no learning-rate schedule, so more epochs extend
# this run. Then evaluated like every shipped model (evaluate.sh).
source "$(dirname "${BASH_SOURCE[0]}")/prepare.sh"

name=densenet121-scratch
run="target/$name/run"
rm -rf "$run"
target/release/cxr train --arch densenet121 --image-size 96 --manifest "$manifest" --out models --name "$name" \
    --run-dir "$run" --epochs 2 --batch-size 32 --lr 0.001 --seed 42 --patience 3
source "$(dirname "${BASH_SOURCE[0]}")/evaluate.sh"
