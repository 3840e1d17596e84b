#!/usr/bin/env bash
# Every released checkpoint and every number in reports/ comes from these commands (2 CPU cores, nothing else
# running: training takes about 1 s an iteration there). Run one target at a time:
#   bash reports/reproduce.sh mnist-32          # train, evaluate, release (bundle) mnist-32
#   bash reports/reproduce.sh baselines         # Fashion-MNIST VAE / VAE-GAN / DC-VAE-no-instance at the default
#                                               # model's budget, each evaluated like it
#   bash reports/reproduce.sh latent            # reports/latent and reports/experiments (after the two above)
#   bash reports/reproduce.sh sample-classes    # reports/sample-classes: which classes the four models' samples are
#   bash reports/reproduce.sh perceptual        # reports/perceptual: VGG16 (HED weights) distance of the four models
#   bash reports/reproduce.sh lite0             # reports/lite0: sampling and reconstruction FD in EfficientNet-Lite0
#                                               # features of the four Fashion-MNIST models (after baselines)
# Runs resume where they stopped (re-run the same target), so a run may be split across sittings.
set -euo pipefail
cd "$(dirname "$0")/.."
TRAIN="python -m training"
FASHION_METRICS=recon_mse_test,recon_psnr_test,fd10k_classifier,rfd_classifier,probe_linear_test
MNIST_METRICS=recon_mse_test,recon_psnr_test,probe_linear_test,probe_pixels_test

# The released Fashion-MNIST model and its three same-budget baselines, as folder:report-name.
FASHION_MODELS="dcvae_tools/weights/fashion-mnist-32:fashion-mnist-32 runs/fashion-mnist-32-vae:fashion-mnist-32-vae
runs/fashion-mnist-32-vaegan:fashion-mnist-32-vaegan
runs/fashion-mnist-32-dcvae-no-instance:fashion-mnist-32-dcvae-no-instance"

eval_fashion_models() {  # metrics, report folder -> reports/<folder>/<name>.json for each of FASHION_MODELS
    for model in $FASHION_MODELS; do
        $TRAIN eval "${model%%:*}" --metrics "$1" -o "reports/$2/${model##*:}.json"
    done
}

train() {  # preset -> runs/<preset>
    $TRAIN train --preset "$1" --run-dir "runs/$1" --no-progress
}

case "${1:-}" in
    fashion-mnist-32)
        train fashion-mnist-32
        $TRAIN eval runs/fashion-mnist-32 -o reports/fashion-mnist-32.json --edit-strength 2.0 \
            --metrics "$FASHION_METRICS,probe_pixels_test,edit_success_long_sleeves,edit_success_boot,edit_success_open_shoe"
        $TRAIN release runs/fashion-mnist-32 --name fashion-mnist-32 --repo-id dcvae-tools/fashion-mnist-32 \
            --report reports/fashion-mnist-32.json --default
        ;;
    mnist-32)
        train mnist-32
        train mnist-32-vae
        $TRAIN eval runs/mnist-32 -o reports/mnist-32.json --metrics "$MNIST_METRICS"
        $TRAIN eval runs/mnist-32-vae -o reports/baselines/mnist-32-vae.json --metrics "$MNIST_METRICS"
        $TRAIN release runs/mnist-32 --name mnist-32 --repo-id dcvae-tools/mnist-32 --report reports/mnist-32.json
        ;;
    baselines)
        for preset in fashion-mnist-32-vae fashion-mnist-32-vaegan fashion-mnist-32-dcvae-no-instance; do
            train "$preset"
            $TRAIN eval "runs/$preset" -o "reports/baselines/$preset.json" --metrics "$FASHION_METRICS"
        done
        ;;
    latent)
        for pair in "dcvae_tools/weights/fashion-mnist-32 fashion-mnist-32" "runs/fashion-mnist-32-vae fashion-mnist-32-vae" \
                    "dcvae_tools/weights/mnist-32 mnist-32" "runs/mnist-32-vae mnist-32-vae"; do
            set -- $pair
            $TRAIN eval "$1" --metrics latent_kl_test -o "reports/latent/$2.json"
        done
        for pair in "dcvae_tools/weights/fashion-mnist-32 fashion-mnist-32" "runs/fashion-mnist-32-vae fashion-mnist-32-vae"; do
            set -- $pair
            $TRAIN eval "$1" --metrics fd10k_classifier,latent_kl_test --sample-prior fitted \
                -o "reports/experiments/fitted-prior-$2.json"
        done
        ;;
    sample-classes)
        eval_fashion_models sample_class_entropy10k sample-classes
        ;;
    perceptual)
        eval_fashion_models perceptual_hed_test perceptual
        ;;
    lite0)
        eval_fashion_models fd10k_lite0,rfd_lite0 lite0
        ;;
    *)
        echo "usage: bash reports/reproduce.sh fashion-mnist-32|mnist-32|baselines|latent|sample-classes|perceptual|lite0" >&2
        exit 2
        ;;
esac
