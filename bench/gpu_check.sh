#!/usr/bin/env bash
# Every GPU check in one go, for a CUDA machine: the GPU tests, the simulator benchmark with the
# fused Triton kernel (default on CUDA) and with the CUDA-graph torch engine for comparison, the
# lockstep benchmark on CUDA, and two end-to-end cohort fits on CUDA (surrogate and Euler mode).
# JSON results and logs go to $OUT (default bench/results/gpu). Usage: bash bench/gpu_check.sh
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
out="${OUT:-$root/bench/results/gpu}"
mkdir -p "$out"
py="${PYTHON:-python3}"
export PYTHONUNBUFFERED=1
step() { echo "=== $1 ($(date +%T))"; }

step "device"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
$py -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)"

step "GPU tests"
timeout 90 $py -m pytest -q -p no:cacheprovider -m gpu tests/model 2>&1 | tail -4

step "simulate benchmark, default engine (fused Triton kernel)"
timeout 150 $py bench/simulate.py --device cuda --test-fraction 1 --scale-sets 1000 \
    --out "$out/simulate_cuda.json" 2>&1 | tail -3

step "cohort fits on CUDA (2 packaged subjects, 432 s scans, surrogate then Euler mode, 20 x 100)"
work="$(mktemp -d)"
$py - "$work" <<'PY'
import sys
from delssome_norms.datasets import materialise_subjects
materialise_subjects(sys.argv[1], kind="control", subject_ids=["synth-00187", "synth-00246"])
PY
for mode in surrogate euler; do
    start=$(date +%s)
    timeout 90 $py -m delssome_norms.cli.main cohort --manifest "$work/manifest.csv" \
        --out-dir "$work/fit_$mode" --device "${FIT_DEVICE:-cuda}" --mode "$mode" --generations "${FIT_GENERATIONS:-20}" --quiet 2>&1 | tail -3
    echo "cohort $mode: $(( $(date +%s) - start )) s wall"
    $py - "$work" "$mode" <<'PY'
import sys
from pathlib import Path
import numpy as np, pandas as pd
work, mode = Path(sys.argv[1]), sys.argv[2]
for sid in ("synth-00187", "synth-00246"):
    d = work / f"fit_{mode}" / sid
    if not (d / "EI_ratio.csv").exists():
        print(f"  {mode} {sid}: no EI_ratio.csv"); continue
    fit = pd.read_csv(d / "EI_ratio.csv")["EI_ratio"].to_numpy()
    true = pd.read_csv(work / "truth" / f"{sid}_EI_ratio.csv")["EI_ratio"].to_numpy()
    q = pd.read_csv(d / "fit_quality.csv").set_index("stage")["total_loss"]
    print(f"  {mode} {sid}: test cost {q['test']:.3f}, E/I vs truth r {np.corrcoef(fit, true)[0, 1]:.3f}, "
          f"mean error {100 * (fit.mean() / true.mean() - 1):+.1f} %")
PY
done
step "lockstep on CUDA"
timeout 60 $py bench/lockstep.py --device cuda --engines triton 2>&1 | tail -2
cp bench/results/lockstep_cuda.json "$out/" 2>/dev/null
timeout 150 $py bench/lockstep.py --device cuda --engines triton --reps 1 --skip-full \
    --scan-length 864 --burn-in 72 --fcd-window 83 --out "$out/lockstep_cuda_hcp.json" 2>&1 | tail -1

step "simulate benchmark, torch + CUDA graphs (quick)"
timeout 60 $py bench/simulate.py --device cuda --engine torch --quick --skip-test-stage \
    --scale-sets 1000 --out "$out/simulate_cuda.json" 2>&1 | tail -3

step "done"
