#!/usr/bin/env bash
# Creates .venv and installs the project with everything it needs, offline-safe.
#
# Why llama-cpp-python is built here and not by a plain `pip install`:
#   pip compiles llama.cpp from source, and its default build uses -march=native.
#   On the AMD EPYC / Xeon CPUs of our machines that emits AMX instructions which
#   die with "Illegal instruction" at the first generated token. We build a portable
#   binary (GGML_NATIVE=OFF) and switch on only the AVX-512 extensions this CPU
#   reports, never AMX. pip's own wheel cache ignores CMAKE_ARGS (a native build once
#   cached would come back), so the wheel goes into a cache of our own whose key is
#   the version plus the exact CMAKE_ARGS.
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
cd "$here"

PYTHON="${PYTHON:-python3}"
VENV="${VENV:-$here/.venv}"
LLAMA_CPP_VERSION="0.3.36"
TORCH_VERSION="2.13.0"

log() { printf '[bootstrap] %s\n' "$*" >&2; }

cmake_args() {
  local args="-DGGML_NATIVE=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
  local flags
  flags="$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || true)"
  has() { [[ " $flags " == *" $1 "* ]]; }
  has avx2 && args+=" -DGGML_AVX=ON -DGGML_AVX2=ON"
  has fma && args+=" -DGGML_FMA=ON"
  has f16c && args+=" -DGGML_F16C=ON"
  has avx512f && args+=" -DGGML_AVX512=ON"
  has avx512_vnni && args+=" -DGGML_AVX512_VNNI=ON"
  has avx512vbmi && args+=" -DGGML_AVX512_VBMI=ON"
  has avx512_bf16 && args+=" -DGGML_AVX512_BF16=ON"
  printf '%s' "$args"
}

export CMAKE_ARGS="${CMAKE_ARGS:-$(cmake_args)}"
# Any pip command below that could resolve llama-cpp-python must see the same flags.
export FORCE_CMAKE=1
export PIP_DISABLE_PIP_VERSION_CHECK=1

if [ ! -x "$VENV/bin/python" ]; then
  log "creating virtual environment in $VENV"
  "$PYTHON" -m venv "$VENV"
fi
pip() { "$VENV/bin/python" -m pip "$@"; }

stamp="$VENV/.bootstrap-stamp"
want="$(cat pyproject.toml scripts/bootstrap.sh | sha256sum | cut -c1-16)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ "${1:-}" != "--force" ]; then
  log "environment is up to date ($VENV)"
  exit 0
fi

pip install --quiet --upgrade "pip>=24" wheel

# torch first, pinned: a bare requirement pulls a multi-GB CUDA build.
if ! "$VENV/bin/python" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null; then
  log "installing torch==$TORCH_VERSION (CPU build)"
  pip install --quiet "torch==$TORCH_VERSION"
fi

pytag="$("$VENV/bin/python" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')"
key="$(printf '%s %s %s' "$LLAMA_CPP_VERSION" "$pytag" "$CMAKE_ARGS" | sha256sum | cut -c1-16)"
wheels="${ASSISTANT_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/assistant-wheels}/llama-cpp-python-$key"
if ! ls "$wheels"/llama_cpp_python-*.whl >/dev/null 2>&1; then
  log "building llama-cpp-python $LLAMA_CPP_VERSION from source (about 9 minutes on 2 cores)"
  log "CMAKE_ARGS=$CMAKE_ARGS"
  mkdir -p "$wheels.partial"
  pip wheel --no-cache-dir --no-deps --wheel-dir "$wheels.partial" "llama-cpp-python==$LLAMA_CPP_VERSION"
  rm -rf "$wheels" && mv "$wheels.partial" "$wheels"
fi
log "installing portable llama-cpp-python from $wheels"
pip install --quiet "$wheels"/llama_cpp_python-*.whl

log "installing the project and its dependencies"
pip install --quiet --find-links "$wheels" -e ".[dev]"

printf '%s' "$want" > "$stamp"
log "done: activate with 'source $VENV/bin/activate'"
