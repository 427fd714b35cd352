#!/usr/bin/env bash
# Installs libtorch 2.13.0 (what tch 0.26 needs) into .torch/ at the repository root and writes
# .torch/env.sh, which sets LIBTORCH, LIBTORCH_CXX11_ABI and LD_LIBRARY_PATH for building and
# running cxr-train (`cargo build -p cxr-train`, `cargo build --features train`).
#
#   bash scripts/setup-torch.sh && source .torch/env.sh
#
# Idempotent: a finished install is detected and only env.sh is printed again.
#
# Two routes (PyPI has no CPU-only torch wheel, and the CUDA one pulls ~2.1 GB of nvidia-* wheels):
#   light (default): torch + the two small CUDA wheels libtorch_cpu.so links against, unpacked
#       without dependencies; libtorch.so is copied with its libtorch_cuda.so dependency removed.
#       CPU only, ~540 MB download.
#   cuda (CXR_TORCH_ROUTE=cuda): a full `pip install torch==2.13.0` into .torch/venv; uses a GPU when
#       one is present. ~2.6 GB download, 4.7 GB on disk.
# Needs python3 with pip, unzip, and (light route) patchelf — apt-get install -y patchelf unzip.
set -euo pipefail

TORCH_VERSION=2.13.0
CUDA_RUNTIME_VERSION=13.0.96
CUDA_CUPTI_VERSION=13.0.85

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
torch_dir=${CXR_TORCH_DIR:-$repo_root/.torch}
route=${CXR_TORCH_ROUTE:-light}
python=${PYTHON:-python3}
done_marker=$torch_dir/.installed-$route-$TORCH_VERSION

need() {
    command -v "$1" >/dev/null 2>&1 || {
        echo "setup-torch: '$1' is missing; $2" >&2
        exit 1
    }
}

write_env() {
    local libtorch=$1 ld_path=$2
    cat >"$torch_dir/env.sh" <<EOF
# Written by scripts/setup-torch.sh ($route route, torch $TORCH_VERSION). Source it before building cxr-train.
export LIBTORCH="$libtorch"
export LIBTORCH_CXX11_ABI=1
unset LIBTORCH_USE_PYTORCH
export LD_LIBRARY_PATH="$ld_path\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
EOF
}

install_light() {
    need unzip "install it with: apt-get install -y unzip"
    need patchelf "install it with: apt-get install -y patchelf"
    local wheels=$torch_dir/wheels lib=$torch_dir/libtorch
    mkdir -p "$wheels"
    "$python" -m pip download --quiet --no-deps --dest "$wheels" \
        "torch==$TORCH_VERSION" "nvidia-cuda-runtime==$CUDA_RUNTIME_VERSION" "nvidia-cuda-cupti==$CUDA_CUPTI_VERSION"
    local unpacked=$torch_dir/unpacked
    rm -rf "$unpacked" "$lib"
    mkdir -p "$unpacked" "$lib/lib"
    # Only the headers and the CPU libraries: the CUDA kernels (libtorch_cuda*.so, ~500 MB) are never loaded.
    unzip -q -o "$wheels"/torch-"$TORCH_VERSION"-*.whl 'torch/include/*' 'torch/lib/libc10.so' \
        'torch/lib/libtorch_cpu.so' 'torch/lib/libtorch.so' 'torch/lib/libgomp.so.1' 'torch/lib/libshm.so' -d "$unpacked"
    unzip -q -o "$wheels"/nvidia_cuda_runtime-"$CUDA_RUNTIME_VERSION"-*.whl 'nvidia/cu13/lib/libcudart.so.13' -d "$unpacked"
    unzip -q -o "$wheels"/nvidia_cuda_cupti-"$CUDA_CUPTI_VERSION"-*.whl 'nvidia/cu13/lib/libcupti.so.13' -d "$unpacked"
    ln -s "$unpacked/torch/include" "$lib/include"
    for so in libc10.so libtorch_cpu.so libgomp.so.1 libshm.so; do
        ln -s "$unpacked/torch/lib/$so" "$lib/lib/$so"
    done
    ln -s "$unpacked/nvidia/cu13/lib/libcudart.so.13" "$lib/lib/libcudart.so.13"
    ln -s "$unpacked/nvidia/cu13/lib/libcupti.so.13" "$lib/lib/libcupti.so.13"
    cp "$unpacked/torch/lib/libtorch.so" "$lib/lib/libtorch.so"
    patchelf --remove-needed libtorch_cuda.so "$lib/lib/libtorch.so"
    echo "$TORCH_VERSION" >"$lib/build-version"
    rm -rf "$wheels"
    printf '%s\n%s\n' "$lib" "$lib/lib" >"$done_marker"
}

install_cuda() {
    local venv=$torch_dir/venv
    [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet "torch==$TORCH_VERSION"
    local torch_pkg
    torch_pkg=$("$venv/bin/python" -c 'import pathlib, torch; print(pathlib.Path(torch.__file__).parent)')
    echo "$TORCH_VERSION" >"$torch_pkg/build-version"
    printf '%s\n%s\n' "$torch_pkg" "$torch_pkg/lib" >"$done_marker"
}

if [ ! -e "$done_marker" ]; then
    need "$python" "install Python 3 with pip, or set PYTHON to one"
    mkdir -p "$torch_dir"
    start=$(date +%s)
    case $route in
    light) install_light ;;
    cuda) install_cuda ;;
    *)
        echo "setup-torch: unknown CXR_TORCH_ROUTE '$route' (use light or cuda)" >&2
        exit 1
        ;;
    esac
    echo "setup-torch: installed torch $TORCH_VERSION ($route route) into $torch_dir in $(($(date +%s) - start)) s" >&2
fi

{ read -r libtorch && read -r ld_path; } <"$done_marker"
write_env "$libtorch" "$ld_path"
echo "setup-torch: libtorch is ready; now run: source $torch_dir/env.sh" >&2
cat "$torch_dir/env.sh"
