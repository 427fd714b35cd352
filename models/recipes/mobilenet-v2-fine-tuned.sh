#!/usr/bin/env bash
# Reproduces models/mobilenet-v2-fine-tuned.onnx and its card: torchvision's MobileNetV2 from its
# ImageNet weights with the base frozen only up to its last inverted-residual block, `features.17`;
# that block, the 1,280-channel `features.18` convolution and a new one-logit head train (partial
# fine-tuning) on the cached 7×7×160 output of `features.16`, with Adam at lr 3e-4. Caching that map
# costs one backbone pass (~30 minutes on 2 cores, target/features/mobilenet-v2); no augmentation,
# as for any cached input. The rest is the frozen-base recipe (frozen-base.sh).
schedule=(--epochs 15 --lr 0.0003 --patience 3)
source "$(dirname "${BASH_SOURCE[0]}")/frozen-base.sh" mobilenet-v2-fine-tuned mobilenet-v2 mobilenet_v2-imagenet.safetensors --unfreeze-from features.17
