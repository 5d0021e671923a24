#!/usr/bin/env bash
# Sourced by bench/gpu_*.sh after `cd "$root"`: sets $py and stops (exit 2) before any step
# spends device time when that interpreter cannot import what the steps need.
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
        echo "$_pf_name: $py cannot import $_pf_mod; set PYTHON=/path/to/python of an environment" \
            "with $* installed (nothing was run)" >&2
        exit 2
    fi
done
