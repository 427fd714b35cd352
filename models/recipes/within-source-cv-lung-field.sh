#!/usr/bin/env bash
# The lung-field lever, cross-fitted (docs/within-source.md): for each fold of within-source-cv.sh,
# a lung segmenter is trained on the human lung masks of that fold's training and validation films
# only (the masks' leak rule: no test film's mask trains the segmenter that masks it), then the
# fold's classifier trains behind it, and the pooled out-of-fold evaluation follows.
#
#   bash models/recipes/within-source-cv-lung-field.sh NAME ARCH VARIANT [cxr train options…]
#
# The train options must include --weights and --freeze-base (the segmenter stays frozen).
name=$1 arch=$2 variant=$3
shift 3
source "$(dirname "${BASH_SOURCE[0]}")/prepare-within-source-folds.sh" "$variant"
fields="target/within-source-cv/lung-field-$arch-$variant"
for k in 0 1 2 3 4; do
    [ -f "$fields/fold-$k/lung-field.json" ] || target/release/cxr train-lung-field --arch "$arch" \
        --masks ../shared/annotations/lung-masks-v7/masks.csv --data-root ../shared/datasets \
        --manifest "$folds/fold-$k.csv" --out "$fields/fold-$k" --seed 42
done
exec bash "$(dirname "${BASH_SOURCE[0]}")/within-source-cv.sh" "$name" "$arch" "$variant" \
    --lung-field "$fields/fold-{fold}" "$@"
