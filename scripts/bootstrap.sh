#!/usr/bin/env bash
# Create (or reuse) .venv and install delssome_norms with the extras given as $1 (e.g. "dev,notebooks").
# Installs the CPU build of torch 2.13.0 first when the environment has no torch, so pip does not
# pull a multi-GB CUDA build; set TORCH_SPEC to choose another build (e.g. TORCH_SPEC="torch==2.5.1").
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
