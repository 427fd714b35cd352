#!/usr/bin/env bash
# Reproduces models/resnet18-scratch.onnx and its card: torchvision's ResNet-18 trained from scratch
# (no ImageNet weights; the seed's "ResNet" row) on the train split of the manifest every shipped
# model shares, at 96×96 instead of 224×224 so that a 2-core CPU trains it in minutes per epoch
# (the card's preprocess records the input size). Augmentation on, Adam, class-balanced loss, early
# stopping on validation AUC with the best epoch kept; training seed 42. Then evaluated like every
# shipped model (evaluate.sh).
source "$(dirname "${BASH_SOURCE[0]}")/prepare.sh"

name=resnet18-scratch
run="target/$name/run"
rm -rf "$run"
target/release/cxr train --arch resnet18 --image-size 96 --manifest "$manifest" --out models --name "$name" \
    --run-dir "$run" --epochs 8 --batch-size 32 --lr 0.001 --seed 42 --patience 3
source "$(dirname "${BASH_SOURCE[0]}")/evaluate.sh"
