#!/usr/bin/env bash
# Does int8 pay on a Raspberry Pi? A PROXY, not a timing: guest instructions executed per
# inference, counted under qemu-user, for each shipped fp32 file against its int8 twin, on the CPUs
# of 64-bit Raspberry Pi OS (Pi 3 Cortex-A53, Pi 4 Cortex-A72, Pi 5 Cortex-A76) and 32-bit
# Raspberry Pi OS (armv7 NEON). Prints a markdown table (BENCHMARKS.md, section "ARM: int8 against
# fp32 by instruction count (a proxy)").
#
# Why a proxy: there is no board to time on. An instruction count ignores memory stalls, caches,
# issue width and each SIMD instruction's latency and throughput on the real core, so it is not
# time; but int8 NEON kernels do 4x the multiply-adds of f32 ones per 128-bit instruction (16 x 8
# bits against 4 x 32), so whether the int8 file needs fewer instructions than the fp32 one is a
# fair first-order answer to whether it can be faster. A board has the last word.
#
# What is counted: the whole `cxr bench -m MODEL --runs N -j 1 --image IMAGE` process, once with
# --runs 1 and once with --runs $CXR_ARM_COUNT_RUNS (default 21), under qemu with a TCG plugin
# (scripts/qemu-insn-count/insn_count.c) that adds up every executed guest instruction. Loading,
# preprocessing, the first inference and the throughput phase are the same in both processes, so
# (count_N - count_1) / (N - 1) is one iteration of the latency loop. That loop also runs cxr
# bench's fixed reference network (TinyCnn, 512 x 512, fp32) once per iteration; its share is
# measured the same way (benching the same network written to a file: two copies per iteration)
# and subtracted, so the figures are one inference of the model alone (the knobs below leave that
# fp32 network's count as it is: checked once, equal within the run-to-run noise of a few thousand
# instructions per iteration). tract's kernel choice is
# pointed at each Pi's CPU with its own knobs (qemu-user shows the host's /proc/cpuinfo), as in
# scripts/test-arm.sh. For int8 files, the form cxr picks by default (cxr bench's "kernels" field:
# int8 = tract's integer kernels, f32 = int8 numbers through float products, see
# crates/cxr-infer/src/int8_float.rs) is measured, then the other form (CXR_INT8_KERNELS). For fp32
# files, also the graph as written (CXR_GRAPH_FORM=onnx): cxr rewrites some fp32 openings at load
# time and no int8 one, so that row separates the kernels' share from the rewrite's.
#
# Needs: the ARM cross toolchains and qemu-user (as scripts/test-arm.sh installs them), a qemu-user
# with TCG plugin support and plugin API version 1 (Debian 12's QEMU 7.2 has both), gcc, jq, and
# QEMU's plugin header, which is GPL-2.0-or-later and so not kept here: point QEMU_PLUGIN_INCLUDE
# at a folder holding qemu-plugin.h, e.g. include/qemu of a QEMU source tree at the qemu-user's
# version (a v7.2.x tag of https://gitlab.com/qemu-project/qemu.git for Debian 12, or
# `apt-get source qemu` with deb-src enabled). Release cross builds of cxr (no libtorch).
#
# Run: QEMU_PLUGIN_INCLUDE=/path/to/qemu/include/qemu nice bash scripts/arm-instruction-counts.sh
# Environment: CXR_ARM_TARGETS (default both targets), CXR_ARM_COUNT_PIS (default "pi3 pi4 pi5
# pi-32bit"), CXR_ARM_COUNT_RUNS (default 21), CXR_ARM_COUNT_MODELS (default "models/seed-cnn.onnx
# models/seed-cnn-int8.onnx"; an int8 file is compared with the fp32 file listed before it; add
# e.g. models/resnet18-scratch.onnx for scale), CXR_DATASETS (default ../shared/datasets),
# CXR_ARM_COUNT_IMAGE (default: a real NIH film from the datasets), CXR_ARM_COUNT_LOG (a file to
# which each raw count is appended).
#
# Time: every process runs ~35 inferences even at --runs 1 (first run, 32-run throughput phase).
# On a 2-core x86 shared with other jobs, after the release cross builds (~15 min per target the
# first time): a pair of seed-cnn counts takes 20-60 s, the aarch64 part of the default table
# ~10 min, the armv7 part under 2 min; resnet18-scratch on one CPU per target ~17 min.
set -euo pipefail
shopt -s inherit_errexit   # a failed count inside $(...) stops the script
cd "$(dirname "$0")/.."

