"""Does the linear probe's L2 penalty decide who wins? The probe with its penalty chosen on the training split.

``probe_linear_test`` and ``probe_pixels_test`` fit softmax regression with one small fixed penalty
(``weight_decay`` 1e-4, :func:`training.metrics.probe.linear_probe`). A fixed penalty can flatter one side: 784
pixel features fitted on 4,000 digits overfit more than 64 latent ones. Here each representation gets the
penalty that scores best in k-fold cross-validation on the training split alone (the test split is never used
to choose), and its test accuracy at that penalty is reported beside the test accuracy at every penalty.

For each model folder (a release, or a run's network snapshot) its posterior means are probed; raw pixels are
probed once per dataset. Writes one JSON report.

    python reports/experiments/probe_weight_decay.py dcvae_tools/weights/mnist-32 \\
        reports/runs/mnist-32-vae/network-snapshots/iteration-0048000 \\
        -o reports/experiments/probe-weight-decay-mnist-32.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch

from dcvae_tools import load_model
from dcvae_tools.io_utils import atomic_write_text
from training.metrics.common import crop_content
from training.metrics.metric_main import MetricOptions
from training.metrics.probe import linear_probe

PENALTIES = (1e-4, 1e-3, 1e-2, 3e-2, 1e-1, 3e-1)


def cross_validated(x: torch.Tensor, y: torch.Tensor, penalty: float, folds: int, seed: int) -> float:
    """Mean held-out-fold accuracy of the probe fitted on the other folds (one fixed, seeded partition)."""
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    parts = order.chunk(folds)
    scores = []
    for i, held in enumerate(parts):
        fit = torch.cat([p for j, p in enumerate(parts) if j != i])
        scores.append(linear_probe(x[fit], y[fit], x[held], y[held], weight_decay=penalty).test_accuracy)
    return sum(scores) / folds


def probe(train: torch.Tensor, train_y: torch.Tensor, test: torch.Tensor, test_y: torch.Tensor, folds: int,
          seed: int) -> dict[str, Any]:
    cv = {p: cross_validated(train, train_y, p, folds, seed) for p in PENALTIES}
    test_acc = {p: linear_probe(train, train_y, test, test_y, weight_decay=p).test_accuracy for p in PENALTIES}
    chosen = max(PENALTIES, key=lambda p: (cv[p], -p))  # ties: the smaller penalty
    return {
        "dim": int(train[0].numel()),
        "cv_accuracy": {str(p): round(v, 4) for p, v in cv.items()},
        "test_accuracy": {str(p): v for p, v in test_acc.items()},
        "chosen_weight_decay": chosen,
        "test_accuracy_at_chosen": test_acc[chosen],
        "test_accuracy_at_default": test_acc[1e-4],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("models", nargs="+", help="model folders (releases or network snapshots)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="JSON report to write")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    report: dict[str, Any] = {"penalties": list(PENALTIES), "folds": args.folds, "seed": args.seed, "probes": {}}
    pixels_done: set[str] = set()
    for folder in args.models:
        model = load_model(folder, device="cpu")
        dataset = model.config.dataset or "fashion-mnist"
        opts = MetricOptions(model=model, dataset=dataset, show_progress=False)
        train, train_y = opts.split("train")
        test, test_y = opts.test_split()
        with torch.inference_mode():
            z_train, z_test = model.encode(train, batch_size=256), model.encode(test, batch_size=256)
        report["probes"][folder] = probe(z_train.cpu(), train_y, z_test.cpu(), test_y, args.folds, args.seed)
        print(folder, json.dumps(report["probes"][folder]), flush=True)
        if dataset not in pixels_done:
            pixels_done.add(dataset)
            flat = [crop_content(x, opts.content_size).flatten(1) for x in (train, test)]
            report["probes"][f"pixels:{dataset}"] = probe(flat[0], train_y, flat[1], test_y, args.folds, args.seed)
            print(f"pixels:{dataset}", json.dumps(report["probes"][f"pixels:{dataset}"]), flush=True)
    atomic_write_text(args.output, json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
