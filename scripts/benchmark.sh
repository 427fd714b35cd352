#!/usr/bin/env bash
# Reproduces BENCHMARKS.md: cxr (tract) side by side with onnxruntime (PyPI, one thread and all
# threads) and libtorch (tch) on the same ONNX files and images, folder scoring against a plain
# Python PIL + onnxruntime script, and cold start — all measured in one interleaved run.
#
#   bash scripts/benchmark.sh            # ~10 min on 2 cores once built; ROUNDS=9 for steadier medians
#
# Installs what it needs: onnxruntime, Pillow and numpy into .venv (gitignored), libtorch 2.13
# into .torch (scripts/setup-torch.sh), MobileNetV2 ImageNet weights (scripts/fetch-weights.sh).
# Not part of CI (scripts/test.sh runs the Criterion benches once and the accuracy check instead).
# Run it when the machine is otherwise idle: `uptime` before and after is recorded in the report.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/pip install --quiet --disable-pip-version-check onnxruntime pillow numpy

bash scripts/setup-torch.sh >/dev/null
bash scripts/fetch-weights.sh >/dev/null
# shellcheck source=/dev/null
source .torch/env.sh

# The cxr binary (embedding models/DEFAULT) and the libtorch examples, release builds.
cargo build --release --quiet
cargo build --release --quiet -p cxr-train --example tch_latency --example bench_model

# An architecture with no shipped model yet is exported for timing only (untrained head).
if ! grep -qs '"architecture": "mobilenet-v2"' models/*.card.json; then
    target/release/examples/bench_model --arch mobilenet-v2 --out target/bench-models \
        --weights .torch/weights/mobilenet_v2-imagenet.safetensors >/dev/null
fi

CXR_BENCH_MODELS=target/bench-models .venv/bin/python scripts/benchmark_report.py \
    --rounds "${ROUNDS:-5}" --out BENCHMARKS.md "$@"
