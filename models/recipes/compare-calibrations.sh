#!/usr/bin/env bash
# Measures how far int8 moves a model's validation probabilities under each activation calibration
# (README, "Training"): quantizes MODEL with 256 training images (seed 42) per method into
# target/calibrations/ and prints `cxr quantize`'s comparison with fp32 on COMPARE validation
# images. Nothing in models/ changes.
#
#   bash models/recipes/compare-calibrations.sh models/mobilenet-v2.onnx 200
source "$(dirname "${BASH_SOURCE[0]}")/prepare.sh"
model=${1:?usage: compare-calibrations.sh MODEL.onnx [COMPARE_IMAGES]}
compare=${2:-200}
out=target/calibrations
mkdir -p "$out"
stem=$(basename "$model" .onnx)
for calibration in min-max percentile:99.99 percentile:99.9; do
    echo "== $stem, $calibration"
    target/release/cxr quantize "$model" --manifest "$manifest" --calibration "$calibration" \
        --compare-images "$compare" --out "$out/$stem-${calibration//[:.]/_}.onnx" --seed 42 >/dev/null
done
