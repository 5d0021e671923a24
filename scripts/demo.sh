#!/usr/bin/env bash
# The main job: set up .venv if needed, then run the end-to-end demo on the packaged data.
# Usage: bash scripts/demo.sh [demo options]   (outputs in ./demo_output unless --out is given)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/bootstrap.sh" ""
venv="${DELSSOME_VENV:-$root/.venv}"
if [ "$#" -eq 0 ]; then set -- --out "$root/demo_output"; fi
exec "$venv/bin/delssome-norms" demo "$@"
