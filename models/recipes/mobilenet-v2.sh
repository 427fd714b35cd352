#!/usr/bin/env bash
# Reproduces models/mobilenet-v2.onnx and its card: torchvision's MobileNetV2 with its ImageNet
# weights (scripts/fetch-weights.sh) as a frozen base, a new head on its 1,280 pooled features,
# 224 px. How the frozen-base recipe trains and evaluates: frozen-base.sh. Backbone feature
# extraction over the 12,646 train and val images took ~32 minutes on the busy 2-core x86
# development box; the head's epochs take about a second each (the run's epochs.csv).
source "$(dirname "${BASH_SOURCE[0]}")/frozen-base.sh" mobilenet-v2 mobilenet-v2 mobilenet_v2-imagenet.safetensors
