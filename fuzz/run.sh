#!/usr/bin/env bash
# Builds the libFuzzer targets and runs one: `fuzz/run.sh TARGET [SECONDS] [libFuzzer flags…]`.
# The same flags as `cargo +nightly fuzz run TARGET` (coverage, AddressSanitizer, debug assertions),
# without needing cargo-fuzz installed. New inputs go into fuzz/corpus/TARGET; a crash, timeout
# or out-of-memory input is written to fuzz/artifacts/TARGET/ (see docs/fuzzing.md for what to
# do with it). Needs a nightly toolchain (`rustup toolchain install nightly`).
set -euo pipefail
cd "$(dirname "$0")"
target=${1:?usage: fuzz/run.sh TARGET [SECONDS] [libFuzzer flags...]}
seconds=${2:-600}
shift $(( $# >= 2 ? 2 : 1 ))
triple=$(rustc +nightly -vV | sed -n 's/^host: //p')
RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Zsanitizer=address \
-Cdebug-assertions -Coverflow-checks" \
    cargo +nightly build --release --target "$triple" --bin "$target"
mkdir -p "corpus/$target" "artifacts/$target"
# 2 GB of RSS or a single 512 MB allocation is a finding: no accepted input needs that much
# (the largest 64 kB input decodes to well under it), and a hostile file must not get it.
exec "target/$triple/release/$target" "corpus/$target" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=512 -max_len=65536 \
    -artifact_prefix="artifacts/$target/" -print_final_stats=1 "$@"
