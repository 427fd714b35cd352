#!/usr/bin/env bash
# Reproduces models/efficientnet-lite0-fine-tuned.onnx and its card: EfficientNet-Lite0 from Google's
# ImageNet weights with the base frozen only up to its last block, `_blocks.15`; that block, the
# 1,280-channel head convolution and a new one-logit head train (partial fine-tuning) on the cached
# 7×7×192 output of `_blocks.14`, with Adam at lr 3e-4. Caching that map costs one backbone pass
# (~30 minutes on 2 cores, target/features/efficientnet-lite0); no augmentation, as for any cached
# input. The rest is the frozen-base recipe (frozen-base.sh).
schedule=(--epochs 15 --lr 0.0003 --patience 3)
source "$(dirname "${BASH_SOURCE[0]}")/frozen-base.sh" efficientnet-lite0-fine-tuned efficientnet-lite0 efficientnet_lite0-imagenet.safetensors --unfreeze-from _blocks.15
