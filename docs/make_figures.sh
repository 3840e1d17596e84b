#!/usr/bin/env bash
# Regenerates every picture in docs/figures with the dcvae command and the bundled default model, offline.
#   bash docs/make_figures.sh [MODEL]
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1
M=${1:-fashion-mnist-32}
E=docs/examples
F=docs/figures
mkdir -p "$F"
dcvae reconstruct -m "$M" -q $E/*.png --grid $F/reconstructions.png
dcvae sample -m "$M" -q -n 64 --seed 0 -o $F/samples.png
dcvae interpolate -m "$M" -q $E/tshirt.png $E/dress.png --steps 8 --slerp -o $F/interpolation.png \
    --gif $F/interpolation.gif
dcvae interpolate -m "$M" -q $E/sneaker.png $E/ankle_boot.png --steps 8 -o $F/interpolation_shoes.png
dcvae mix -m "$M" -q --a $E/tshirt.png --a $E/coat.png --a $E/sneaker.png --a $E/trouser.png \
    --b $E/dress.png --count 6 --seed 0 -o $F/mix.png
dcvae edit -m "$M" -q $E/tshirt.png $E/tshirt2.png $E/dress.png -a long_sleeves --sweep -2:3:6 \
    --grid $F/edit_long_sleeves.png
dcvae edit -m "$M" -q $E/sneaker.png $E/sneaker2.png -a boot --sweep -2:3:6 --grid $F/edit_boot.png
dcvae edit -m "$M" -q $E/sneaker.png $E/sneaker2.png -a open_shoe --sweep -2:3:6 --grid $F/edit_open_shoe.png
dcvae edit -m "$M" -q $E/tshirt.png $E/pullover.png $E/bag.png -a ink --sweep -2:3:6 --grid $F/edit_ink.png
echo "wrote $(ls $F | wc -l) files in $F"
