#!/usr/bin/env bash
# Draws docs/figures/baselines/: reconstructions and prior samples of the same-budget Fashion-MNIST baselines
# beside the released model, with the dcvae command. Needs their training runs (`bash reports/reproduce.sh
# baselines` writes runs/fashion-mnist-32-{vae,vaegan,dcvae-no-instance}); each is exported to the release
# format in a temporary folder first.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1
E=docs/examples/fashion-mnist
F=docs/figures/baselines
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$F"
draw() {  # model name-or-folder, figure name
    dcvae reconstruct -m "$1" -q $E/*.png --grid "$F/reconstructions-$2.png"
    dcvae sample -m "$1" -q -n 16 --seed 0 -o "$F/samples-$2.png"
}
draw fashion-mnist-32 dcvae
for name in vae vaegan dcvae-no-instance; do
    run=runs/fashion-mnist-32-$name
    [ -f "$run/checkpoint.pt" ] || { echo "missing $run: run 'bash reports/reproduce.sh baselines' first" >&2; exit 1; }
    python -m training export "$run" -o "$TMP/$name" > /dev/null
    draw "$TMP/$name" "$name"
done
echo "wrote $(find $F -type f | wc -l) files in $F"
