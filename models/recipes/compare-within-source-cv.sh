#!/usr/bin/env bash
# Paired comparison of cross-fitting procedures (docs/within-source.md): the fold models of runs of
# within-source-cv.sh (or within-source-cv-lung-field.sh), scored on the same films of
# covid-chestxray-dataset, each film by its own fold's model of every run. Every run after the
# first is compared with the first: the difference of the pooled out-of-fold AUCs with DeLong's
# paired 95 % interval, which is far narrower than two separate intervals, so it says whether a
# lever (or a training seed) moved the AUC.
#
#   bash models/recipes/compare-within-source-cv.sh VARIANT BASE OTHER [OTHER…] [-- cxr eval options]
#
# VARIANT is the runs' fold variant (`only` or `all`); BASE and OTHER are run names (folders under
# target/within-source-cv/). Reports go to out/compare-BASE/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
# cxr is built with training, so it loads libtorch.
source .torch/env.sh
variant=$1
shift
runs=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do runs+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
[ ${#runs[@]} -ge 2 ] || { echo "usage: compare-within-source-cv.sh VARIANT BASE OTHER [OTHER…] [-- eval options]" >&2; exit 2; }
folds="target/within-source-cv/$variant/relative"
[ -f "$folds/fold-4.csv" ] || { echo "$folds: no fold manifests; run within-source-cv.sh first" >&2; exit 1; }
models=()
for run in "${runs[@]}"; do
    for k in 0 1 2 3 4; do
        model="target/within-source-cv/$run/$run-fold-$k.onnx"
        [ -f "$model" ] || { echo "$model: missing; train $run with within-source-cv.sh" >&2; exit 1; }
        models+=(-m "$model")
    done
done
target/release/cxr eval --out-of-fold --data "$folds" --data-root ../shared/datasets "${models[@]}" \
    --source covid-chestxray-dataset --report "out/compare-${runs[0]}" "$@"
