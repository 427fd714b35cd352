#!/usr/bin/env bash
# The Python package's tests (scripts/test.sh runs this last): builds the `cxr` wheel from
# crates/cxr-py with maturin, installs it into .venv-py/ with the pinned test dependencies, and
# runs its pytest suite, which compares it with the `cxr` CLI on real X-rays and scores a few
# hundred of them on a two-node Ray cluster it starts and stops itself.
#
# The wheel is built in the dev profile (dependencies at opt-level 2, see Cargo.toml): after
# `cargo test --workspace`, tract and the crates it needs are already compiled there, so only
# PyO3 and the extension itself are built. Release wheels: `maturin build --release` (README).
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv-py
if [ ! -x "$venv/bin/python" ]; then
    # Debian's python3 creates virtual environments only with python3-venv installed.
    if ! python3 -c 'import ensurepip' 2>/dev/null; then
        if [ "$(id -u)" -ne 0 ]; then
            echo "test-python.sh: please install python3-venv (apt-get install -y python3-venv)" >&2
            exit 1
        fi
        apt-get install -y -qq python3-venv >/dev/null
    fi
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check -r crates/cxr-py/requirements-test.txt

# maturin builds cxr-py alone, so cargo gives each dependency only the features cxr-py's graph
# asks for; where they differ from the workspace test build's, tract compiles a second time.
# crates/cxr-py/Cargo.toml asks for the missing ones: say when that list needs updating.
feature_set() { cargo tree "$@" --prefix none -f '{p} [{f}]' | sed 's/ (\*)$//' | sort -u; }
drift=$(comm -23 <(feature_set -p cxr-py -e normal,build) <(feature_set --workspace --features train -e normal,build,dev))
if [ -n "$drift" ]; then
    echo "test-python.sh: warning: the wheel build resolves these crates with other features than the workspace test build, so it compiles them (and what depends on them) again; add the missing features to crates/cxr-py/Cargo.toml:" >&2
    echo "$drift" >&2
fi

started=$SECONDS
rm -rf target/wheels
"$venv/bin/maturin" build --profile dev --manifest-path crates/cxr-py/Cargo.toml --interpreter "$venv/bin/python" --out target/wheels
"$venv/bin/pip" install --quiet --disable-pip-version-check --force-reinstall --no-deps target/wheels/cxr-*.whl
echo "test-python.sh: wheel built and installed in $((SECONDS - started)) s"

# The CLI the results are compared with: this workspace's debug build.
[ -x target/debug/cxr ] || cargo build --bin cxr
# From the tests' folder, so `import cxr` is the installed wheel, not the source tree.
cd crates/cxr-py/tests
CXR_BIN="$PWD/../../../target/debug/cxr" "../../../$venv/bin/python" -m pytest -q --durations=5 "$@"
