#!/usr/bin/env bash
# Every GPU measurement of issue 24 in ONE device command, within a fixed wall-clock budget
# (BUDGET_S, default 335 s, so the whole command stays under 6 min; each step's timeout is cut to what is left, most important first):
#   1. cohort throughput, surrogate mode: 64 packaged subjects, K auto (64 on an H100/H200),
#      HCP timing (TR 0.72 s, 864-s scans), default settings, 10 of 100 generations, with a cProfile
#   2. cohort throughput, Euler mode: 16 subjects, K 16, HCP timing, 10 of 100 generations (the
#      gate rejects most early candidates, so this under-estimates a full fit's train stage;
#      the JSON gives the share passing the gate per generation to judge by how much)
#   3. E/I unchanged: 4 subjects x 3 generations (K 4, both modes) fitted by this code and by the
#      pre-change package in .baseline/ (PYTHONPATH=.baseline); r per subject, test-cost change
#   4. the surrogate step with 3 processes of 64 subjects sharing the GPU (3 shards on one GPU)
#   5. GPU tests (pytest -m gpu tests/model)
#   6. HCP-size generation (bench/simulate.py: 100 x 3 sims, FC + FCD + cost; 3000-sim throughput)
#   7. micro-benchmarks: stability-gate margin (eigvalsh vs batched tridiagonal), coupling matmul
#      FP32 / TF32 / BF16 at 300-30000 simulations (kernel headroom, issue item 3)
# Extrapolation (bench/cohort_throughput.py): train and validation x 100 / generations run, test as
# measured (it does not depend on the number of generations); per subject = total / subjects.
# Output, at most 3 files in $OUT: gpu_check.log (everything printed), gpu_check.json (every
# step's JSON merged), profile_surrogate.txt (top cProfile entries).
# Exit status: 0 when every step that ran exited 0; 1 when any step failed or timed out (the
# failed steps are listed at the end); 2 when the preflight finds the interpreter lacking torch,
# numpy, pandas or delssome_norms (nothing else runs then). The interpreter is $PYTHON, else
# .venv/bin/python when it runs, else python3.
# Usage (repository root, torch with CUDA + triton installed; no network needed):
#   git archive <pre-change commit> delssome_norms | (mkdir -p .baseline && tar -x -C .baseline)
#   OUT=/some/dir bash bench/gpu_check.sh
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
out="${OUT:-$root/bench/results/gpu}"
mkdir -p "$out"
. "$root/bench/gpu_env.sh"  # carried run-time dependencies (.whl/site), if any
extra_path="${PYTHONPATH:-}"  # e.g. carried wheels; kept for the baseline run too
export PYTHONUNBUFFERED=1 PYTHONPATH="$root${extra_path:+:$extra_path}"
. "$root/bench/gpu_preflight.sh" gpu_check.sh torch numpy pandas scipy safetensors cma sklearn \
    tvb_data.connectivity delssome_norms
tmp="$(mktemp -d)"
budget="${BUDGET_S:-335}"
# overrides for a CPU dry run of the plumbing, e.g.
#   DEVICE=cpu SCAN_LENGTH=72 SUBJECTS=2 EULER_SUBJECTS=2 BUDGET_S=300 OUT=/tmp/gpu_dry \
#     bash bench/gpu_check.sh
dev="${DEVICE:-cuda}"; scan="${SCAN_LENGTH:-864}"
nsub="${SUBJECTS:-64}"; neul="${EULER_SUBJECTS:-16}"
t0=$(date +%s)
log="$out/gpu_check.log"
exec > >(tee -a "$log") 2>&1
left() { echo $(( budget - ($(date +%s) - t0) )); }
failed=()  # "name (rc N)" of every step that exited non-zero (124/137: timed out)
# run STEP_NAME MAX_SECONDS command...: timeout = min(MAX, time left - 5); skipped below 15 s
run() {
    local name="$1" max="$2"; shift 2
    local l; l=$(left); local t=$(( max < l - 5 ? max : l - 5 ))
    if (( t < 15 )); then echo "=== $name: SKIPPED (budget: ${l} s left)"; return; fi
    echo "=== $name (timeout ${t} s, $(date +%T), ${l} s of budget left)"
    local s rc; s=$(date +%s)
    timeout --kill-after=5 "$t" "$@"
    rc=$?
    local why=""; (( rc == 124 || rc == 137 )) && why=" (timed out)"
    echo "=== $name: rc $rc$why in $(( $(date +%s) - s )) s"
    (( rc == 0 )) || failed+=("$name (rc $rc$why)")
}

echo "=== device"
if [[ "$dev" == cuda* ]]; then  # a CPU dry run has no nvidia-smi
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
fi
$py - <<'PY'
import importlib, torch
print("torch", torch.__version__, "cuda", torch.cuda.is_available())
missing = []
for m in ("triton", "numpy", "scipy", "pandas", "cma", "sklearn", "tvb_data", "tqdm", "safetensors", "matplotlib", "pytest"):
    try:
        importlib.import_module(m)
    except Exception as exc:  # noqa: BLE001
        missing.append(f"{m} ({exc.__class__.__name__})")