read -r -a targets <<<"${CXR_ARM_TARGETS:-aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf}"
read -r -a pis <<<"${CXR_ARM_COUNT_PIS:-pi3 pi4 pi5 pi-32bit}"
read -r -a models <<<"${CXR_ARM_COUNT_MODELS:-models/seed-cnn.onnx models/seed-cnn-int8.onnx}"
runs="${CXR_ARM_COUNT_RUNS:-21}"
datasets="${CXR_DATASETS:-../shared/datasets}"
image="${CXR_ARM_COUNT_IMAGE:-$datasets/nih-chestxray14-sample/No_findings/00001280_004.jpg}"
target_dir="${CARGO_TARGET_DIR:-target}"
raw_log="${CXR_ARM_COUNT_LOG:-/dev/null}"

[ "$runs" -ge 2 ] || { echo "arm-instruction-counts.sh: CXR_ARM_COUNT_RUNS must be at least 2" >&2; exit 1; }
[ -f "$image" ] || { echo "arm-instruction-counts.sh: $image: no such image (set CXR_DATASETS or CXR_ARM_COUNT_IMAGE)" >&2; exit 1; }
for m in "${models[@]}"; do
    [ -f "$m" ] || { echo "arm-instruction-counts.sh: $m: no such model" >&2; exit 1; }
done
header_dir="${QEMU_PLUGIN_INCLUDE:-}"
if [ -z "$header_dir" ] || [ ! -f "$header_dir/qemu-plugin.h" ]; then
    echo "arm-instruction-counts.sh: set QEMU_PLUGIN_INCLUDE to a folder holding QEMU's qemu-plugin.h (see this script's header)" >&2
    exit 1
fi

# shellcheck source=scripts/arm-pis.sh
source scripts/arm-pis.sh

# --- The counting plugin, built against the given header.
plugin_dir="$target_dir/qemu-insn-count"
mkdir -p "$plugin_dir"
plugin="$(cd "$plugin_dir" && pwd)/insn_count.so"
gcc -O2 -Wall -shared -fPIC -I "$header_dir" -o "$plugin" scripts/qemu-insn-count/insn_count.c

# --- Release cross builds: cxr itself, and the example that writes the reference network to a file.
for t in "${targets[@]}"; do
    cargo build --release --target "$t" -p cxr --bin cxr >&2
    cargo build --release --target "$t" -p cxr-infer --example tiny_cnn >&2
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# count RUNNER BIN RUNS MODEL [ENV...]: instructions of one `cxr bench` process; prints
# "INSNS PRECISION KERNELS" (from cxr bench's JSON: fp32|int8, and f32|int8 for the products).
count() {
    local runner=$1 bin=$2 n=$3 model=$4 log="$work/count.log" out="$work/bench.json" insns
    shift 4
    rm -f "$log"
    # shellcheck disable=SC2086 # the runner is a command line
    if ! env "$@" $runner -d plugin -D "$log" -plugin "$plugin" \
        "$bin" bench -m "$model" --runs "$n" -j 1 --image "$image" --json >"$out" 2>"$work/bench.err"; then
        echo "arm-instruction-counts.sh: cxr bench failed under ${runner%% *} ($*):" >&2
        cat "$work/bench.err" >&2
        exit 1
    fi
    insns=$(sed -n 's/^insn_count: insns=\([0-9]*\) .*/\1/p' "$log")
    [ -n "$insns" ] || { echo "arm-instruction-counts.sh: the plugin printed no count" >&2; exit 1; }
    echo "${runner%% *} $* --runs $n $model: $(cat "$log")" >>"$raw_log"
    echo "$insns $(jq -r '.[0] | "\(.precision) \(.kernels)"' "$out")"
}

