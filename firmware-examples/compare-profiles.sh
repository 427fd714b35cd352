#!/usr/bin/env bash
# Measures the `pi` profile against its alternatives, the numbers behind firmware-examples/README.md
# section 5: builds cxr-minimal under each variant, then reports per variant the build time, the
# stripped binary size per target, and the time per image on this machine (interleaved rounds over
# the same 20 real X-rays, the embedded default model and seed-cnn-int8). Only the host binaries are
# timed: qemu timings say nothing about a Pi's speed.
#
# Usage: bash firmware-examples/compare-profiles.sh [ROUNDS]   (default 5 rounds)
# Environment: CXR_PROFILE_TARGETS (default: this machine's target and aarch64-unknown-linux-musl),
# CXR_PROFILE_VARIANTS (default: all names below), CXR_DATASETS (default ../shared/datasets).
# Each variant builds into target/profile-compare/VARIANT; the report goes to stdout and to
# target/profile-compare/report.md.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/sample-xrays.sh
source scripts/sample-xrays.sh

rounds=${1:-5}
datasets="${CXR_DATASETS:-../shared/datasets}"
host=$(rustc -vV | sed -n 's/^host: //p')
read -r -a targets <<<"${CXR_PROFILE_TARGETS:-$host aarch64-unknown-linux-musl}"
other=models/seed-cnn-int8.onnx
out=target/profile-compare
mkdir -p "$out"

# Each variant is the `pi` profile with cargo's environment overrides on top.
declare -A overrides=(
    [pi]=""
    [release-settings]="CARGO_PROFILE_PI_LTO=thin CARGO_PROFILE_PI_CODEGEN_UNITS=4"
    [no-lto]="CARGO_PROFILE_PI_LTO=false CARGO_PROFILE_PI_CODEGEN_UNITS=16"
    [opt-s]="CARGO_PROFILE_PI_OPT_LEVEL=s"
    [opt-z]="CARGO_PROFILE_PI_OPT_LEVEL=z"
)
read -r -a variants <<<"${CXR_PROFILE_VARIANTS:-pi release-settings no-lto opt-s opt-z}"
for v in "${variants[@]}"; do
    [ -n "${overrides[$v]+set}" ] || { echo "compare-profiles.sh: unknown variant $v (known: ${!overrides[*]})" >&2; exit 1; }
done

declare -A build_s size_mb
for v in "${variants[@]}"; do
    for t in "${targets[@]}"; do
        start=$SECONDS
        # shellcheck disable=SC2086 # the overrides are VAR=value words
        env ${overrides[$v]} CARGO_TARGET_DIR="$out/$v" cargo build -q --profile pi --target "$t" -p cxr-minimal
        build_s[$v,$t]=$(( SECONDS - start ))
        size_mb[$v,$t]=$(awk -v b="$(stat -c %s "$out/$v/$t/pi/cxr-minimal")" 'BEGIN { printf "%.1f", b / 1048576 }')
        echo "compare-profiles.sh: $v for $t: ${size_mb[$v,$t]} MB, built in ${build_s[$v,$t]} s" >&2
    done
done

images=$(mktemp -d)
trap 'rm -rf "$images"' EXIT
sample_xrays "$datasets" "$images" 5

# score VARIANT [MODEL]: runs the variant's host binary once per image; prints the outputs
# (its per-run notice on stderr goes to a log).
score() {
    local bin="$out/$1/$host/pi/cxr-minimal" f
    for f in "$images"/*; do
        "$bin" ${2:+--model "$2"} "$f" 2>>"$out/stderr.log"
    done
}

# The outputs must not depend on the profile: every variant against `pi`'s, first of all.
reference=${variants[0]}
for model in "" "$other"; do
    score "$reference" "$model" >"$out/outputs-$reference"
    for v in "${variants[@]:1}"; do
        score "$v" "$model" >"$out/outputs-$v"
        cmp -s "$out/outputs-$reference" "$out/outputs-$v" ||
            echo "compare-profiles.sh: $v and $reference print different results${model:+ with $model} (see $out/outputs-*)" >&2
    done
done

# Interleaved rounds, the variant order rotating each round; milliseconds per image.
declare -A times
n_images=$(find "$images" -type f | wc -l)
for ((r = 0; r < rounds; r++)); do
    for ((i = 0; i < ${#variants[@]}; i++)); do
        v=${variants[$(( (i + r) % ${#variants[@]} ))]}
        for model in embedded "$other"; do
            t0=$(date +%s%N)
            score "$v" "${model#embedded}" >/dev/null
            times[$v,$model]+="$(( ($(date +%s%N) - t0) / n_images / 1000 )) "
        done
    done
done
median_ms() { tr ' ' '\n' | grep . | sort -n | awk '{ a[NR] = $1 } END { m = NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2; printf "%.1f", m / 1000 }'; }

{
    echo "cxr-minimal per profile variant; $(uname -m), $(nproc) cores, $rounds interleaved rounds of $n_images X-rays, one process per image."
    echo
    header="| variant |"; rule="|---|"
    for t in "${targets[@]}"; do header+=" size, $t | build, $t |"; rule+="---|---|"; done
    echo "$header ms/image, embedded default | ms/image, $(basename "$other" .onnx) | ratio to ${reference} (default / other) |"
    echo "$rule---|---|---|"
    ref_default=$(median_ms <<<"${times[$reference,embedded]}")
    ref_other=$(median_ms <<<"${times[$reference,$other]}")
    for v in "${variants[@]}"; do
        row="| $v |"
        for t in "${targets[@]}"; do row+=" ${size_mb[$v,$t]} MB | ${build_s[$v,$t]} s |"; done
        default=$(median_ms <<<"${times[$v,embedded]}")
        other_ms=$(median_ms <<<"${times[$v,$other]}")
        ratio=$(awk -v a="$default" -v b="$ref_default" -v c="$other_ms" -v d="$ref_other" 'BEGIN { printf "%.2f× / %.2f×", a / b, c / d }')
        echo "$row $default | $other_ms | $ratio |"
    done
} | tee "$out/report.md"
