#!/usr/bin/env bash
# Sourced by the recipes, after prepare.sh, with $name set: evaluates models/$name.onnx on the committed
# splits (models/splits/seed42.csv) with the centre-occlusion shortcut check, reports in
# out/eval-$name-*, and records each evaluation in models/$name.card.json (`cxr eval --record`), naming
# the stored split CI re-scores: first within one source (the test split's covid-chestxray-dataset
# films, COVID-19 against other findings of the same collection), then the leak-free test split, then
# the cross-source holdout.
evaluate() {
    local record=$1 report=$2
    shift 2
    target/release/cxr eval --model "models/$name.onnx" --data models/splits/seed42.csv \
        --data-root ../shared/datasets --occlude-center --record "$record" --report "out/eval-$name-$report" "$@"
}
evaluate within-source within-source --split test --source covid-chestxray-dataset
evaluate test test --split test
evaluate "cross-source (hannover-covid + nih-chestxray14-sample held out)" holdout --split holdout
