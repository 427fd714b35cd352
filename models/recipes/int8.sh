#!/usr/bin/env bash
# Sourced by the int8 recipes with FP32_NAME [QUANTIZE ARGS…]: post-training static quantization of
# models/FP32_NAME.onnx into models/FP32_NAME-int8.onnx (QLinearConv, MatMulInteger) with its card.
# Activation ranges come from 256 training images drawn with seed 42 from the manifest every shipped
# model shares; `cxr quantize` then scores the validation split with both models, records how far
# int8 moved the probabilities and picks the int8 threshold. The int8 model is then evaluated on the
# test and cross-source splits like its fp32 model (evaluate.sh). No GPU, no libtorch at run time.
fp32=$1
shift
source "$(dirname "${BASH_SOURCE[0]}")/prepare.sh"

name="$fp32-int8"
target/release/cxr quantize "models/$fp32.onnx" --manifest "$manifest" \
    --out "models/$name.onnx" --calibration-images 256 --seed 42 "$@"
source "$(dirname "${BASH_SOURCE[0]}")/evaluate.sh"
