"""Refined inversion: what optimising the latent (``refine=N``) buys over the encoder's posterior mean.

On held-out Fashion-MNIST **test** images with the bundled default model:

* reconstruction: pixel MSE ([0, 1] scale, content area, as ``recon_mse_test``) and class agreement (the share
  of images whose reconstruction the repo's FD-classifier puts in the source's predicted class, as
  ``recon_class_agreement_test``), for N = 0 (the posterior mean) and a few N with the default settings, plus
  N = 50 without the anchor term and N = 50 with the classifier's features added to the loss;
* edits after refinement: ``training/metrics/edit.py``'s protocol (negative-side test images, the model's shipped
  direction at strength 1, the classifier judging whether the edit shows the attribute) for ``long_sleeves``
  (T-shirts) and ``boot`` (sneakers), with the latents refined first; identity = MSE of the edited image to the
  source image, and how far the edit moved the image from its reconstruction;
* time per image (wall time of the refinement / images; one thread is what OMP_NUM_THREADS=1 gives).

    OMP_NUM_THREADS=1 python -m benchmarks.refine            # -n 200 --edit-n 64 (a few minutes)
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import torch

from benchmarks import common

ATTRIBUTES = {"long_sleeves": ((2, 4, 6), (0,)), "boot": ((9,), (7,))}
"""Attribute -> (positive classes, negative classes), as ``training.attributes`` defines them."""

FEATURE_WEIGHT = 0.04
"""Weight of the classifier-feature term: its mean squared feature difference starts about 25x the pixel MSE
(1.08 vs 0.043 on 200 test reconstructions), so 0.04 makes the two terms start about equal."""


class _Refining:
    """The model as ``edit_success`` uses it (``encode``/``decode``), with ``encode`` refining the latents."""

    def __init__(self, model: Any, steps: int, **options: Any) -> None:
        self.model, self.steps, self.options = model, steps, options

    def encode(self, images: torch.Tensor, batch_size: int | None = None) -> torch.Tensor:
        if not self.steps:
            return self.model.encode(images, batch_size=batch_size)
        from dcvae_tools.editing.refine import refine_latents

        return refine_latents(self.model, images, self.steps, batch_size=batch_size, **self.options).latents

    def decode(self, latents: torch.Tensor, batch_size: int | None = None) -> torch.Tensor:
        return self.model.decode(latents, batch_size)


def reconstruction_rows(model: Any, classifier: Any, x: torch.Tensor, steps: list[int]) -> list[dict[str, Any]]:
    """One row per setting: MSE, class agreement, distance of the latent from the posterior mean, time."""
    from dcvae_tools.editing.refine import DEFAULT_ANCHOR_WEIGHT, refine_latents
    from training.metrics.common import crop_content
    from training.metrics.reconstruction import reconstruction_errors

    content = model.config.content_size
    source_class = classifier.predict(crop_content(x, content))
    mu = model.encode(x)
    features = _classifier_features(classifier)
    settings: list[tuple[str, int, dict[str, Any]]] = [(f"N={n}", n, {}) for n in steps]
    settings += [("N=50, no anchor", 50, {"anchor_weight": 0.0}),
                 (f"N=50, + classifier features (weight {FEATURE_WEIGHT})", 50,
                  {"features": features, "feature_weight": FEATURE_WEIGHT})]
    rows = []
    for label, n, options in settings:
        start = time.perf_counter()
        if n:
            result = refine_latents(model, x, n, init=mu, **options)
            z, stopped, ran = result.latents, result.stopped, result.steps
        else:
            z, stopped, ran = model.encode(x), "-", 0
        seconds = time.perf_counter() - start
        recon = model.decode(z)
        errors = reconstruction_errors(x, recon, content)
        agree = (classifier.predict(crop_content(recon, content)) == source_class).double().mean()
        rows.append({
            "setting": label, "steps": n, "steps_run": ran, "stopped": stopped,
            "anchor_weight": options.get("anchor_weight", DEFAULT_ANCHOR_WEIGHT) if n else None,
            "recon_mse": errors["mse"], "psnr": errors["psnr"], "class_agreement": float(agree),
            "latent_shift": float((z - mu).norm(dim=1).mean()),
            "ms_per_image": 1000 * seconds / len(x),
        })
        print(f"  {label}: mse {errors['mse']:.4f}, agreement {float(agree):.3f}, "
              f"{rows[-1]['ms_per_image']:.0f} ms/image", flush=True)
    return rows


def _classifier_features(classifier: Any) -> Any:
    """The classifier's penultimate features of content images (differentiable): the optional feature loss."""

    def features(images: torch.Tensor) -> torch.Tensor:
        return classifier.embed(classifier.preprocess(images))

    return features


