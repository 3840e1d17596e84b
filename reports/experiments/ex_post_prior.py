"""Where should prior samples come from? N(0, I) against a Gaussian mixture fitted to the training latents.

DC-VAE's KL weight is 1e-6, so nothing holds the encoder's latents near N(0, I): the posterior means of the
released model have a norm of about 15 where N(0, I) draws have about 8. A density fitted afterwards to the
latents of training images ("ex-post density estimation", Ghosh et al., ICLR 2020) samples where the decoder
was trained to reconstruct. This script measures, for each model folder:

* ``standard``: N(0, I) clamped to [-1, 1] (the paper's protocol; equals ``fd10k_classifier`` of ``dcvae-train
  eval``) and unclamped;
* ``gmm<K>``: a full-covariance Gaussian mixture of K components fitted by EM to posterior draws of the first
  ``--images`` training images (:func:`training.latent_prior.fit_latent_prior`, the fit releases ship; the
  most likely of ``--restarts`` EM starts, 10 by default as the mnist-32 release's since 2026-12-07; the
  Fashion-MNIST release's and the reports written before then used one start, ``--restarts 1``);

each as FD in the repository classifier's features, 10,000 samples against 10,000 training images, the protocol
of ``fd10k_classifier``. Against copying: the mean pixel distance from 1,000 samples to their nearest fitting
image, beside the same for 1,000 test images (a sampler that reproduces its training images comes out far
below the test images). With ``--figures DIR``, the first 32 samples of each prior are drawn as
``DIR/<label>-<prior>.png``.

    python reports/experiments/ex_post_prior.py dcvae_tools/weights/fashion-mnist-32 \\
        -o reports/experiments/ex-post-prior-fashion-mnist-32.json --figures docs/figures/ex-post-prior --labels dcvae
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch

from dcvae_tools import load_model
from dcvae_tools.images import save_grid
from dcvae_tools.io_utils import atomic_write_text
from training.latent_prior import DEFAULT_RESTARTS, fit_latent_prior, posterior_draws
from training.metrics.common import batches, crop_content
from training.metrics.features import feature_stats_of
from training.metrics.frechet import frechet_distance
from training.metrics.metric_main import MetricOptions


def measure(folder: str, components: list[int], images: int, figures: Path | None, label: str,
            restarts: int = DEFAULT_RESTARTS, count: int = 10_000) -> dict[str, Any]:
    model = load_model(folder)
    opts = MetricOptions(model=model, dataset=model.config.dataset or "fashion-mnist", show_progress=False)
    net = opts.feature_network("classifier")
    mu_real, sigma_real, reference = opts.real_statistics(net, "train", count)
    train, _ = opts.split("train", images)
    test, _ = opts.split("test", 1_000)
    with torch.inference_mode():
        mu, logvar = model.posterior(train, batch_size=256)
    draws = posterior_draws(mu.cpu(), logvar.cpu())

    fitting = crop_content(train, opts.content_size).flatten(1)

    def nearest_distance(x: torch.Tensor) -> float:
        return float(torch.cdist(x.flatten(1), fitting).min(1).values.mean())

    def scored(z: torch.Tensor, prior: str) -> dict[str, float]:
        # decoded once: the FD, the copying check and the figure all read the same images
        images = torch.cat([crop_content(model.decode(zb, batch_size=256), opts.content_size)
                            for zb in batches(z, 256)])
        if figures is not None:
            save_grid(images[:32], figures / f"{label}-{prior}.png", nrow=8, upscale=2)
        m, s, _ = feature_stats_of(net, batches(images, 256), 256, False, total=len(images))
        return {"fd10k_classifier": frechet_distance(m, s, mu_real, sigma_real),
                "nearest_fitting_image_distance": nearest_distance(images[:1_000])}

    standard = model.random_latents(count, seed=0, clamp=None, prior="standard").cpu()  # as fd10k_classifier draws
    result: dict[str, Any] = {
        "model": folder,
        "fitting_images": len(train),
        "latent_norm": {"posterior_mean": float(mu.float().norm(dim=1).mean()),
                        "standard_normal": float(standard.norm(dim=1).mean())},
        "test_nearest_fitting_image_distance": nearest_distance(crop_content(test, opts.content_size)),
        "reference": reference,
        "priors": {"standard, clamp 1": scored(standard.clamp(-1, 1), "standard-clamp1"),
                   "standard, unclamped": scored(standard, "standard")},
    }
    for k in components:
        prior = fit_latent_prior(draws, k, restarts=restarts)
        samples = prior.sample(count, torch.Generator().manual_seed(0))
        result["priors"][f"gmm{k}"] = {**scored(samples, f"gmm{k}"), "em_iterations": prior.metadata["em_iterations"]}
        if restarts > 1:  # keeps the reports of one start as they were written
            result["priors"][f"gmm{k}"].update(restarts=restarts, seed=prior.metadata["seed"])
        print(folder, f"gmm{k}", result["priors"][f"gmm{k}"], flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", help="release or network snapshot folders")
    parser.add_argument("--components", default="1,10,50", help="mixture sizes, comma-separated (default 1,10,50)")
    parser.add_argument("--images", type=int, default=20_000, help="training images to fit to (default 20000)")
    parser.add_argument("--restarts", type=int, default=DEFAULT_RESTARTS,
                        help=f"EM starts per mixture, the most likely kept (default {DEFAULT_RESTARTS}, as releases)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="JSON file to write")
    parser.add_argument("--figures", type=Path, default=None, help="folder for sample grids (default: none)")
    parser.add_argument("--labels", default=None, help="figure name of each model, comma-separated (default: "
                        "the folder names)")
    args = parser.parse_args()
    components = [int(k) for k in args.components.split(",")]
    labels = args.labels.split(",") if args.labels else [Path(folder).name for folder in args.models]
    if args.figures is not None:
        args.figures.mkdir(parents=True, exist_ok=True)
    results = [measure(folder, components, args.images, args.figures, label, args.restarts)
               for folder, label in zip(args.models, labels, strict=True)]
    atomic_write_text(args.output, json.dumps(results, indent=1) + "\n")
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
