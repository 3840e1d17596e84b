#!/usr/bin/env bash
# Continue a training run on a CUDA GPU for a fixed time, then pack what it wrote so it can travel back.
#
#   bash reports/gpu_continue.sh RUN_DIR MINUTES TRAIN_OPTIONS...
#
# for example, the from-scratch joint+clamp arm at n_critic 1 (the release candidate), to 64,000 iterations:
#   bash reports/gpu_continue.sh reports/runs/fashion-mnist-32-scratch-joint-clamp-ncritic1 8 --preset fashion-mnist-32 \
#       --set decoder_batch=joint --set prior_clamp=1.0 --set amp=none --set channels_last=true \
#       --set total_iterations=64000 --set network_snapshot_every=1000 --set n_critic=1
#
# TRAIN_OPTIONS are the run's own (a resume refuses any that change its training; total_iterations,
# data_root and the memory layout channels_last may change), so the piece continues the saved state: same options, weights, optimizer moments,
# queues, data position and CPU random stream. A state saved by a CPU run holds no CUDA random stream, so the
# GPU's starts from the run's seed, and a GPU's float32 (TF32 convolutions by default) rounds differently from
# the CPU's: the iterations after the piece follow the same recipe, not bit-equal to a CPU continuation.
# Fashion-MNIST: Debian's folder, or DCVAE_FASHION_MNIST=folder holding the four IDX .gz files.
# DCVAE_DEVICE=cpu tries the script without a GPU; PYTHON=... names the interpreter (default python3).
# RUN_DIR must lie inside the repository (relative paths are taken from the repository root). Only RUN_DIR is
# needed under reports/runs: a copy sent to a GPU machine may leave the other runs out. Stop any CPU process
# training the same run before sending it: unpacking the piece replaces its checkpoint and stats.
#
# Output: the files of RUN_DIR that the piece wrote, as gpu-piece.tgz cut into 15 MB parts
# (gpu-piece.tgz.part-aa, -ab, ...) and train.log, in $OUT when set, else in ./gpu-piece/; unpack the parts at
# the repository root with `cat gpu-piece.tgz.part-* | tar xzf -`, then measure as usual (`dcvae-train curves
# RUN_DIR ...`). Choose MINUTES to leave room for start-up and packing inside whatever limit the machine sets,
# and expect about 1.2 MB per network snapshot plus 6 MB of checkpoint: a machine that returns only a few files
# needs a MINUTES short enough for few parts. A training failure still packs what was written, and the script
# exits with the training's status (or 3 when packing failed).
set -uo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 2 ]; then
    echo "usage: bash reports/gpu_continue.sh RUN_DIR MINUTES TRAIN_OPTIONS..." >&2
    exit 2
fi
given=$1 run_dir=$1 minutes=$2
shift 2
root=$PWD
case $run_dir in /*) ;; *) run_dir="$root/$run_dir" ;; esac
run_dir=$(realpath -m "$run_dir")
case $run_dir in
    "$root"/*) run_dir=${run_dir#"$root"/} ;;
    *) echo "$given is outside the repository ($root): the piece is packed with paths from its root" >&2; exit 2 ;;
esac
if [ ! -f "$run_dir/checkpoint.pt" ]; then
    echo "$run_dir/checkpoint.pt not found: give the folder of a run to continue" >&2
    exit 2
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
python=${PYTHON:-python3}
dest=${OUT:-gpu-piece}
mkdir -p "$dest"
rm -f "$dest"/gpu-piece.tgz.part-*
if command -v nvidia-smi > /dev/null; then nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; fi
"$python" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" || exit 1
marker=$(mktemp)
lines_before=$(wc -l 2>/dev/null < "$run_dir/stats.jsonl" || echo 0)
"$python" -m training train --run-dir "$run_dir" --device "${DCVAE_DEVICE:-cuda}" --no-progress \
    --max-minutes "$minutes" \
    ${DCVAE_FASHION_MNIST:+--data-root "$DCVAE_FASHION_MNIST"} "$@" 2>&1 | tee "$dest/train.log"
train_rc=${PIPESTATUS[0]}
# what the piece trained, from the stats it logged
tail -n +"$((lines_before + 1))" "$run_dir/stats.jsonl" 2>/dev/null | "$python" -c '
import json, sys
rows = [json.loads(line) for line in sys.stdin if line.strip()]
rates = sorted(r["Perf/images_per_s"] for r in rows if "Perf/images_per_s" in r)
if rows:
    first, last = rows[0]["iteration"], rows[-1]["iteration"]
    minutes = rows[-1].get("Perf/elapsed_min", float("nan"))
    rate = f"; median {rates[len(rates) // 2]:.0f} real images/s" if rates else ""
    print(f"piece: logged iterations {first:,} -> {last:,}, {minutes:.1f} min{rate}")
else:
    print("piece: nothing logged")
' | tee -a "$dest/train.log"
find "$run_dir" -type f -newer "$marker" -print0 | tar czf - --null -T - | split -b 15m - "$dest/gpu-piece.tgz.part-"
pack_status=("${PIPESTATUS[@]}")
rm -f "$marker"
ls -l "$dest"
echo "training exit $train_rc, packing exit ${pack_status[*]}"
for status in "${pack_status[@]}"; do
    if [ "$status" -ne 0 ]; then exit 3; fi
done
exit "$train_rc"