def edit_rows(model: Any, classifier: Any, images: torch.Tensor, labels: torch.Tensor, edit_n: int,
              steps: int) -> list[dict[str, Any]]:
    """``edit_success`` per attribute, for the posterior mean and for ``steps`` refinement with and without anchor."""
    from training.metrics.edit import edit_success

    rows = []
    generator = torch.Generator().manual_seed(0)
    for name, (positive, negative) in ATTRIBUTES.items():
        pool = torch.nonzero(torch.isin(labels, torch.tensor(negative))).flatten()
        pick = pool[torch.randperm(len(pool), generator=generator)[:edit_n]].sort().values
        sources = images[pick]
        direction = model.attributes[name].direction
        for label, n, options in (("N=0", 0, {}), (f"N={steps}", steps, {}),
                                  (f"N={steps}, no anchor", steps, {"anchor_weight": 0.0})):
            result = edit_success(_Refining(model, n, **options), classifier, direction, sources, positive, negative,
                                  strength=1.0, content_size=model.config.content_size, batch_size=model.batch_size)
            rows.append({"attribute": name, "setting": label, "images": result.num_images,
                         "success": result.success_rate, "baseline": result.baseline_rate,
                         "identity_mse_to_source": result.mse_to_source,
                         "l2_to_reconstruction": result.mean_l2_to_reconstruction})
            print(f"  {name} {label}: success {result.success_rate:.3f}, identity MSE {result.mse_to_source:.4f}",
                  flush=True)
    return rows


def measure(model_path: str | None, n: int, edit_n: int, steps: list[int]) -> dict[str, Any]:
    from training.metrics.classifier import load_or_train_classifier
    from training.metrics.common import split_tensors, subset_indices

    model, description = common.default_model(model_path)
    c = model.config
    classifier = load_or_train_classifier("fashion-mnist")
    images, labels = split_tensors("fashion-mnist", "test", c.image_size, c.channels, content_size=c.content_size)
    keep = subset_indices(len(images), n)
    subset = images if keep is None else images[torch.from_numpy(keep)]
    print(f"reconstruction, {len(subset)} test images:", flush=True)
    recon = reconstruction_rows(model, classifier, subset, steps)
    edit_steps = 50
    print(f"edits, {edit_n} negative-side test images per attribute:", flush=True)
    edits = edit_rows(model, classifier, images, labels, edit_n, edit_steps)
    return {
        "model": description,
        "classifier": classifier.describe(),
        "images": f"{len(subset)} Fashion-MNIST test images (training.metrics.common.subset_indices, seed 0)",
        "edit_images": f"{edit_n} test images of each attribute's negative classes (seed 0)",
        "reconstruction": recon,
        "edits": edits,
    }


RECON_COLUMNS = [
    ("setting", "setting", ""), ("steps_run", "steps run", "d"), ("recon_mse", "MSE", ".4f"),
    ("psnr", "PSNR dB", ".2f"), ("class_agreement", "class agreement", ".3f"),
    ("latent_shift", "|z - mu|", ".2f"), ("ms_per_image", "ms/image", ".0f"),
]
EDIT_COLUMNS = [
    ("attribute", "attribute", ""), ("setting", "setting", ""), ("success", "success", ".3f"),
    ("baseline", "baseline", ".3f"), ("identity_mse_to_source", "MSE to source", ".4f"),
    ("l2_to_reconstruction", "L2 to recon", ".2f"),
]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="release folder or training run folder (default: bundled)")
    parser.add_argument("-n", type=int, default=200, help="test images for the reconstruction rows")
    parser.add_argument("--edit-n", type=int, default=64, help="negative-side test images per attribute")
    parser.add_argument("--steps", default="20,50,100", help="refinement steps to measure, comma-separated")
    args = parser.parse_args(argv)
    steps = [0, *(int(s) for s in args.steps.split(",") if s.strip())]
    torch.manual_seed(0)
    info = common.machine_info()
    print(common.header("Refined inversion: reconstruction and edits before and after refine=N", info))
    given = sys.argv[1:] if argv is None else argv
    result = {"machine": info, "command": " ".join(["OMP_NUM_THREADS=1 python -m benchmarks.refine", *given]),
              **measure(args.model, args.n, args.edit_n, steps)}
    print(common.format_table(result["reconstruction"], RECON_COLUMNS))
    print(common.format_table(result["edits"], EDIT_COLUMNS))
    path = common.write_json("refine", result)
    print(f"wrote {path}")
    return result


if __name__ == "__main__":
    main()
