#!/usr/bin/env bash
# Regenerate the DELSSOME surrogate's training data and weights on one CUDA GPU (the same two
# commands as pretrained/README.md, at its dt 0.006 s as the shipped weights' metadata records, with
# GPU-sized lockstep groups). Writes the new weights to $OUT/delssome_dk68/ (model.safetensors,
# metadata.json, training_log.json) and a log.
# Usage: OUT=dir bash bench/gpu_surrogate_retrain.sh   (GEN_LIMIT_S / TRAIN_LIMIT_S bound the two
# steps; SUBJECTS GROUP GENS POP SCAN EPOCHS DEVICE override sizes for a CPU dry run)
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
out="${OUT:-$root/bench/results/gpu}"
mkdir -p "$out/delssome_dk68"
. "$root/bench/gpu_env.sh"  # carried run-time dependencies (.whl/site), if any
. "$root/bench/gpu_preflight.sh" gpu_surrogate_retrain.sh torch numpy pandas scipy safetensors cma sklearn \
    tvb_data.connectivity delssome_norms  # sets $py
export PYTHONUNBUFFERED=1
data="$(mktemp -d)/surrogate_data"
echo "=== surrogate generate on cuda ($(date +%T))"
start=$(date +%s)
timeout "${GEN_LIMIT_S:-240}" $py -m delssome_norms.cli.main surrogate generate --out "$data" \
    --subjects "${SUBJECTS:-40}" --group-size "${GROUP:-20}" --generations "${GENS:-15}" \
    --popsize "${POP:-40}" --scan-lengths "${SCAN:-432}" --dt 0.006 --n-dup 2 --seed 0 \
    --device "${DEVICE:-cuda}" --quiet
rc_gen=$?
echo "generate: exit $rc_gen, $(( $(date +%s) - start )) s"
echo "=== surrogate train on cuda ($(date +%T))"
start=$(date +%s)
timeout "${TRAIN_LIMIT_S:-150}" $py -m delssome_norms.cli.main surrogate train --data "$data" \
    --out "$out/delssome_dk68" --overwrite --seed 0 --epochs "${EPOCHS:-60}" --lr-decay 0.95 \
    --patience 8 --device "${DEVICE:-cuda}" --quiet
rc_train=$?
echo "train: exit $rc_train, $(( $(date +%s) - start )) s"
$py - "$out/delssome_dk68/metadata.json" <<'PY'
import json, sys
try:
    m = json.load(open(sys.argv[1]))
except OSError:
    print("no metadata written"); raise SystemExit(1)
print(json.dumps(m.get("metrics", {}))[:1500])
PY
rc_meta=$?
# non-zero when generate or train failed (or timed out) or no weights were written
if (( rc_gen || rc_train || rc_meta )); then
    echo "=== FAILED: generate rc $rc_gen, train rc $rc_train, metadata rc $rc_meta"
    exit 1
fi
