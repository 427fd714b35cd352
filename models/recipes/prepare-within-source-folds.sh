#!/usr/bin/env bash
# Sourced by the cross-fitting recipes with VARIANT (`only` or `all`): prepares the within-source
# manifest (prepare-within-source.sh all) and splits covid-chestxray-dataset into 5 patient-grouped
# folds with `cxr data folds` (seed 42; `only` excludes every other collection). Sets $manifest and
# $folds, the folder of fold-0.csv … fold-4.csv.
# prepare-within-source.sh sets its own `variant`; the caller's is put back after it.
fold_variant=$1
source "$(dirname "${BASH_SOURCE[0]}")/prepare-within-source.sh" all
variant=$fold_variant
folds="target/within-source-cv/$variant"
case "$variant" in
    only) only=(--only-source) ;;
    all) only=() ;;
    *) echo "prepare-within-source-folds.sh: VARIANT is only or all, not $variant" >&2; exit 2 ;;
esac
[ -f "$folds/fold-4.csv" ] || target/release/cxr data folds "$manifest" --source covid-chestxray-dataset \
    --folds 5 --seed 42 ${only[@]+"${only[@]}"} --out "$folds"
