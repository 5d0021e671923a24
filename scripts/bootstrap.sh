#!/usr/bin/env bash
# Create (or reuse) .venv and install delssome_norms with the extras given as $1 (e.g. "dev,notebooks").
# When the environment has no torch, installs torch==2.13.0 first, or $TORCH_SPEC instead (one pip
# requirement, e.g. TORCH_SPEC="torch==2.5.1"; pip options such as --index-url cannot go in it).
# The pin gets a CPU build only where the package index carries one (this project's CI); on PyPI for
# Linux it is the multi-GB CUDA build. For the CPU build there, put it into the venv first (a torch
# found there is kept):
#   python3 -m venv .venv && .venv/bin/pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
set -euo pipefail
extras="${1:-}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${DELSSOME_VENV:-$root/.venv}"
python_bin="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
    echo "[bootstrap] creating virtual environment $venv"
    "$python_bin" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip "setuptools>=77" wheel
fi
if ! "$venv/bin/python" -c "import torch" >/dev/null 2>&1; then
    echo "[bootstrap] installing ${TORCH_SPEC:-torch==2.13.0}"
    "$venv/bin/python" -m pip install --quiet "${TORCH_SPEC:-torch==2.13.0}"
fi
spec="$root"
[ -n "$extras" ] && spec="$root[$extras]"
echo "[bootstrap] installing delssome_norms${extras:+ [$extras]}"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e "$spec" 2>&1 \
    | grep -v -E "^WARNING: Location|^$" || true
"$venv/bin/python" -c "import delssome_norms" # fail here, clearly, if the install did not work
