#!/usr/bin/env bash
# Out-of-fold teacher scores for distillation inside covid-chestxray-dataset (docs/within-source.md,
# distillation): for every outer fold k of the `only` folds and every other fold j, a teacher trains
# on the collection's films outside folds k and j (picking its epoch on the fold's validation films
# outside j) and scores fold j's films. Fold k's training films thus each get a P(covid) from a model
# that saw neither them nor fold k's test films:
#
#   bash models/recipes/nested-teachers.sh RUN [teacher cxr train options…]
#
# writes target/within-source-cv/RUN/soft-fold-{0..4}.csv (`cxr score`'s format), for
#
#   bash models/recipes/within-source-cv.sh NAME ARCH only \
#       --soft-targets target/within-source-cv/RUN/soft-fold-{fold}.csv [student options…]
#
# A teacher's scores of films it trained on are its labels again, and of other collections' films
# meaningless (it learnt "unlike this collection's non-COVID films"), so these are the only scores
# a student can learn a ranking from. 20 teachers; with a frozen base their features are computed
# once (--feature-dir).
run=$1
shift
source "$(dirname "${BASH_SOURCE[0]}")/prepare-within-source-folds.sh" only
out="target/within-source-cv/$run"
mkdir -p "$out/manifests"
for k in 0 1 2 3 4; do
    soft="$out/soft-fold-$k.csv"
    [ -f "$soft" ] && continue
    parts=()
    for j in 0 1 2 3 4; do
        [ "$j" = "$k" ] && continue
        # Fold k's manifest with fold k's films set aside and fold j's films made the test split.
        manifest_kj="$out/manifests/fold-$k-without-$j.csv"
        awk -F, -v OFS=, 'NR == FNR { if ($NF == "test") held[$1] = 1; next }
            FNR == 1 { print; next }
            $NF == "test" { $NF = "excluded" }
            $1 in held { $NF = "test" }
            { print }' "$folds/fold-$j.csv" "$folds/fold-$k.csv" >"$manifest_kj"
        teacher="$out/$run-$k-$j.onnx"
        [ -f "$teacher" ] || target/release/cxr train --manifest "$manifest_kj" --out "$out" --name "$run-$k-$j" \
            --run-dir "$out/run-$k-$j" --feature-dir "$out/features" --seed "${TRAIN_SEED:-42}" "$@"
        target/release/cxr score -m "$teacher" --split test "$manifest_kj" --out "$out/scores-$k-$j.csv"
        parts+=("$out/scores-$k-$j.csv")
    done
    { head -n 1 "${parts[0]}"; for p in "${parts[@]}"; do tail -n +2 "$p"; done; } >"$soft.partial"
    mv "$soft.partial" "$soft"
done
