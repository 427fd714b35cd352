#!/usr/bin/env bash
# Reproduces models/seed-cnn-int8.onnx and its card from models/seed-cnn.onnx (int8.sh), with min/max
# activation ranges: clipping outliers loses on a network this small (README, "Training").
# A few minutes after the build.
source "$(dirname "${BASH_SOURCE[0]}")/int8.sh" seed-cnn
