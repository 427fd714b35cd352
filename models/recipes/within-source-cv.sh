#!/usr/bin/env bash
# Within-source cross-fitting (docs/within-source.md, levers table): patient-grouped 5-fold
# cross-validation inside covid-chestxray-dataset, the one collection with both classes, so that
# its own non-COVID films can train a model without any test film (or a copy of one) reaching it.
#
#   bash models/recipes/within-source-cv.sh NAME ARCH VARIANT [cxr train options…]
#
# VARIANT `only` trains each fold model on the collection's other folds alone (the contrast inside
# one collection); `all` adds every other collection's training films. One model per fold is
# trained, then `cxr eval --out-of-fold` scores every film of the collection with the model that
# did not see it and reports the pooled out-of-fold within-source AUC, the lungs-blacked-out AUC
# and the evidence inside the human lung masks. Models and reports stay under target/ and out/.
# `{fold}` in a train option becomes the fold's number (a per-fold lung field, say). TRAIN_SEED
# (default 42) seeds the fold models' training, not the folds: rerun with another to see how much
# of a difference between two procedures is the seed's.
name=$1 arch=$2 variant=$3
shift 3
source "$(dirname "${BASH_SOURCE[0]}")/prepare-within-source-folds.sh" "$variant"
out="target/within-source-cv/$name"
models=()
for k in 0 1 2 3 4; do
    [ -f "$out/$name-fold-$k.onnx" ] || target/release/cxr train --arch "$arch" --manifest "$folds/fold-$k.csv" \
        --out "$out" --name "$name-fold-$k" --run-dir "$out/run-$k" --seed "${TRAIN_SEED:-42}" "${@//\{fold\}/$k}"
    models+=(-m "$out/$name-fold-$k.onnx")
done
# The fold manifests with paths relative to the datasets root (as the stored splits are), so that
# the lung masks, listed relative to it too, find their films.
mkdir -p "$folds/relative"
for k in 0 1 2 3 4; do
    sed 's#^\.\./shared/datasets/##' "$folds/fold-$k.csv" >"$folds/relative/fold-$k.csv"
done
target/release/cxr eval --out-of-fold --data "$folds/relative" --data-root ../shared/datasets "${models[@]}" \
    --source covid-chestxray-dataset --occlude-center --lung-masks ../shared/annotations/lung-masks-v7/masks.csv \
    --report "out/eval-$name-cv"
