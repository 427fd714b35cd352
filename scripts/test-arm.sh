#!/usr/bin/env bash
# The ARM part of the test command (scripts/test.sh calls it last): cross-builds the inference
# crates and the Raspberry Pi examples (firmware-examples/) for 64- and 32-bit Raspberry Pi OS,
# runs cxr-infer's tests and both examples under qemu-user on real X-rays, and fails unless ARM
# gives what x86 gives on the same 20 X-rays: the embedded model (`cxr`'s default, fp32)
# within 1e-4, the int8 one (`--model`) the same class. The Pi programs are static binaries
# (aarch64 musl, armv7 glibc linked statically: .cargo/config.toml); it fails if one is not.
# On a fresh Debian machine, as root, it first installs the cross toolchains and qemu-user.
#
# Dev-profile builds only (dependencies at opt-level 2): enough to run and compare, and a
# fraction of the time of the LTO `pi` profile, whose sizes firmware-examples/README.md reports.
# Building tract for one ARM target is most of this script's time (5-8 min on 2 cores, against
# about a minute for everything it then runs under qemu), so a run builds and runs one target and
# only type-checks the other (`cargo check`: what fails to compile there fails here, in a fraction
# of the time). The commit chooses, by the last hex digit of its hash: even aarch64, odd armv7;
# so every commit compiles for both Pis and each target runs under qemu on about every other one.
#
# Environment: CXR_ARM_TARGETS (the targets to build and run; default: the commit's turn, as
# above, or both outside a git checkout), CXR_X86_BUILD (the cargo command that
# builds the x86 reference binaries), CXR_ARM_FP32_TOL (default 1e-4; set it
# absurdly small to see the comparison fail), CXR_DATASETS (default ../shared/datasets).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/sample-xrays.sh
source scripts/sample-xrays.sh
start=$SECONDS

all_targets=(aarch64-unknown-linux-musl armv7-unknown-linux-gnueabihf)
if [ -n "${CXR_ARM_TARGETS:-}" ]; then
    read -r -a targets <<<"$CXR_ARM_TARGETS"
elif head=$(git rev-parse HEAD 2>/dev/null); then
    targets=("${all_targets[$((16#${head: -1} % ${#all_targets[@]}))]}")
else
    targets=("${all_targets[@]}")
fi
checked=()   # the targets not run this time: type-checked only
for t in "${all_targets[@]}"; do
    [[ " ${targets[*]} " == *" $t "* ]] || checked+=("$t")
done
fp32_tol="${CXR_ARM_FP32_TOL:-1e-4}"
int8_model=models/seed-cnn-int8.onnx
datasets="${CXR_DATASETS:-../shared/datasets}"
target_dir="${CARGO_TARGET_DIR:-target}"

# shellcheck source=scripts/arm-pis.sh
source scripts/arm-pis.sh

# --- Toolchains: installed only where missing, so a prepared machine skips this.
missing=()
command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || missing+=(gcc-aarch64-linux-gnu)
command -v arm-linux-gnueabihf-gcc >/dev/null 2>&1 || missing+=(gcc-arm-linux-gnueabihf)
[ -e /usr/aarch64-linux-gnu/lib/crt1.o ] || missing+=(libc6-dev-arm64-cross)
[ -e /usr/arm-linux-gnueabihf/lib/crt1.o ] || missing+=(libc6-dev-armhf-cross)
{ command -v qemu-aarch64 && command -v qemu-arm; } >/dev/null 2>&1 || missing+=(qemu-user)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "test-arm.sh: please install ${missing[*]} (apt-get install -y ${missing[*]})" >&2
        exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
installed_targets=$(rustup target list --installed)
for t in "${targets[@]}" "${checked[@]}"; do
    grep -qx "$t" <<<"$installed_targets" || rustup target add "$t"
done

# --- The Pi binaries must stay lean: no libtorch, no plotting.
for t in "${targets[@]}" "${checked[@]}"; do
    heavy=$(cargo tree --target "$t" -p cxr-minimal -p cxr-watch -e normal --prefix none | grep -E '^(tch|torch-sys|plotters) ' | sort -u || true)
    if [ -n "$heavy" ]; then
        echo "test-arm.sh: the Pi examples depend on $heavy for $t" >&2
        exit 1
    fi
