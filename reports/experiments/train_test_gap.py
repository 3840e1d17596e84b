"""Has the encoder learnt its training set rather than the data? Training split against held-out split.

For each model folder (a release or a run's network snapshot): the pixel MSE of reconstructions (posterior
mean, decoded; [0, 1] scale, content region: the protocol of ``recon_mse_test``) on the training split and on
the test split, and the linear probe (``probe_linear_test``'s protocol) scored on both. A model that
generalises reconstructs held-out images about as well as training ones; a gap that grows with training is the
signature of memorisation, which more passes over the same small training set cannot close.

    python reports/experiments/train_test_gap.py reports/runs/mnist-32/network-snapshots/iteration-0048000 \\
        dcvae_tools/weights/mnist-32 -o reports/experiments/train-test-gap-mnist-32.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch

from dcvae_tools import load_model
from dcvae_tools.io_utils import atomic_write_text
from training.metrics.metric_main import MetricOptions
from training.metrics.probe import linear_probe
from training.metrics.reconstruction import reconstruction_errors


def measure(folder: str) -> dict[str, Any]:
    model = load_model(folder, device="cpu")
    opts = MetricOptions(model=model, dataset=model.config.dataset or "fashion-mnist", show_progress=False)
    train, train_y = opts.split("train")
    test, test_y = opts.test_split()
    latents, mse = {}, {}
    with torch.inference_mode():  # each split encoded once: its reconstructions and the probe read the same means
        for name, images in (("train", train), ("test", test)):
            latents[name] = model.encode(images, batch_size=256)
            recon = model.decode(latents[name], batch_size=256)
            mse[name] = reconstruction_errors(images, recon, opts.content_size)["mse"]
    probe = linear_probe(latents["train"], train_y, latents["test"], test_y, features="latent posterior mean")
    return {
        "recon_mse_train": mse["train"],
        "recon_mse_test": mse["test"],
        "train_error_below_test": 1 - mse["train"] / mse["test"],
        "probe_train_accuracy": probe.train_accuracy,
        "probe_test_accuracy": probe.test_accuracy,
        "num_train": len(train),
        "num_test": len(test),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("models", nargs="+", help="model folders (releases or network snapshots)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="JSON report to write")
    args = parser.parse_args()
    report = {}
    for folder in args.models:
        report[folder] = measure(folder)
        print(folder, json.dumps(report[folder]), flush=True)
    atomic_write_text(args.output, json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
