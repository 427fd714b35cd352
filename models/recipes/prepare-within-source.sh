#!/usr/bin/env bash
# Sourced by the within-source recipes with VARIANT (`all` or `adults`): builds cxr with training and
# makes the manifest of the within-source protocol. Its test is one collection that has both classes,
# held out whole: covid-chestxray-dataset (COVID-19 against other pneumonias and normal films of the
# same collection), with hannover-covid held out too, for sensitivity on a hospital never seen. Copies
# of held-out films in other collections are `excluded`, so none reaches training. `adults` also holds
# out Kermany's paediatric chest_xray (and with it its copies in covid19-radiography/Normal), so that
# no negative the network trains on is a child's film. Split seed 42. Sets $manifest and writes the
# stored split models/splits/within-source-$VARIANT.csv (test and holdout rows, paths relative to the
# datasets root) for the evaluations.
set -euo pipefail
variant=$1
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

bash scripts/setup-torch.sh >/dev/null
source .torch/env.sh
cargo build --release --features train

holdout=(--holdout-source covid-chestxray-dataset --holdout-source hannover-covid)
case "$variant" in
    all) ;;
    adults) holdout+=(--holdout-source chest_xray) ;;
    *) echo "prepare-within-source.sh: VARIANT is all or adults, not $variant" >&2; exit 2 ;;
esac
work="target/within-source-$variant"
manifest="$work/manifest.csv"
mkdir -p "$work"
[ -f "$manifest" ] || target/release/cxr data index ../shared/datasets --seed 42 "${holdout[@]}" --out "$manifest"
# The stored split: the rows no model of this protocol trained on, paths relative to the datasets root.
awk -F, 'NR == 1 || $11 == "test" || $11 == "holdout"' "$manifest" \
    | sed 's#^\.\./shared/datasets/##' >"models/splits/within-source-$variant.csv"