print("missing modules:", ", ".join(missing) or "none")
PY
timeout 60 $py -m delssome_norms.cli.main info || echo "(delssome-norms info failed)"
[ -d .baseline/delssome_norms ] && echo "baseline package: .baseline/delssome_norms" \
    || echo "no .baseline/delssome_norms: the E/I check is skipped"

# 1. surrogate-mode throughput (the headline number)
run "cohort throughput, surrogate" 100 $py bench/cohort_throughput.py --device "$dev" \
    --mode surrogate --scan-length "$scan" --subjects "$nsub" --generations 10 --profile 30 --out "$tmp/throughput_surrogate.json"

# 2. Euler-mode throughput
run "cohort throughput, euler" 80 $py bench/cohort_throughput.py --device "$dev" --mode euler \
    --scan-length "$scan" --subjects "$neul" --k "$neul" --generations 10 --out "$tmp/throughput_euler.json"

# 3. E/I unchanged against the pre-change code (same subjects, seed, K and settings)
if [ -d .baseline/delssome_norms ]; then
    common=(--device "$dev" --scan-length "$scan" --mode surrogate euler --subjects 4 --k 4
            --generations 3 --no-warmup)
    # the baseline package looks for weights beside itself: point it at this checkout's
    run "E/I check: baseline" 55 env PYTHONPATH="$root/.baseline${extra_path:+:$extra_path}" \
        DELSSOME_NORMS_PRETRAINED="$root/pretrained/delssome_dk68" $py bench/cohort_throughput.py \
        "${common[@]}" --ei-out "$tmp/ei_baseline.json" --out "$tmp/ei_run_baseline.json"
    if [ -f "$tmp/ei_baseline.json" ]; then
        run "E/I check: this code" 55 $py bench/cohort_throughput.py "${common[@]}" \
            --compare "$tmp/ei_baseline.json" --out "$tmp/ei_check.json"
    fi
fi

# 4. surrogate mode, 3 processes sharing the GPU (as 3 shards of a cohort would): the host work
#    of one (CMA-ES bookkeeping, checkpoints) overlaps the device work of the others
run "cohort throughput, surrogate, 3 processes" 90 $py bench/cohort_throughput.py --device "$dev" \
    --mode surrogate --scan-length "$scan" --subjects "$nsub" --generations 10 --processes 3 \
    --out "$tmp/throughput_surrogate_3proc.json"

# 5. GPU tests
run "GPU tests" 50 $py -m pytest -q -p no:cacheprovider -x -m gpu tests/model

# 6. HCP-size generation and 3000-simulation throughput (a CPU dry run: simulate.py --quick, no
#    scaling run; simulate.py takes the full device, cuda:N included, and keys its JSON by type)
if [[ "$dev" == cuda* ]]; then sim_size=(--scale-sets 1000); else sim_size=(--quick); fi
run "simulate: HCP generation" 60 $py bench/simulate.py --device "$dev" --skip-test-stage \
    --baseline-steps 200 "${sim_size[@]}" --out "$tmp/simulate.json"

# 7. gate and coupling micro-benchmarks
micro_quick=(); [[ "$dev" == cuda* ]] || micro_quick=(--quick)  # CPU dry run: tiny sizes
run "micro-benchmarks" 35 $py bench/gpu_micro.py --device "$dev" ${micro_quick[@]+"${micro_quick[@]}"} --out "$tmp/gpu_micro.json"


echo "=== merge ($(left) s of budget left)"
$py - "$tmp" "$out" <<'PY'
import json, sys
from pathlib import Path
tmp, out = Path(sys.argv[1]), Path(sys.argv[2])
merged = {}
for f in sorted(tmp.glob("*.json")):
    try:
        merged[f.stem] = json.loads(f.read_text())
    except Exception as exc:  # noqa: BLE001
        merged[f.stem] = {"error": repr(exc)}
lines = []
for key in ("throughput_surrogate", "throughput_surrogate_3proc", "throughput_euler"):
    for mode, r in merged.get(key, {}).get("modes", {}).items():
        lines.append(f"# {key} ({mode}): {r['per_subject_full_fit_s']} s/subject, split "
                     f"{r['per_subject_split_s']}, K {r['group_size']}, passed {r.get('passed')}, "
                     f"gate pass by generation {r.get('gate_pass_fraction_by_generation')}")
        for e in r.get("profile_top", []):
            lines.append(f"{e['tottime_s']:9.3f} {e['cumtime_s']:9.3f} {e['calls']:9d}  {e['function']}")
        r.pop("ei", None)  # keep the merged file small
(out / "profile_surrogate.txt").write_text("\n".join(lines) + "\n")
(out / "gpu_check.json").write_text(json.dumps(merged, indent=1))
chk = merged.get("ei_check", {}).get("ei_check", {})
for mode, c in chk.items():
    print(f"E/I vs baseline, {mode}: r_min {c['r_min']}, identical {c['identical']}, "
          f"test-cost change {c['test_cost_rel_change']}")
print("merged:", ", ".join(merged))
PY
(( $? == 0 )) || failed+=("merge")
rm -rf "$tmp"
echo "=== done in $(( $(date +%s) - t0 )) s"
if (( ${#failed[@]} )); then
    echo "=== FAILED: ${#failed[@]} step(s): $(IFS=';'; echo "${failed[*]}")"
    exit 1
fi
