#!/usr/bin/env bash
# Reproduces models/efficientnet-lite0-int8.onnx and its card from models/efficientnet-lite0.onnx (int8.sh), with percentile 99.99
# activation ranges as for the other transfer models. ~15 minutes after the build on 2 cores.
source "$(dirname "${BASH_SOURCE[0]}")/int8.sh" efficientnet-lite0 --calibration percentile:99.99
