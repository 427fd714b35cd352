#!/usr/bin/env bash
# Reproduces models/resnet18-scratch-int8.onnx and its card from models/resnet18-scratch.onnx (int8.sh),
# with min/max activation ranges. A few minutes after the build (96 px input).
source "$(dirname "${BASH_SOURCE[0]}")/int8.sh" resnet18-scratch
