#!/usr/bin/env bash
# Reproduces models/densenet121-scratch-int8.onnx and its card from models/densenet121-scratch.onnx
# (int8.sh), with percentile 99.99 activation ranges, as for the other deep networks. A few minutes
# after the build (96 px input).
source "$(dirname "${BASH_SOURCE[0]}")/int8.sh" densenet121-scratch --calibration percentile:99.99
