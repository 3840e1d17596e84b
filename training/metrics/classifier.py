"""FD-classifier: a small CNN trained in this repo on a dataset's train split, used as a feature network
(Frechet distance on its 128-d penultimate layer) and as the judge of attribute edits.

Reference practice matched: the "FID with a domain classifier" used for MNIST-like data (e.g. the LeNet
features of the MNIST GAN literature) where ImageNet networks see grey 28x28 images poorly. Numbers from
this network are only comparable between evaluations that used the very same classifier file: reports carry
its sha256, its training settings and its test accuracy.

Architecture (input ``C x S x S`` in [-1, 1], S divisible by 4): conv3x3(C->32) ReLU maxpool2,
conv3x3(32->64) ReLU maxpool2, Linear(64 (S/4)^2 -> 128) ReLU = the features, Linear(128 -> classes).
Training: Adam (lr 1e-3), batch 128, 2 epochs (at least 500 steps), cross-entropy, no augmentation,
deterministic for a given seed on a given machine. Saved as ``model.safetensors`` + ``config.json`` in
``<cache>/classifiers/<dataset>/`` (default cache ``~/.cache/dcvae-tools``).
"""

from __future__ import annotations

import json
import math
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dcvae_tools.errors import DCVAEError
from dcvae_tools.io_utils import atomic_write, atomic_write_text, sha256_file

from ..data import canonical_dataset_name
from .common import batches, default_cache_dir, labelled_split_tensors, progress, split_tensors, to_grey
from .features import FeatureNetwork

__all__ = [
    "CLASSIFIER_INPUTS",
    "ClassifierConfig",
    "SmallCNN",
    "classifier_accuracy",
    "classifier_dir",
    "load_classifier",
    "load_or_train_classifier",
    "train_classifier",
]

CLASSIFIER_INPUTS: dict[str, tuple[int, int]] = {
    "fashion-mnist": (28, 1),
    "mnist5k": (28, 1),
    "mnist": (28, 1),
    "cifar10": (32, 3),
    "stl10": (32, 3),
}
"""Dataset -> (input side, channels) of its classifier: each dataset's native format (STL-10 at 32x32)."""

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


@dataclass
class ClassifierConfig:
    """Architecture, training settings and measured facts of a dataset classifier (its config.json).

    Attributes:
        dataset: the dataset name it was trained on (``training.data.make_dataset`` names).
        input_size, channels: the input format (``CLASSIFIER_INPUTS``).
        num_classes: output classes.
        width: channels of the first conv (the second has twice as many).
        feature_dim: size of the penultimate layer (the FD features).
        seed: seed of the initialisation and of the batch order.
        epochs: passes over the training images (the step count is at least ``min_steps``).
        min_steps: lower bound on the number of steps, for small datasets.
        max_steps: stop after this many steps (None: no limit); used for quick tests.
        batch_size, lr: Adam settings.
        train_images: how many training images were used (None: the whole train split).
        steps: steps actually run (filled in by training).
        test_accuracy: accuracy on the whole test split (filled in by training).
        train_seconds: wall time of training.
        info: versions and machine facts.
    """

    dataset: str
    input_size: int
    channels: int
    num_classes: int
    width: int = 32
    feature_dim: int = 128
    seed: int = 0
    epochs: float = 2.0
    min_steps: int = 500
    max_steps: int | None = None
    batch_size: int = 128
    lr: float = 1e-3
    train_images: int | None = None
    steps: int | None = None
    test_accuracy: float | None = None
    train_seconds: float | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_file(cls, path: Path) -> ClassifierConfig:
        data = json.loads(path.read_text(encoding="utf-8"))
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


