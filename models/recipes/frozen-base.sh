#!/usr/bin/env bash
# Sourced by the transfer recipes with NAME ARCH WEIGHTS [TRAIN ARGS…]: trains ARCH with the ImageNet
# weights in .torch/weights/WEIGHTS as a frozen base and a new head (the seed's transfer setting) on
# the train split of the manifest every shipped model shares (prepare.sh), exports models/NAME.onnx
# with its card, then evaluates it on the committed test and cross-source holdout splits with the
# centre-occlusion shortcut check and records those evaluations in the card.
#
# --freeze-base runs the backbone once over every train and val image (no augmentation: augmented
# images would need their features recomputed every epoch) and caches the pooled features per image
# in target/features/ARCH (features-<key>.safetensors, keyed by the weights' and manifest's sha256
# and the preprocessing, not the class set: the binary and three-class heads of one backbone share
# them), then trains only the head on them with Adam, class-balanced loss, early
# stopping on validation AUC and the best checkpoint kept. The exported ONNX is the whole network.
# Training seed 42, CPU, the architecture's own input size. A recipe may set the array `schedule`
# before sourcing this to replace the default epochs, learning rate and patience.
name=$1 arch=$2 weights=$3
shift 3
train_args=("$@")
[ -v schedule ] || schedule=(--epochs 30 --lr 0.001 --patience 5)
source "$(dirname "${BASH_SOURCE[0]}")/prepare.sh"

bash scripts/fetch-weights.sh
run="target/$name/run"
rm -rf "$run"
target/release/cxr train --arch "$arch" --weights ".torch/weights/$weights" \
    --freeze-base --feature-dir "target/features/$arch" --manifest "$manifest" --out models --name "$name" \
    --run-dir "$run" --batch-size 32 --seed 42 "${schedule[@]}" ${train_args[@]+"${train_args[@]}"}

source "$(dirname "${BASH_SOURCE[0]}")/evaluate.sh"
