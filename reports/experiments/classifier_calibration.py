"""Is the repo's classifier as strict as another one? Class agreement of reference reconstructions.

``recon_class_agreement_test`` is measured with the small CNN this repository trains (test accuracy 0.893).
A checker with another classifier may be stricter or more lenient. This script measures reconstructions whose
agreement under another classifier is known, so the two scales can be set side by side:

- PCA-k reconstructions of the test images, the principal components fitted on the training split (content
  region; reconstructions clamped to the pixel range or not, both reported with their pixel MSE);
- any model folders given (a release, a run's network snapshot, an earlier release taken out of git history).

For each: pixel MSE (``recon_mse_test``'s protocol) and the share of the test images whose reconstruction the
classifier puts in the class it gives the source (``recon_class_agreement_test``'s protocol). With
``--second-classifier DIR`` a second classifier scores the same reconstructions, as a check of how much the
agreement moves with the network that judges it: loaded from DIR, or, where DIR holds none yet, trained there
(the same architecture, seed 1, ``--second-classifier-epochs`` epochs). With ``--refine N`` each model is also
scored on a fixed subset of the test images (``--refine-images``, ``subset_indices``'s seeded draw) twice: from its
posterior means and from latents refined for N steps on pixel error (``model.encode(..., refine=N)``), which says
how much agreement a better encoder could still buy from the same decoder. With ``--judge DIR`` a classifier of
another build (``judge_classifier.py``: deeper, batch norm, dropout, augmentation) scores them too.

    python reports/experiments/classifier_calibration.py dcvae_tools/weights/fashion-mnist-32 --pca 64 \\
        -o reports/experiments/classifier-calibration-fashion-mnist-32.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch

from dcvae_tools import load_model
from dcvae_tools.io_utils import atomic_write_text
from training.metrics.common import crop_content, subset_indices
from training.metrics.metric_main import MetricOptions
from training.metrics.reconstruction import reconstruction_errors


def pca_reconstructions(train: torch.Tensor, test: torch.Tensor, k: int, clamp: bool) -> torch.Tensor:
    """PCA-k reconstructions of ``test`` (images in [-1, 1]) with components fitted on ``train``."""
    x = train.flatten(1).double()
    mean = x.mean(0)
    covariance = (x - mean).T @ (x - mean) / (len(x) - 1)
    _, vectors = torch.linalg.eigh(covariance)  # ascending eigenvalues: the last k are the top components
    basis = vectors[:, -k:]
    y = test.flatten(1).double() - mean
    recon = (y @ basis @ basis.T + mean).reshape(test.shape).float()
    return recon.clamp(-1, 1) if clamp else recon


def agreement(classifier: Any, source_classes: torch.Tensor, reconstructions: torch.Tensor) -> float:
    """Share of ``reconstructions`` the classifier puts in ``source_classes``, the classes it gave their sources."""
    return float((source_classes == classifier.predict(reconstructions)).double().mean())


def edits_and_samples(opts: MetricOptions, classifiers: dict[str, Any]) -> dict[str, Any]:
    """``edit_success_<attr>`` (strength 1, the shipped directions) of every class attribute the model ships, and
    ``sample_class_entropy10k`` (N(0, I) draws clamped as the model's config says, seed 0), by each classifier:
    the metrics' own protocols with another judge."""
    from training.metrics.common import MetricError
    from training.metrics.edit import edit_success
    from training.metrics.metric_main import (
        SAMPLE_CLASS_IMAGES,
        attribute_classes,
        class_shares,
        normalized_entropy,
    )

    images, labels = opts.test_split()
    out: dict[str, Any] = {}
    for name, vector in sorted(opts.model.attributes.items()):
        try:
            positive, negative, _ = attribute_classes(opts, name)
        except MetricError:  # a measured attribute (ink mass): no classes to judge it by
            continue
        keep = torch.isin(labels, torch.tensor(negative))
        for cname, net in classifiers.items():
            result = edit_success(opts.model, net, vector.direction, images[keep], positive, negative,
                                  strength=1.0, content_size=opts.content_size)
            out[f"edit_success_{name}_{cname}"] = result.success_rate
    z = opts.model.random_latents(SAMPLE_CLASS_IMAGES, seed=0, prior="standard")
    samples = crop_content(opts.model.decode(z), opts.content_size)
    for cname, net in classifiers.items():
        out[f"sample_class_entropy10k_{cname}"] = normalized_entropy(class_shares(net.predict(samples), 10))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("models", nargs="+", help="model folders; the first sets the dataset and the classifier")
    parser.add_argument("--pca", type=int, nargs="*", default=[64], help="PCA component counts (default: 64)")
    parser.add_argument(
        "--second-classifier",
        type=Path,
        default=None,
        help="folder of a second classifier to score with (trained there if it holds none)",
    )
    parser.add_argument(
        "--second-classifier-epochs",
        type=float,
        default=8.0,
        help="epochs when the second classifier is trained (default: 8)",
    )
    parser.add_argument(
        "--judge",
        type=Path,
        default=None,
        help="folder of a judge_classifier.py network (another build) to score with as well",
    )
    parser.add_argument(
        "--edits",
        action="store_true",
        help="also judge the first model's shipped class edits (strength 1) and N(0, I) samples by every classifier",
    )
    parser.add_argument("--refine", type=int, default=0, help="also score each model's refined latents (N steps)")
    parser.add_argument("--refine-images", type=int, default=500, help="test images for --refine (default: 500)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="JSON report to write")
    args = parser.parse_args()

    first = load_model(args.models[0], device="cpu")
    opts = MetricOptions(model=first, dataset=first.config.dataset or "fashion-mnist", show_progress=False)
    content = opts.content_size
    test, _ = opts.test_split()
    test_c = crop_content(test, content)

    classifiers: dict[str, Any] = {"repo": opts.classifier()}
    if args.second_classifier:
        from training.metrics.classifier import (
            CONFIG_FILE,
            WEIGHTS_FILE,
            load_classifier,
            save_classifier,
            train_classifier,
        )

        if any((args.second_classifier / name).exists() for name in (WEIGHTS_FILE, CONFIG_FILE)):
            classifiers["second"] = load_classifier(args.second_classifier)  # raises when one of the two is missing
            if classifiers["second"].config.dataset != opts.dataset:
                parser.error(
                    f"--second-classifier {args.second_classifier} was trained on "
                    f"{classifiers['second'].config.dataset}, the models on {opts.dataset}"
                )
        else:
            start = time.perf_counter()
            classifiers["second"] = train_classifier(
                opts.dataset, opts.data_root, seed=1, epochs=args.second_classifier_epochs, show_progress=False
            )
            save_classifier(classifiers["second"], args.second_classifier)
            print(
                f"second classifier: test accuracy {classifiers['second'].config.test_accuracy:.4f} "
                f"({time.perf_counter() - start:.0f} s)",
                flush=True,
            )

    if args.judge:
        if opts.dataset != "fashion-mnist":
            parser.error(f"--judge is a Fashion-MNIST classifier; the models are on {opts.dataset}")
        from judge_classifier import load_judge  # beside this script

        classifiers["judge"] = load_judge(args.judge)

    reconstructions: dict[str, torch.Tensor] = {}
    refined_sets: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}  # name -> (test indices, reconstructions)
    train_c = crop_content(opts.split("train")[0], content) if args.pca else None  # PCA's fitting images only
    for k in args.pca:
        for clamp in (False, True):
            reconstructions[f"pca-{k}" + ("-clamped" if clamp else "")] = pca_reconstructions(train_c, test_c, k, clamp)
    for folder in args.models:
        model_opts = (
            opts
            if folder == args.models[0]
            else MetricOptions(model=load_model(folder, device="cpu"), dataset=opts.dataset, show_progress=False)
        )
        reconstructions[folder] = crop_content(model_opts.reconstructions(), content)  # the metric's, checked finite
        if args.refine:
            chosen = subset_indices(len(test), args.refine_images)
            keep = torch.arange(len(test)) if chosen is None else torch.from_numpy(chosen)
            subset = f"{len(keep)} test images"
            refined = model_opts.model.decode(model_opts.model.encode(test[keep], refine=args.refine))
            refined_sets[f"{folder} (posterior mean, {subset})"] = (keep, reconstructions[folder][keep])
            refined_sets[f"{folder} (refine {args.refine}, {subset})"] = (keep, crop_content(refined, content))

    report: dict[str, Any] = {
        "dataset": opts.dataset,
        "num_test": len(test),
        "classifiers": {name: net.describe() for name, net in classifiers.items()},
        "protocol": "pixel MSE on the [0, 1] scale over the content region; agreement: the classifier's class "
        "of each test reconstruction against its class of the source",
        "results": {},
    }
    everything = torch.arange(len(test))
    scored = [(name, everything, recon) for name, recon in reconstructions.items()]
    scored += [(name, keep, recon) for name, (keep, recon) in refined_sets.items()]
    source_classes = {cname: net.predict(test_c) for cname, net in classifiers.items()}  # once per classifier
    for name, keep, recon in scored:
        entry: dict[str, Any] = {"recon_mse_test": reconstruction_errors(test_c[keep], recon)["mse"]}
        for cname, net in classifiers.items():
            entry[f"agreement_{cname}"] = agreement(net, source_classes[cname][keep], recon)
        report["results"][name] = entry
        print(name, json.dumps(entry), flush=True)
    if args.edits:
        report["edits_and_samples"] = {args.models[0]: edits_and_samples(opts, classifiers)}
        print(args.models[0], json.dumps(report["edits_and_samples"][args.models[0]]), flush=True)
    atomic_write_text(args.output, json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