class SmallCNN(FeatureNetwork):
    """The dataset classifier: 2 conv + 2 FC layers; ``forward`` gives the 128-d features (post-ReLU)."""

    name = "FD-classifier"
    short = "classifier"

    def __init__(self, config: ClassifierConfig) -> None:
        super().__init__()
        if config.input_size % 4:
            raise ValueError(f"classifier input_size must be divisible by 4, got {config.input_size}")
        self.config = config
        self.dim = config.feature_dim
        w = config.width
        self.conv1 = nn.Conv2d(config.channels, w, 3, padding=1)
        self.conv2 = nn.Conv2d(w, 2 * w, 3, padding=1)
        self.fc1 = nn.Linear(2 * w * (config.input_size // 4) ** 2, config.feature_dim)
        self.fc2 = nn.Linear(config.feature_dim, config.num_classes)
        self.weights_sha256: str | None = None

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float()
        if self.config.channels == 1:
            x = to_grey(x)
        elif x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        size = self.config.input_size
        if x.shape[-2:] != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        return x

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return F.relu(self.fc1(torch.flatten(x, 1)))

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """Class logits [N, classes] of images in [-1, 1]."""
        return self.fc2(self.embed(self.preprocess(images)))

    def predict(self, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
        """Predicted labels [N] (int64, CPU) of images in [-1, 1]."""
        device = self.fc2.weight.device
        out = []
        with torch.inference_mode():
            for batch in batches(images, batch_size):
                out.append(self.logits(batch.to(device)).argmax(1).cpu())
        return torch.cat(out)

    def cache_key(self) -> str:
        return f"classifier-{self.config.dataset}-{(self.weights_sha256 or 'unsaved')[:12]}"

    def describe(self) -> dict[str, Any]:
        c = self.config
        return {
            "feature_network": self.name,
            "dim": self.dim,
            "layer": f"penultimate (fc1, {c.feature_dim}-d, post-ReLU)",
            "dataset": c.dataset,
            "input": f"{c.channels}x{c.input_size}x{c.input_size} in [-1, 1]",
            "test_accuracy": c.test_accuracy,
            "train_images": c.train_images,
            "steps": c.steps,
            "epochs": c.epochs,
            "seed": c.seed,
            "weights_sha256": self.weights_sha256,
        }


def classifier_dir(dataset: str, cache_dir: str | Path | None = None) -> Path:
    """``<cache>/classifiers/<dataset>/`` (default cache ``~/.cache/dcvae-tools``)."""
    return default_cache_dir(cache_dir) / "classifiers" / _folder_name(dataset)


def _folder_name(dataset: str) -> str:
    """The dataset's canonical name as a folder name (classifiers, cached and pinned, live under it)."""
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in canonical_dataset_name(dataset))


PINNED_CLASSIFIERS = Path(__file__).resolve().parents[2] / "reports" / "classifiers"
"""Classifiers committed to the repository (outside the wheel): the ones every report's numbers are measured with."""


def pinned_classifier_dir(dataset: str) -> Path | None:
    """The repository's pinned classifier for ``dataset``, or None (no checkout, or none pinned).

    Training the classifier again gives different weights on another machine or torch version (its test accuracy
    moved from 0.891 to 0.893 between two machines), and every classifier metric moves with it; so a checkout
    measures with the committed one unless a ``cache_dir`` is given or ``retrain`` is asked for.
    """
    folder = PINNED_CLASSIFIERS / _folder_name(dataset)
    return folder if (folder / WEIGHTS_FILE).is_file() and (folder / CONFIG_FILE).is_file() else None


def _input_format(dataset: str) -> tuple[int, int]:
    key = canonical_dataset_name(dataset)
    if key not in CLASSIFIER_INPUTS:
        raise DCVAEError(
            f"no FD-classifier for dataset {dataset!r}: classifier metrics need a labelled dataset among "
            f"{', '.join(CLASSIFIER_INPUTS)}"
        )
    return CLASSIFIER_INPUTS[key]


def classifier_accuracy(net: SmallCNN, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 512) -> float:
    """Share of ``images`` (in [-1, 1]) whose predicted class equals ``labels``."""
    return float((net.predict(images, batch_size) == labels.cpu()).double().mean())


def train_classifier(
    dataset: str,
    data_root: str | None = None,
    *,
    seed: int = 0,
    epochs: float = 2.0,
    min_steps: int = 500,
    max_steps: int | None = None,
    batch_size: int = 128,
    lr: float = 1e-3,
    train_images: int | None = None,
    test_images: int | None = None,
    device: str | torch.device | None = None,
    show_progress: bool | None = None,
) -> SmallCNN:
    """Train the dataset's classifier (see the module docstring) and measure its test accuracy.

    Args:
        dataset: a labelled dataset name (``CLASSIFIER_INPUTS``).
        data_root: passed to ``training.data.make_dataset``.
        seed: initialisation and batch-order seed.
        epochs, min_steps, max_steps: steps = max(ceil(epochs * N / batch_size), min_steps), capped at max_steps.
        batch_size, lr: Adam settings.
        train_images: train on a fixed seeded subset of this many images (None: the whole split).
        test_images: measure accuracy on a fixed subset of the test split (None: all of it).
        device: training device (default CPU).
        show_progress: progress bar (default: when stderr is a terminal).

    Returns:
        The trained network in eval mode; ``config.test_accuracy`` is filled in.
    """
    dataset = canonical_dataset_name(dataset)
    size, channels = _input_format(dataset)
    x, y = labelled_split_tensors(dataset, "train", size, channels, data_root, limit=train_images)
    num_classes = int(y.max()) + 1
    steps = max(math.ceil(epochs * len(x) / batch_size), min_steps)
    if max_steps is not None:
        steps = min(steps, max_steps)
    config = ClassifierConfig(
        dataset=dataset,
        input_size=size,
        channels=channels,
        num_classes=num_classes,
        seed=seed,
        epochs=epochs,
        min_steps=min_steps,
        max_steps=max_steps,
        batch_size=batch_size,
        lr=lr,
        train_images=train_images,
    )
    device = torch.device(device or "cpu")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = SmallCNN(config).to(device)
    order_gen = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    start = time.perf_counter()
    net.train()
    perm, pos = torch.randperm(len(x), generator=order_gen), 0
    with progress(steps, f"training {dataset} classifier", enabled=show_progress) as advance:
        for _ in range(steps):
            if pos + batch_size > len(x):
                perm, pos = torch.randperm(len(x), generator=order_gen), 0
            index = perm[pos : pos + batch_size]
            pos += batch_size
            loss = F.cross_entropy(net.fc2(net.embed(x[index].to(device))), y[index].to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            advance(1)
    net.eval()
    config.steps = steps
    config.train_seconds = round(time.perf_counter() - start, 2)
    tx, ty = split_tensors(dataset, "test", size, channels, data_root, limit=test_images)
    config.test_accuracy = classifier_accuracy(net, tx, ty)
    config.info = {
        "test_images": len(tx),
        "final_loss": float(loss.detach()),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "machine": platform.machine(),
        "threads": torch.get_num_threads(),
        "trained_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    return net


def save_classifier(net: SmallCNN, folder: str | Path) -> Path:
    """Write ``model.safetensors`` and ``config.json`` into ``folder`` (atomically each); returns the folder."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    with atomic_write(folder / WEIGHTS_FILE) as tmp:
        save_file(tensors, str(tmp), metadata={"format": "pt", "dataset": net.config.dataset})
    atomic_write_text(folder / CONFIG_FILE, net.config.to_json())
    net.weights_sha256 = sha256_file(folder / WEIGHTS_FILE)
    return folder


def load_classifier(folder: str | Path, device: str | torch.device | None = None) -> SmallCNN:
    """Load a classifier saved by :func:`save_classifier` (safetensors, strict)."""
    from safetensors.torch import load_file

    folder = Path(folder)
    if not (folder / WEIGHTS_FILE).is_file() or not (folder / CONFIG_FILE).is_file():
        raise FileNotFoundError(f"no classifier in {folder} (needs {WEIGHTS_FILE} and {CONFIG_FILE})")
    config = ClassifierConfig.from_file(folder / CONFIG_FILE)
    net = SmallCNN(config)
    net.load_state_dict(load_file(str(folder / WEIGHTS_FILE)), strict=True)
    net.weights_sha256 = sha256_file(folder / WEIGHTS_FILE)
    return net.to(device or "cpu").eval()


def load_or_train_classifier(
    dataset: str,
    cache_dir: str | Path | None = None,
    data_root: str | None = None,
    *,
    device: str | torch.device | None = None,
    retrain: bool = False,
    show_progress: bool | None = None,
    **train_kwargs: Any,
) -> SmallCNN:
    """The dataset's classifier: the repository's pinned one (:func:`pinned_classifier_dir`) when no ``cache_dir``
    is given, else the one in ``<cache>/classifiers/<dataset>/``, trained and saved there first if absent.

    A cached classifier is used as it is, whatever ``train_kwargs`` say (its config records how it was
    trained); ``retrain=True`` replaces it.
    """
    pinned = pinned_classifier_dir(dataset)
    if cache_dir is None and not retrain and pinned is not None:
        return load_classifier(pinned, device)
    folder = classifier_dir(dataset, cache_dir)
    if not retrain and (folder / WEIGHTS_FILE).is_file():
        return load_classifier(folder, device)
    net = train_classifier(dataset, data_root, device=device, show_progress=show_progress, **train_kwargs)
    save_classifier(net, folder)
    return net
