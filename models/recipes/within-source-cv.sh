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
#
# DISTILL_FROM=RUN (a run of this recipe, variant `only`) distils instead: each fold's model trains
# on the fold's films of the collection plus DISTILL_POOL (default 2000) training films of the
# other collections drawn at random (copies of the collection's films are never among them), and
# its loss aims at the P(covid) that RUN's model of the same fold gives each of them (`cxr score`,
# then `cxr train --soft-targets`), so no teacher or student of a fold sees that fold's test films.
# It does not work (docs/within-source.md, Distillation): a teacher trained inside the collection
# calls nearly every film of the other collections COVID. Out-of-fold scores of the collection's own
# films (nested-teachers.sh, then --soft-targets …/soft-fold-{fold}.csv) are the ones to distil from.
name=$1 arch=$2 variant=$3
shift 3
source "$(dirname "${BASH_SOURCE[0]}")/prepare-within-source-folds.sh" "$variant"
out="target/within-source-cv/$name"
models=()
for k in 0 1 2 3 4; do
    manifest_k="$folds/fold-$k.csv" distill=()
    if [ -n "${DISTILL_FROM:-}" ] && [ ! -f "$out/$name-fold-$k.onnx" ]; then
        [ -f target/within-source-cv/all/fold-$k.csv ] || bash "$(dirname "${BASH_SOURCE[0]}")/prepare-within-source-folds.sh" all
        mkdir -p "$out/pool"
        manifest_k="$out/pool/fold-$k.csv"
        { cat "$folds/fold-$k.csv"
          awk -F, 'NR > 1 && $NF == "train" && $2 != "covid-chestxray-dataset"' \
              "target/within-source-cv/all/fold-$k.csv" | shuf -n "${DISTILL_POOL:-2000}" --random-source=<(yes "$k")
        } >"$manifest_k"
        target/release/cxr score -m "target/within-source-cv/$DISTILL_FROM/$DISTILL_FROM-fold-$k.onnx" --split train \
            "$manifest_k" --out "$out/pool/teacher-fold-$k.csv"
        distill=(--soft-targets "$out/pool/teacher-fold-$k.csv")
    fi
    [ -f "$out/$name-fold-$k.onnx" ] || target/release/cxr train --arch "$arch" --manifest "$manifest_k" \
        --out "$out" --name "$name-fold-$k" --run-dir "$out/run-$k" --seed "${TRAIN_SEED:-42}" \
        ${distill[@]+"${distill[@]}"} "${@//\{fold\}/$k}"
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
