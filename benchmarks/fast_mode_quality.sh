#!/usr/bin/env bash
# Does the fast mode (bfloat16 autocast + channels-last) cost quality? The same budget in float32 and in the
# fast mode, two seeds each, evaluated by `dcvae-train eval` on the same 2,000 test images.
#   bash benchmarks/fast_mode_quality.sh [RUNS_DIR] [ITERATIONS]     # ~1 hour on 2 cores at 500 iterations
# Reports: benchmarks/results/fast-mode-quality/<mode>-seed<seed>.json; table: python -m benchmarks.fast_mode_table
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-runs/fast-mode-quality}"
ITERS="${2:-500}"
OUT=benchmarks/results/fast-mode-quality
mkdir -p "$OUT"
SNAP=$(printf "iteration-%07d" "$ITERS")
for seed in 123 7; do
  for mode in fast float32; do
    extra=()
    if [ "$mode" = float32 ]; then extra=(--set amp=none --set channels_last=false); fi
    run="$RUNS/$mode-seed$seed"
    dcvae-train train --preset fashion-mnist-32 --run-dir "$run" --device cpu --no-progress \
      --set seed=$seed --set total_iterations="$ITERS" --set network_snapshot_every="$ITERS" \
      --set snapshot_every="$ITERS" "${extra[@]}"
    dcvae-train eval "$run/network-snapshots/$SNAP" --test-limit 2000 \
      --metrics recon_mse_test,recon_class_agreement_test,rfd_classifier -o "$OUT/$mode-seed$seed.json"
  done
done
python -m benchmarks.fast_mode_table