done

# --- The same 20 real X-rays for every platform (5 per folder, first by name), plus a
# corrupt and an empty file, which must fail alike everywhere.
inputs=$(mktemp -d)
trap 'rm -rf "$inputs"' EXIT
mkdir "$inputs/images"
sample_xrays "$datasets" "$inputs/images" 5
printf '\x89PNG\r\n\x1a\nnot a PNG beyond its signature' >"$inputs/images/corrupt.png"
: >"$inputs/images/empty.jpg"

# score_watch RUNNER BINARY MODEL OUT: cxr-watch --once on a fresh copy of the inputs; writes
# "file p_covid class" lines (failed files: "- failed").
score_watch() {
    local runner=$1 bin=$2 model=$3 out=$4 inbox status=0
    inbox=$(mktemp -d -p "$inputs")
    cp "$inputs"/images/* "$inbox/"
    # shellcheck disable=SC2086 # the runner is a command line
    $runner "$bin" --inbox "$inbox" --once --settle-ms 0 ${model:+--model "$model"} 2>"$out.log" || status=$?
    if [ "$status" -ne 1 ]; then   # 1: some files failed, as the corrupt and empty ones must
        echo "test-arm.sh: cxr-watch exited with $status (expected 1); log:" >&2
        cat "$out.log" >&2
        exit 1
    fi
    awk -F, 'NR > 1 && $2 ~ /^[0-9a-f]+$/ && length($2) == 64 { print $1, ($4 == "" ? "-" : $4), ($5 == "" ? "failed" : $5) }' "$inbox/results.csv" | LC_ALL=C sort >"$out"
}

# score_minimal RUNNER BINARY MODEL OUT: cxr-minimal once per image (every fourth one through
# stdin); same line format, failures included.
score_minimal() {
    local runner=$1 bin=$2 model=$3 out=$4 f name line
    : >"$out"
    for f in "$inputs"/images/*; do
        name=$(basename "$f")
        # shellcheck disable=SC2086
        if [ $(( $(wc -l <"$out") % 4 )) -eq 3 ]; then
            line=$($runner "$bin" ${model:+--model "$model"} - <"$f" 2>>"$out.log") || line=""
        else
            line=$($runner "$bin" ${model:+--model "$model"} "$f" 2>>"$out.log") || line=""
        fi
        if [ -z "$line" ]; then
            echo "$name - failed" >>"$out"
        else
            sed -E 's/^p_covid=([^ ]+) class=([^ ]+).*/'"$name"' \1 \2/' <<<"$line" >>"$out"
        fi
    done
}

# compare LABEL TOL X86 ARM: same files, same classes, and |p_arm - p_x86| <= TOL unless TOL is "-".
compare() {
    awk -v label="$1" -v tol="$2" '
        NR == FNR { p[$1] = $2; c[$1] = $3; n++; next }
        {
            m++
            if (!($1 in c)) { print label ": " $1 " scored on ARM only"; bad = 1; next }
            if (c[$1] != $3) { print label ": " $1 ": class " $3 " on ARM, " c[$1] " on x86"; bad = 1 }
            if ($2 == "-" || p[$1] == "-") next
            d = $2 - p[$1]; if (d < 0) d = -d; if (d > max) max = d
            if (tol != "-" && d > tol + 0) { print label ": " $1 ": p_covid " $2 " on ARM, " p[$1] " on x86, |diff| " d " > " tol; bad = 1 }
        }
        END {
            if (m != n) { print label ": " m " rows on ARM, " n " on x86"; bad = 1 }
            printf "%s: %d files, classes %s, max |p_arm - p_x86| = %g (tolerance %s)%s\n", label, m, bad ? "checked" : "equal", max, tol, bad ? ": FAILED" : ""
            exit bad
        }' "$3" "$4"
}

# Every cargo call names the same packages and --all-targets / test targets, so cargo resolves
# features once per target and never rebuilds tract between a test build and a binary build.
packages=(-p cxr-infer -p cxr-minimal -p cxr-watch)

for t in "${checked[@]}"; do
    echo "== $t: type-checked only (built and run under qemu on commits whose hash ends in its turn)"
    cargo check --target "$t" "${packages[@]}" --all-targets
done

