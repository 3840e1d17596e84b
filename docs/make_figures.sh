#!/usr/bin/env bash
# Regenerates every picture in docs/figures with the dcvae command and the bundled models, offline.
#   bash docs/make_figures.sh [MODEL]      # MODEL: the Fashion-MNIST model to draw (default fashion-mnist-32)
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1
M=${1:-fashion-mnist-32}
E=docs/examples/fashion-mnist
F=docs/figures
mkdir -p "$F"
dcvae reconstruct -m "$M" -q $E/*.png --grid $F/reconstructions.png
dcvae sample -m "$M" -q -n 64 --seed 0 -o $F/samples.png  # from the release's fitted mixture prior
dcvae sample -m "$M" -q -n 64 --seed 0 --prior standard -o $F/samples-standard.png  # N(0, I), clamped (paper)
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

# mnist-32 (the representation model): reconstructions, interpolation and its two measured attributes
D=docs/examples/mnist
FM=$F/mnist-32
mkdir -p "$FM"
dcvae reconstruct -m mnist-32 -q $D/*.png --grid $FM/reconstructions.png
dcvae interpolate -m mnist-32 -q $D/digit1.png $D/digit7.png --steps 8 -o $FM/interpolation.png
dcvae edit -m mnist-32 -q $D/digit1.png $D/digit4.png $D/digit7.png $D/digit0.png -a thick --sweep -1:1:5 --grid $FM/edit_thick.png
dcvae edit -m mnist-32 -q $D/digit1.png $D/digit4.png $D/digit7.png $D/digit0.png -a slant --sweep -1:1:5 --grid $FM/edit_slant.png
dcvae sample -m mnist-32 -q -n 32 --nrow 8 --seed 0 -o $FM/samples.png
# the editor in a real browser (needs chromium and chromium-driver; the test skips without them)
DCVAE_UPDATE_FIGURES=1 python -m pytest -q -p no:cacheprovider tests/test_app.py -k real_browser
echo "wrote $(find $F -type f | wc -l) files in $F"