# per_iteration RUNNER BIN MODEL [ENV...]: instructions of one latency-loop iteration (model plus
# reference network); prints "INSNS PRECISION KERNELS".
per_iteration() {
    local runner=$1 bin=$2 model=$3 one many
    shift 3
    one=$(count "$runner" "$bin" 1 "$model" "$@")
    many=$(count "$runner" "$bin" "$runs" "$model" "$@")
    echo "$(( (${many%% *} - ${one%% *}) / (runs - 1) )) ${one#* }"
}

mega() { awk -v n="$1" 'BEGIN { printf "%.1f M", n / 1e6 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f×", a / b }'; }

echo "| target | Pi (emulated CPU) | model | form | instructions per inference | vs fp32 |"
echo "|---|---|---|---|---|---|"
for t in "${targets[@]}"; do
    runner=$(qemu_for "$t")
    bin="$target_dir/$t/release/cxr"
    refdir="$work/$t"
    mkdir -p "$refdir"
    # shellcheck disable=SC2086
    $runner "$target_dir/$t/release/examples/tiny_cnn" "$refdir" 512 >/dev/null
    while read -r pi cpu knob description; do
        [[ " ${pis[*]} " == *" $pi "* ]] || continue
        result=$(per_iteration "$runner" "$bin" "$refdir/tiny-cnn.onnx" QEMU_CPU="$cpu" "$knob")
        reference=$(( ${result%% *} / 2 ))   # benching the reference network runs it twice per iteration
        fp32=""
        for m in "${models[@]}"; do
            name=$(basename "$m" .onnx)
            result=$(per_iteration "$runner" "$bin" "$m" QEMU_CPU="$cpu" "$knob")
            read -r it precision kernels <<<"$result"
            insns=$(( it - reference ))
            if [ "$precision" != int8 ]; then
                fp32=$insns
                echo "| $t | $description | \`$name\` | $precision (cxr's default) | $(mega "$insns") | 1.00× |"
                # The same file without cxr's load-time rewrites (crates/cxr-infer/src/patch_input.rs):
                # int8 graphs get none of them, so this row compares kernels like for like.
                result=$(per_iteration "$runner" "$bin" "$m" QEMU_CPU="$cpu" "$knob" CXR_GRAPH_FORM=onnx)
                insns2=$(( ${result%% *} - reference ))
                echo "| $t | $description | \`$name\` | $precision, graph as written (CXR_GRAPH_FORM=onnx) | $(mega "$insns2") | $(ratio "$insns2" "$fp32") |"
                continue
            fi
            # An int8 file: the form cxr picks, then the other one.
            if [ "$kernels" = int8 ]; then other=float; else other=integer; fi
            result=$(per_iteration "$runner" "$bin" "$m" QEMU_CPU="$cpu" "$knob" CXR_INT8_KERNELS="$other")
            read -r it2 _ kernels2 <<<"$result"
            insns2=$(( it2 - reference ))
            for row in "$kernels $insns cxr's default" "$kernels2 $insns2 CXR_INT8_KERNELS=$other"; do
                read -r k n how <<<"$row"
                if [ "$k" = int8 ]; then form="int8, integer kernels ($how)"; else form="int8, as float products ($how)"; fi
                echo "| $t | $description | \`$name\` | $form | $(mega "$n") | ${fp32:+$(ratio "$n" "$fp32")} |"
            done
        done
        echo "| $t | $description | reference network (subtracted above) | fp32 | $(mega "$reference") | |"
    done < <(cpus_for "$t")
done
echo
runner=$(qemu_for "${targets[0]}")
echo "Proxy, not time: guest instructions per inference under QEMU $(${runner%% *} --version | sed -n '1s/.*version //p'), (count of --runs $runs - count of --runs 1) / $(( runs - 1 )), less cxr bench's reference network."
