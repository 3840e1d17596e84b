#!/usr/bin/env bash
# Draws reconstructions (of docs/examples/fashion-mnist) and prior samples of the Fashion-MNIST baselines beside
# the released model, with the dcvae command:
#
#   bash docs/make_baseline_figures.sh                 # docs/figures/baselines/: the first release's budget
#   bash docs/make_baseline_figures.sh same-schedule [ITERATION]   # docs/figures/baselines-<N/1000>k/: each run's
#                                                                 # snapshot at ITERATION (default 48000)
#
# The first needs its training runs (`bash reports/reproduce.sh baselines` writes
# runs/fashion-mnist-32-{vae,vaegan,dcvae-no-instance}; each is exported to the release format in a temporary
# folder first). The second draws the network snapshot at ITERATION of DC-VAE, the VAE and the VAE/GAN in
# reports/runs/ and skips the runs that have not reached it.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1
E=docs/examples/fashion-mnist
F=docs/figures/baselines
ITERATION=${2:-48000}
[ "${1:-}" = same-schedule ] && F=docs/figures/baselines-$((ITERATION / 1000))k
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$F"
draw() {  # model name-or-folder, figure name
    dcvae reconstruct -m "$1" -q $E/*.png --grid "$F/reconstructions-$2.png"
    dcvae sample -m "$1" -q -n 16 --seed 0 -o "$F/samples-$2.png"
}
if [ "${1:-}" = same-schedule ]; then
    for name in dcvae vae vaegan; do
        run=reports/runs/fashion-mnist-32-$name
        [ $name = dcvae ] && run=reports/runs/fashion-mnist-32
        snapshot=$run/network-snapshots/iteration-$(printf %07d "$ITERATION")
        if [ -f "$snapshot/model.safetensors" ]; then draw "$snapshot" "$name"; else echo "skipped $name: no $snapshot"; fi
    done
else
    draw fashion-mnist-32 dcvae
    for name in vae vaegan dcvae-no-instance; do
        run=runs/fashion-mnist-32-$name
        [ -f "$run/checkpoint.pt" ] || { echo "missing $run: run 'bash reports/reproduce.sh baselines' first" >&2; exit 1; }
        python -m training export "$run" -o "$TMP/$name" > /dev/null
        draw "$TMP/$name" "$name"
    done
fi
echo "wrote $(find $F -type f | wc -l) files in $F"
