#!/usr/bin/env bash
# Reproduces models/efficientnet-lite0.onnx and its card: EfficientNet-Lite0 with Google's ImageNet
# weights (scripts/fetch-weights.sh) as a frozen base, a new head on its 1,280 pooled features,
# 224 px. How the frozen-base recipe trains and evaluates: frozen-base.sh.
source "$(dirname "${BASH_SOURCE[0]}")/frozen-base.sh" efficientnet-lite0 efficientnet-lite0 efficientnet_lite0-imagenet.safetensors
