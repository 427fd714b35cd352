#!/usr/bin/env bash
# Reproduces models/mobilenet-v2-three-class-int8.onnx and its card from models/mobilenet-v2-three-class.onnx (int8.sh), with percentile 99.99
# activation ranges as for the other transfer models. ~15 minutes after the build on 2 cores.
source "$(dirname "${BASH_SOURCE[0]}")/int8.sh" mobilenet-v2-three-class --calibration percentile:99.99