# --- x86 reference: the same programs, built for this machine. scripts/test.sh names its own
# test build in CXR_X86_BUILD, which already holds these binaries: building them again with
# only these packages' features would recompile tract and the rest (6 minutes on 2 cores).
read -r -a x86_build <<<"${CXR_X86_BUILD:-cargo build ${packages[*]} --all-targets}"
"${x86_build[@]}"
results="$inputs/results"
mkdir "$results"
for prog in watch minimal; do
    "score_$prog" "" "$target_dir/debug/cxr-$prog" "" "$results/x86-$prog-embedded"
    "score_$prog" "" "$target_dir/debug/cxr-$prog" "$int8_model" "$results/x86-$prog-int8"
done
for f in "$results"/x86-{watch,minimal}-{embedded,int8}; do
    if [ "$(wc -l <"$f")" -ne 22 ] || [ "$(grep -c ' failed$' "$f")" -ne 2 ]; then
        echo "test-arm.sh: x86 reference $(basename "$f"): expected 20 scored X-rays and 2 failed files, got:" >&2
        cat "$f" >&2
        exit 1
    fi
done
covid_images=("$inputs"/images/COVID-*)
embedded_model=$("$target_dir/debug/cxr-minimal" - <"${covid_images[0]}" 2>/dev/null | sed -E 's/.*model=//')
# An fp32 default must agree to fp32_tol; an int8 one (CXR_DEFAULT_MODEL) only in class, as
# integer rounding may move a probability by a quantization step.
embedded_tol=$fp32_tol
[[ "$embedded_model" == *int8* ]] && embedded_tol=-

failed=0
for t in "${targets[@]}"; do
    runner=$(qemu_for "$t")
    runner_var="CARGO_TARGET_$(tr 'a-z-' 'A-Z_' <<<"$t")_RUNNER"
    echo "== $t: cxr-infer tests under ${runner%% *}"
    # NEON forced on armv7: qemu shows the host's /proc/cpuinfo, where tract would find no NEON
    # and test the VFP fallback that no Pi 2-5 uses.
    cargo build --target "$t" "${packages[@]}" --all-targets
    # cxr-infer's tests and the examples' unit tests; not the examples' end-to-end tests, which
    # start the binary themselves (that needs binfmt_misc, absent in containers): below, the
    # script runs the binaries under qemu instead.
    env "$runner_var=$runner" TRACT_CPU_ARM32_NEON=true cargo test --target "$t" "${packages[@]}" --lib --bins --test model
    for prog in watch minimal; do
        if readelf -l "$target_dir/$t/debug/cxr-$prog" | grep -q 'program interpreter'; then
            echo "test-arm.sh: $t cxr-$prog is dynamically linked; the Pi programs must be static" >&2
            exit 1
        fi
    done
    first_pi=$(cpus_for "$t" | awk 'NR == 1 { print $1 }')
    while read -r pi cpu knob _; do
        (
            export QEMU_CPU="$cpu" "$knob"
            for prog in watch minimal; do
                # cxr-minimal starts once per image: one emulated CPU per target is enough for it.
                [ "$prog" = minimal ] && [ "$pi" != "$first_pi" ] && continue
                bin="$target_dir/$t/debug/cxr-$prog"
                out="$results/$t-$pi-$prog"
                "score_$prog" "$runner" "$bin" "" "$out-embedded"
                "score_$prog" "$runner" "$bin" "$int8_model" "$out-int8"
                label="$t on $cpu ($pi), cxr-$prog"
                ok=0
                compare "$label, embedded $embedded_model" "$embedded_tol" "$results/x86-$prog-embedded" "$out-embedded" || ok=1
                compare "$label, $int8_model, class only" "-" "$results/x86-$prog-int8" "$out-int8" || ok=1
                [ "$ok" -eq 0 ] || exit 1
            done
        ) || failed=1
    done < <(cpus_for "$t")
done
echo "test-arm.sh: ${targets[*]} run${checked[*]:+, ${checked[*]} type-checked} in $(( (SECONDS - start) / 60 )) min $(( (SECONDS - start) % 60 )) s"
if [ "$failed" -ne 0 ]; then
    echo "test-arm.sh: ARM and x86 disagree (see above)" >&2
    exit 1
fi
