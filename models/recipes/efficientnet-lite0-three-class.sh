#!/usr/bin/env bash
# Reproduces models/efficientnet-lite0-three-class.onnx and its card: the efficientnet-lite0 recipe
# with a three-way head (covid / normal / pneumonia, softmax) on the same frozen ImageNet base. It
# trains on the backbone features efficientnet-lite0.sh cached (target/features/efficientnet-lite0),
# so after that recipe it takes minutes; alone it first runs the backbone (~30 minutes on 2 cores).
source "$(dirname "${BASH_SOURCE[0]}")/frozen-base.sh" efficientnet-lite0-three-class efficientnet-lite0 efficientnet_lite0-imagenet.safetensors --classes three-class
