#!/usr/bin/env bash
# Run-time dependencies for the device machine, whose python image may lack some of the package's
# requirements (earlier sessions found cma and tvb-data missing; scikit-learn is newer still).
#
#   bash bench/gpu_env.sh --download   # here, on the CPU machine (needs the package registries):
#                                      # fills .whl/site (git-ignored) for CPython 3.12 x86-64
#   . bench/gpu_env.sh                 # on the device, sourced by bench/gpu_*.sh: puts .whl/site
#                                      # at the END of PYTHONPATH (the device's own packages win)
# Carry it: run(..., carry=[".whl"]). .whl/site holds cma, scikit-learn (+ joblib, threadpoolctl)
# and only tvb_data's DK68 connectome (the 57 MB package would not fit the 64 MiB carry).
_gpu_env_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_gpu_env_site="$_gpu_env_root/.whl/site"
if [ "${1:-}" = "--download" ]; then
    set -euo pipefail
    py="${PYTHON:-$_gpu_env_root/.venv/bin/python}"
    rm -rf "$_gpu_env_site" && mkdir -p "$_gpu_env_site"
    "$py" -m pip install --quiet --disable-pip-version-check --target "$_gpu_env_site" \
        --python-version "${DEVICE_PYTHON:-3.12}" --platform manylinux2014_x86_64 \
        --only-binary=:all: --no-deps cma scikit-learn joblib threadpoolctl
    # tests and caches are not needed to run (saves ~15 MB of the carry)
    find "$_gpu_env_site" -type d \( -name tests -o -name __pycache__ \) -prune -exec rm -rf {} +
    src="$("$py" -c 'import os, tvb_data; print(os.path.dirname(tvb_data.__file__))')"
    mkdir -p "$_gpu_env_site/tvb_data/connectivity"
    cp "$src/__init__.py" "$_gpu_env_site/tvb_data/"
    cp "$src/connectivity/__init__.py" "$_gpu_env_site/tvb_data/connectivity/" 2>/dev/null \
        || touch "$_gpu_env_site/tvb_data/connectivity/__init__.py"
    cp "$src/connectivity/connectivity_68.zip" "$_gpu_env_site/tvb_data/connectivity/"
    du -sh "$_gpu_env_site"
    exit 0
fi
if [ -d "$_gpu_env_site" ]; then
    export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$_gpu_env_site"
fi
