# Sourced by the recipes: builds cxr with training and makes the manifest every shipped model
# shares (split seed 42; hannover-covid and nih-chestxray14-sample held out whole for the
# cross-source test). Sets $manifest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

bash scripts/setup-torch.sh >/dev/null
source .torch/env.sh
cargo build --release --features train

work=target/seed-cnn
manifest="$work/manifest.csv"
mkdir -p "$work"
[ -f "$manifest" ] || target/release/cxr data index ../shared/datasets --seed 42 \
    --holdout-source hannover-covid --holdout-source nih-chestxray14-sample --out "$manifest"
