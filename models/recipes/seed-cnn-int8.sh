#!/usr/bin/env bash
# Reproduces models/seed-cnn-int8.onnx and its card from models/seed-cnn.onnx: post-training static
# quantization (QLinearConv, MatMulInteger), activation ranges from 256 training images drawn with
# seed 42 from the manifest seed-cnn was trained on; the validation split compares int8 with fp32 and
# picks the int8 threshold. No GPU; a few minutes after the build.
source "$(dirname "${BASH_SOURCE[0]}")/prepare.sh"

target/release/cxr quantize models/seed-cnn.onnx --manifest "$manifest" \
    --out models/seed-cnn-int8.onnx --calibration-images 256 --seed 42
