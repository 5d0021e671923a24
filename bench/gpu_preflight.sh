#!/usr/bin/env bash
# Sourced by bench/gpu_*.sh after `cd "$root"`: sets $py and stops (exit 2) before any step
# spends device time when that interpreter cannot import what the steps need.
# It also stops when DEVICE (default cuda) is a CUDA device that torch does not see.
# $py: $PYTHON, else $root/.venv/bin/python when it runs, else python3 (the device's image).
# Usage: . bench/gpu_preflight.sh <script name> <module>...
_pf_name="$1"; shift
if [ -n "${PYTHON:-}" ]; then
    py="$PYTHON"
elif [ -x "$root/.venv/bin/python" ] && "$root/.venv/bin/python" -c "" 2>/dev/null; then
    py="$root/.venv/bin/python"
else
    py=python3
fi
for _pf_mod in "$@"; do
    if ! PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" "$py" -c "import $_pf_mod" >/dev/null 2>&1; then
        echo "$_pf_name: $py cannot import $_pf_mod; carry .whl (filled here by" \
            "'bash bench/gpu_env.sh --download') or set PYTHON=/path/to/python of an environment" \
            "with $* (nothing was run)" >&2
        exit 2
    fi
done
if [[ "${DEVICE:-cuda}" == cuda* ]] && ! "$py" -c \
    "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" >/dev/null 2>&1; then
    echo "$_pf_name: torch in $py sees no CUDA device (DEVICE=${DEVICE:-cuda}); on a machine" \
        "without one, DEVICE=cpu runs the plumbing (nothing was run)" >&2
    exit 2
fi
