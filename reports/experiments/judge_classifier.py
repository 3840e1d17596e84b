"""A classifier of another build than the repo's, to judge class agreement the way an outside checker might.

The repo's classifier (training/metrics/classifier.py) is a two-layer CNN trained for two epochs (test accuracy
0.893 on Fashion-MNIST); the second one in reports/classifiers/fashion-mnist-second is the same network trained
longer. An independent checker is more likely to use a deeper network with batch normalisation, dropout and
augmentation, trained to about 0.93. This is such a network, so the agreement of the same reconstructions can be
read under three judges:

- four 3x3 convolutions (32, 32, 64, 64 channels) with batch norm and ReLU, a 2x2 max-pool after each pair,
  dropout 0.25 after each pool, a 256-unit hidden layer with batch norm and dropout 0.5, then the class logits;
- trained on the 60,000 training images (28x28, [-1, 1]) with random shifts of up to 2 pixels, Adam at 1e-3
  halved every 4 epochs, batch 128, seed 2; the test split is only measured, never trained or selected on.

    python reports/experiments/judge_classifier.py --epochs 12 -o reports/classifiers/fashion-mnist-judge

writes ``model.safetensors`` and ``config.json`` (settings, test accuracy, wall time) there; ``load_judge``
reads them back for ``classifier_calibration.py --judge``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from dcvae_tools.io_utils import atomic_write, atomic_write_text, sha256_file
from training.data.augment import random_translate
from training.metrics.common import labelled_split_tensors

ARCHITECTURE = "vgg-bn-4"


class JudgeCNN(nn.Module):
    """The judge network; ``predict`` takes [N, 1, 28, 28] images in [-1, 1] and returns their classes."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()

        def pair(cin: int, cout: int) -> list[nn.Module]:
            return [
                nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
                nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
                nn.MaxPool2d(2), nn.Dropout(0.25),
            ]

        self.features = nn.Sequential(*pair(1, 32), *pair(32, 64), nn.Flatten())
        self.head = nn.Sequential(
            nn.Linear(64 * 7 * 7, 256, bias=False), nn.BatchNorm1d(256), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(256, num_classes),
        )
        self.info: dict[str, Any] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    @torch.no_grad()
    def predict(self, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
        if images.shape[1:] != (1, 28, 28):
            raise ValueError(f"the judge takes [N, 1, 28, 28] images, got {tuple(images.shape)}")
        was_training = self.training
        self.eval()
        out = torch.cat([self(images[i : i + batch_size].float()).argmax(1) for i in range(0, len(images), batch_size)])
        self.train(was_training)
        return out

    def describe(self) -> dict[str, Any]:
        return {"architecture": ARCHITECTURE, **self.info}


def train_judge(epochs: int, seed: int = 2, data_root: str | None = None) -> JudgeCNN:
    train_x, train_y = labelled_split_tensors("fashion-mnist", "train", 28, 1, data_root)
    test_x, test_y = labelled_split_tensors("fashion-mnist", "test", 28, 1, data_root)
    torch.manual_seed(seed)
    net = JudgeCNN()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    schedule = torch.optim.lr_scheduler.StepLR(opt, step_size=4, gamma=0.5)
    order = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    step = 0
    for epoch in range(epochs):
        net.train()
        for batch in torch.randperm(len(train_x), generator=order).split(128):
            draws = torch.Generator().manual_seed(seed * 1_000_003 + step)
            x = random_translate(train_x[batch], 2, draws)
            loss = F.cross_entropy(net(x), train_y[batch])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
        schedule.step()
        accuracy = float((net.predict(test_x) == test_y).double().mean())
        print(f"epoch {epoch + 1}/{epochs}: loss {loss.item():.4f}, test accuracy {accuracy:.4f}", flush=True)
    net.info = {
        "dataset": "fashion-mnist", "epochs": epochs, "seed": seed, "steps": step, "batch_size": 128,
        "augmentation": "random shifts of up to 2 pixels", "lr": "1e-3, halved every 4 epochs",
        "test_accuracy": round(accuracy, 4), "train_seconds": round(time.perf_counter() - start, 1),
        "torch": torch.__version__, "machine": platform.machine(), "threads": torch.get_num_threads(),
    }
    return net


def save_judge(net: JudgeCNN, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_write(folder / "model.safetensors") as tmp:
        save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp))
    atomic_write_text(folder / "config.json", json.dumps({"architecture": ARCHITECTURE, **net.info}, indent=2) + "\n")


def load_judge(folder: Path) -> JudgeCNN:
    config = json.loads((folder / "config.json").read_text())
    if config.get("architecture") != ARCHITECTURE:
        raise SystemExit(f"{folder} holds a {config.get('architecture')!r} classifier, not the judge ({ARCHITECTURE})")
    net = JudgeCNN()
    net.load_state_dict(load_file(str(folder / "model.safetensors")))
    net.info = {**config, "weights_sha256": sha256_file(folder / "model.safetensors")}
    net.info.pop("architecture")
    return net.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=12, help="passes over the training split (default: 12)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="folder to write the judge to")
    args = parser.parse_args()
    save_judge(train_judge(args.epochs), args.output)


if __name__ == "__main__":
    main()
