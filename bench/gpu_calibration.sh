#!/usr/bin/env bash
# The E/I calibration benchmark (bench/ei_calibration.py) at the full budget on one CUDA device,
# in ONE device command of under 10 minutes (the python run is cut at RUN_S, default 540 s; its
# JSON is written after each mode, surrogate first, so a cut run keeps the finished mode).
#
# What runs: 32 truths (both designs, near/far from the stability boundary, mean FC 0.05-0.33),
# all of a mode in one lockstep group (--single-group, K 32), 432-s scans at TR 0.72 s:
#   1. surrogate mode at the fit's default budget (100 generations x 100 candidates, 3 duplicates,
#      3 validated per generation, 5 tested at dt 0.0005 s, profile stage);
#   2. Euler mode at 100 candidates x 3 duplicates but EULER_GENERATIONS (default 40) generations.
# Estimate (H200, ~1e10 region-steps/s when >= 3000 simulations run at once; one 432-s simulation
# at dt 0.005 s = (5000 warm-up + 504 s / 0.005) steps x 68 regions = 7.2e6 region-steps, one at
# dt 0.0005 s = 6.9e7):
#   surrogate: validation 32 x 900 x 7.2e6 = 2.1e11, test 32 x 15 x 6.9e7 = 3.3e10, profile
#              32 x 39 x 7.2e6 = 9e9 -> ~25 s of simulation + ~20 s network and host work;
#   Euler:     train 32 x 40 x 300 x 7.2e6 = 2.8e12 -> ~280 s, validation/test/profile ~10 s;
#   truths:    carried (bench/results/ei_calibration_work/truths, made on a CPU with
#              `python bench/ei_calibration.py --truths-only`), else ~1-2 min simulated here.
#   Total ~6 min. The Euler fit's full 100 generations would need ~700 s for 32 truths (does not
#   fit one command): EULER_GENERATIONS=100 N_TRUTHS=16 is the alternative (~6 min, 16 truths).
# Output in $OUT (default bench/results): ei_calibration_gpu.json (all rows, summaries, settings),
# interval_calibration.json (factors fitted on all truths, per mode; copy into
# delssome_norms/fit/data/ to ship them), gpu_calibration.log (everything printed).
# Usage (repository root, torch with CUDA):
#   OUT=/some/dir bash bench/gpu_calibration.sh
# CPU dry run of the plumbing (the same command line, tiny budget):
#   DEVICE=cpu N_TRUTHS=3 WORK_DIR=/tmp/cal_dry EULER_GENERATIONS=2 \
#     BUDGET_ARGS="--generations 2 --popsize 12 --n-dup 1 --test-top-k 2" bash bench/gpu_calibration.sh
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
out="${OUT:-$root/bench/results}"
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
. "$root/bench/gpu_env.sh"  # carried run-time dependencies (.whl/site), if any
. "$root/bench/gpu_preflight.sh" gpu_calibration.sh torch numpy pandas scipy safetensors cma sklearn \
    tvb_data.connectivity delssome_norms  # sets $py
dev="${DEVICE:-cuda}"
work="${WORK_DIR:-$root/bench/results/ei_calibration_work}"
n="${N_TRUTHS:-32}"
eg="${EULER_GENERATIONS:-40}"
run_s="${RUN_S:-540}"
log="$out/gpu_calibration.log"
exec > >(tee -a "$log") 2>&1
echo "=== device ($(date +%T))"
if [[ "$dev" == cuda* ]]; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
fi
$py -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
# shellcheck disable=SC2086  # BUDGET_ARGS is a list of options
timeout --kill-after=10 "$run_s" $py bench/ei_calibration.py \
    --device "$dev" --n-truths "$n" --single-group --group-size "$n" \
    --modes surrogate,euler --mode-budget "euler=generations:$eg" ${BUDGET_ARGS:-} \
    --work-dir "$work" --out "$out/ei_calibration_gpu.json" \
    --write-calibration --calibration-file "$out/interval_calibration.json"
rc=$?
echo "=== ei_calibration: rc $rc ($(date +%T))"
exit $rc
