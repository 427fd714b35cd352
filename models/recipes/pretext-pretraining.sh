#!/usr/bin/env bash
# Lever (docs/within-source.md): chest-film features from a disease contrast that no collection
# confounds, before the contrast inside covid-chestxray-dataset is learnt.
#
#   bash models/recipes/pretext-pretraining.sh            # PRETEXT=viral, the default
#   PRETEXT=nih bash models/recipes/pretext-pretraining.sh
#
# Stage 1 trains EfficientNet-Lite0's last block and a new head, from ImageNet weights, on films of
# one hospital whose classes differ by disease alone, so the block can only gain by learning the
# look of the disease, not of a collection:
# - `viral`: Kermany's chest_xray, three classes: viral pneumonia (in the `covid` slot, the class
#   whose AUC picks the epoch), bacterial pneumonia (`pneumonia`) and normal films, the types read
#   from the file names. Viral against bacterial pneumonia is the contrast nearest to COVID-19
#   against the other pneumonias that make up most of the collection's non-COVID films. Children.
# - `nih`: the NIH ChestX-ray14 sample, adults: pneumonia (in the `covid` slot) against no finding.
# Only `train` and `val` films of the within-source manifest are used: the collection,
# hannover-covid and every copy of their films are held out there.
#
# Stage 2 starts the cross-fitting of within-source-cv.sh from that checkpoint instead of ImageNet's:
# `effnet-PRETEXT-frozen-only` trains a new head on the stage-1 block's features,
# `effnet-PRETEXT-partial-only` the block again and a new head. Compare them with the same
# procedures from ImageNet weights:
#
#   bash models/recipes/within-source-cv.sh effnet-frozen-only efficientnet-lite0 only \
#       --weights .torch/weights/efficientnet_lite0-imagenet.safetensors --freeze-base --epochs 30 --patience 5
#   bash models/recipes/within-source-cv.sh effnet-partial-only efficientnet-lite0 only \
#       --weights .torch/weights/efficientnet_lite0-imagenet.safetensors --freeze-base --unfreeze-from _blocks.15 \
#       --epochs 30 --patience 5
#   bash models/recipes/compare-within-source-cv.sh only effnet-partial-only effnet-viral-partial-only \
#       effnet-frozen-only effnet-viral-frozen-only -- --occlude-center
#
# PRETEXT_FROM (default `_blocks.15`) is the first layer stage 1 trains; an earlier one (`_blocks.11`,
# the first block of the 7 × 7 stage) adapts more of the base to chest films, and stage 2 still trains only
# the last block and the head. Its runs are named `effnet-PRETEXT-bNN-…`. TRAIN_SEED (default 42)
# seeds stage 2 only, as in within-source-cv.sh; stage 1 is trained once.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/prepare-within-source-folds.sh" only
bash scripts/fetch-weights.sh >/dev/null
pretext=${PRETEXT:-viral}
from=${PRETEXT_FROM:-_blocks.15}
[ "$from" = _blocks.15 ] || pretext="$pretext-b${from##*.}"
out=target/pretext-$pretext
mkdir -p "$out"
case "${PRETEXT:-viral}" in
    viral)
        # chest_xray's training and validation films, relabelled by the pneumonia type in their names.
        awk -F, -v OFS=, 'NR == 1 { print; next }
            $2 == "chest_xray" && ($11 == "train" || $11 == "val") {
                if ($1 ~ /_virus_/) $5 = "covid"; else if ($1 ~ /_bacteria_/) $5 = "pneumonia"
                print
            }' "$manifest" >"$out/manifest.csv"
        # Every pneumonia film must have a type; one named neither way stops it.
        awk -F, 'NR > 1 && $5 == "pneumonia" && $1 !~ /_bacteria_/ { print FILENAME ": untyped pneumonia film " $1; bad = 1 }
            END { exit bad }' "$out/manifest.csv"
        classes=three-class ;;
    nih)
        awk -F, -v OFS=, 'NR == 1 { print; next }
            $2 == "nih-chestxray14-sample" && ($11 == "train" || $11 == "val") {
                if ($5 == "pneumonia") $5 = "covid"
                print
            }' "$manifest" >"$out/manifest.csv"
        classes=binary ;;
    *) echo "pretext-pretraining.sh: PRETEXT is viral or nih, not $PRETEXT" >&2; exit 2 ;;
esac
[ -f "$out/pretext-$pretext.onnx" ] || target/release/cxr train --arch efficientnet-lite0 \
    --weights .torch/weights/efficientnet_lite0-imagenet.safetensors --freeze-base --unfreeze-from "$from" \
    --classes "$classes" --manifest "$out/manifest.csv" --out "$out" --name "pretext-$pretext" \
    --run-dir "$out/run" --epochs 30 --patience 5 --seed 42
stage1="$out/run/best.safetensors"
seed_suffix=""
[ "${TRAIN_SEED:-42}" = 42 ] || seed_suffix="-seed$TRAIN_SEED"
bash "$(dirname "${BASH_SOURCE[0]}")/within-source-cv.sh" "effnet-$pretext-frozen-only$seed_suffix" efficientnet-lite0 only \
    --weights "$stage1" --freeze-base --epochs 30 --patience 5
bash "$(dirname "${BASH_SOURCE[0]}")/within-source-cv.sh" "effnet-$pretext-partial-only$seed_suffix" efficientnet-lite0 only \
    --weights "$stage1" --freeze-base --unfreeze-from _blocks.15 --epochs 30 --patience 5
