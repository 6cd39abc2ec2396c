#!/usr/bin/env bash
# Compile check of the CUDA build (`--features cuda`) on a machine without a GPU or a CUDA install.
#
#   bash scripts/ci-cuda-check.sh
#
# Installs nvcc and the CUDA headers from PyPI's wheels (pinned below, CUDA 13.0: the release
# scripts/gpu-check.sh was run with, see docs/gpu-check.md) into a virtual environment under the
# target directory (made once, reused while its pins match), then runs
# `cargo check --locked -p verinfer --features cuda` in a target directory of its own so the main
# build's artefacts stay untouched. The check runs every build script for real: candle-kernels
# compiles its kernels with nvcc (PTX and the static MoE library) and cudarc reads the toolkit
# version from `nvcc --version`; only linking, which needs the driver's libcuda, is left out.
#
# Environment:
#   CUDA_CHECK_TARGET   cargo's target directory (default: target/cuda-check)
#   CUDA_CHECK_VENV     the toolkit's virtual environment (default: $CUDA_CHECK_TARGET/toolkit)
#   CUDA_COMPUTE_CAP    the compute capability kernels are built for (default: 80; no GPU to ask)
#   CUDA_CHECK_QUICK    1: compile the kernels unoptimised (nvcc's device passes cicc and ptxas at
#                       -O0, through NVCC_APPEND_FLAGS): the same sources through the same compiler
#                       passes, in about half the time (the heaviest MoE file: 183 s -> 89 s here)
#   PYTHON              the Python that makes the environment (default: python3)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
target=${CUDA_CHECK_TARGET:-$root/target/cuda-check}
venv=${CUDA_CHECK_VENV:-$target/toolkit}
python=${PYTHON:-python3}

# nvcc with its cicc/ptxas (nvcc, nvvm), the CUDA C runtime headers it includes (crt), the runtime
# API headers and libcudart (runtime), and libcu++/CUB headers that CUDA 13's fp16/bf16 headers
# include (cccl). cuBLAS and cuRAND are loaded by cudarc at run time; no headers are needed to build.
pins=(
    nvidia-cuda-nvcc==13.0.88
    nvidia-nvvm==13.0.88
    nvidia-cuda-crt==13.0.88
    nvidia-cuda-runtime==13.0.96
    nvidia-cuda-cccl==13.0.85
)

# shellcheck source=scripts/lib/pinned-venv.sh
source "$root/scripts/lib/pinned-venv.sh"
pinned_venv "$python" "$venv" ci-cuda-check "${pins[@]}"

# The CUDA 13 wheels share one prefix, laid out like a toolkit (bin/, include/, lib/, nvvm/).
cuda=$("$venv/bin/python" -c 'import nvidia, os; print(os.path.join(nvidia.__path__[0], "cu13"))')
[[ -x $cuda/bin/nvcc ]] || {
    echo "ci-cuda-check: no nvcc in $cuda" >&2
    exit 2
}

# cudaforge (candle-kernels' build script) finds nvcc through NVCC, then PATH, then CUDA_HOME;
# cudarc runs `nvcc --version` from PATH and takes link paths from CUDA_HOME/CUDA_PATH/CUDA_ROOT.
export PATH=$cuda/bin:$PATH
export NVCC=$cuda/bin/nvcc
export CUDA_HOME=$cuda CUDA_PATH=$cuda CUDA_ROOT=$cuda CUDA_TOOLKIT_ROOT_DIR=$cuda
export LD_LIBRARY_PATH=$cuda/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
# Without a GPU, cudaforge cannot ask nvidia-smi for the compute capability.
export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-80}
export CARGO_TARGET_DIR=$target
if [[ ${CUDA_CHECK_QUICK:-0} == 1 ]]; then
    export NVCC_APPEND_FLAGS="${NVCC_APPEND_FLAGS:+$NVCC_APPEND_FLAGS }-Xcicc -O0 -Xptxas -O0"
fi

echo "ci-cuda-check: $("$NVCC" --version | grep release), compute capability $CUDA_COMPUTE_CAP${NVCC_APPEND_FLAGS:+, NVCC_APPEND_FLAGS=$NVCC_APPEND_FLAGS}"
cd "$root"
start=$(date +%s)
cargo check --locked -p verinfer --features cuda
echo "ci-cuda-check: cargo check --features cuda passed in $(($(date +%s) - start)) s"
