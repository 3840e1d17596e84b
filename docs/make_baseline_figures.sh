#!/usr/bin/env bash
# Draws reconstructions (of docs/examples/fashion-mnist) and prior samples of the Fashion-MNIST baselines beside
# the released model, with the dcvae command:
#
#   bash docs/make_baseline_figures.sh                 # docs/figures/baselines/: the first release's budget
#   bash docs/make_baseline_figures.sh same-schedule [ITERATION]   # docs/figures/baselines-<N/1000>k/: each run's
#                                                                 # snapshot at ITERATION (default 48000)
#   bash docs/make_baseline_figures.sh past-64k ITERATION   # docs/figures/past-64k-<N/1000>k/: the from-scratch
#                                                           # n_critic-1 run and the VAE/GAN continued past 64,000
#
# The first needs its training runs (`bash reports/reproduce.sh baselines` writes
# runs/fashion-mnist-32-{vae,vaegan,dcvae-no-instance}; each is exported to the release format in a temporary
# folder first). The second draws the network snapshot at ITERATION of DC-VAE, the VAE and the VAE/GAN in
# reports/runs/ and skips the runs that have not reached it. The third draws the same two pictures for the two runs
# compared past 64,000 iterations (reports/reproduce.sh targets scratch-joint-clamp-n-critic-1-past-64k and
# vaegan-equal-budget) at one ITERATION both have a snapshot of. Snapshots carry no fitted mixture, so their
# samples are N(0, I) clamped to [-1, 1]: the paper's protocol, what fd10k_classifier measures.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1
E=docs/examples/fashion-mnist
F=docs/figures/baselines
ITERATION=${2:-48000}
[ "${1:-}" = same-schedule ] && F=docs/figures/baselines-$((ITERATION / 1000))k
if [ "${1:-}" = past-64k ]; then
    [ $# -eq 2 ] || { echo "past-64k needs the ITERATION both runs have a snapshot of, e.g. 72000" >&2; exit 2; }
    F=docs/figures/past-64k-$((ITERATION / 1000))k
    name=$(printf iteration-%07d "$ITERATION")
    dcvae=reports/runs/fashion-mnist-32-scratch-joint-clamp-ncritic1-past-64k/network-snapshots/$name
    vaegan=reports/runs/fashion-mnist-32-vaegan-equal-budget/network-snapshots/$name
    for snapshot in "$dcvae" "$vaegan"; do
        [ -f "$snapshot/model.safetensors" ] || { echo "no $snapshot: pick an iteration both runs have" >&2; exit 1; }
    done
fi
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
elif [ "${1:-}" = past-64k ]; then
    draw "$dcvae" dcvae
    draw "$vaegan" vaegan
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
