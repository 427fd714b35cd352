#!/usr/bin/env bash
# Reproduces models/mobilenet-v2-fine-tuned-int8.onnx and its card from models/mobilenet-v2-fine-tuned.onnx (int8.sh), with
# percentile 99.99 activation ranges: clipping outliers helps a network this deep (README, "Training").
# ~15 minutes after the build on 2 cores (x86 runs its integer products as float: cxr_infer::int8_float).
source "$(dirname "${BASH_SOURCE[0]}")/int8.sh" mobilenet-v2-fine-tuned --calibration percentile:99.99
