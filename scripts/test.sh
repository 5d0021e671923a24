#!/usr/bin/env bash
# Set up .venv with the test extras if needed, then run the default test suite (slow checks excluded;
# they run in bench/). Extra arguments go to pytest. Exit status: pytest's, with "no tests" (5) = failure.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/bootstrap.sh" "dev,notebooks,cluster"
venv="${DELSSOME_VENV:-$root/.venv}"
cd "$root"
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
