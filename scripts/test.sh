#!/usr/bin/env bash
# Set up .venv with the test extras if needed, then run the default test suite (slow checks excluded;
# they run in bench/). Extra arguments go to pytest. Exit status: pytest's, with "no tests" (5) = failure.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/bootstrap.sh" "dev,notebooks,cluster"
venv="${DELSSOME_VENV:-$root/.venv}"
cd "$root"
# Triton's interpreter runs the GPU kernel on CPU tensors, so the suite checks it without a GPU
if ! "$venv/bin/python" -c "import triton" >/dev/null 2>&1; then
    echo "[test] installing triton==3.6.0 (to check the GPU kernel through its CPU interpreter)"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "triton==3.6.0" \
        || echo "[test] triton could not be installed; the GPU-kernel check will be skipped"
fi
"$venv/bin/ruff" check .
set +e
"$venv/bin/python" -m pytest -q -p no:cacheprovider "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
    echo "test.sh: pytest collected no tests; treating this as a failure" >&2
    exit 1
fi
exit "$status"
