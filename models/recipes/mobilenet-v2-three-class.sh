#!/usr/bin/env bash
# Reproduces models/mobilenet-v2-three-class.onnx and its card: the mobilenet-v2 recipe with a
# three-way head (covid / normal / pneumonia, softmax) on the same frozen ImageNet base. It trains
# on the backbone features mobilenet-v2.sh cached (target/features/mobilenet-v2), so after that
# recipe it takes minutes; alone it first runs the backbone (~30 minutes on 2 cores).
source "$(dirname "${BASH_SOURCE[0]}")/frozen-base.sh" mobilenet-v2-three-class mobilenet-v2 mobilenet_v2-imagenet.safetensors --classes three-class
