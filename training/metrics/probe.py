"""Linear probe (supplementary A.6): a linear classifier on frozen representations, scored on the test split.

Reference protocol: the paper freezes the trained DC-VAE, takes the latent embedding of each image and trains
a linear classifier to predict the image's label (following its reference [2]); the paper's code for it was
not released. Here: the representation is the encoder's posterior mean; features are standardised with the
train split's mean and standard deviation; the classifier is multinomial logistic regression (softmax,
cross-entropy plus a small L2 penalty ``weight_decay / 2 * ||W||^2``) fitted full-batch with L-BFGS (strong
Wolfe line search) from zero weights, so the result is deterministic. The same probe on raw pixels
(:func:`pixel_probe`) is the baseline that says how much the latent space adds.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F

from .common import crop_content, require_finite

__all__ = ["ProbeResult", "latent_probe", "linear_probe", "pixel_probe"]


@dataclass
class ProbeResult:
    """Outcome of a linear probe.

    Attributes:
        test_accuracy: share of test items classified correctly (the reported metric).
        train_accuracy: the same on the training items.
        num_train, num_test, dim, num_classes: sizes.
        iterations: L-BFGS iterations run; seconds: fitting wall time.
        features: what was probed (e.g. ``"latent posterior mean"``, ``"raw pixels"``).
    """

    test_accuracy: float
    train_accuracy: float
    num_train: int
    num_test: int
    dim: int
    num_classes: int
    iterations: int
    seconds: float
    features: str = "features"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def linear_probe(
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    *,
    weight_decay: float = 1e-4,
    max_iter: int = 200,
    standardize: bool = True,
    features: str = "features",
) -> ProbeResult:
    """Fit softmax regression on (train_x [N, D], train_y [N]) and score it on (test_x, test_y).

    Args:
        weight_decay: L2 penalty on the weights (not the bias); keeps separable data from diverging.
        max_iter: L-BFGS iterations (full batch).
        standardize: z-score features with the train statistics first (constant features are left at 0).
        features: a label for the report.
    """
    x_tr = train_x.detach().reshape(len(train_x), -1).float().cpu()
    x_te = test_x.detach().reshape(len(test_x), -1).float().cpu()
    y_tr = train_y.detach().long().cpu()
    y_te = test_y.detach().long().cpu()
    if len(x_tr) != len(y_tr) or len(x_te) != len(y_te):
        raise ValueError("features and labels differ in length")
    if (len(y_tr) and int(y_tr.min()) < 0) or (len(y_te) and int(y_te.min()) < 0):
        raise ValueError("labels must be >= 0: drop unlabelled images (label -1, as in STL-10's train split) first, "
                         "e.g. with training.metrics.common.labelled_split_tensors")
    if x_tr.shape[1] != x_te.shape[1]:
        raise ValueError(f"train and test features differ in size: {x_tr.shape[1]} vs {x_te.shape[1]}")
    if standardize:
        mean = x_tr.mean(0)
        std = x_tr.std(0, unbiased=False)
        std = torch.where(std > 1e-8, std, torch.ones_like(std))
        x_tr, x_te = (x_tr - mean) / std, (x_te - mean) / std
    num_classes = int(max(int(y_tr.max()), int(y_te.max()))) + 1
    weight = torch.zeros(x_tr.shape[1], num_classes, requires_grad=True)
    bias = torch.zeros(num_classes, requires_grad=True)
    optimizer = torch.optim.LBFGS(
        [weight, bias],
        lr=1.0,
        max_iter=max_iter,
        history_size=20,
        line_search_fn="strong_wolfe",
        tolerance_grad=1e-9,
        tolerance_change=1e-12,
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(x_tr @ weight + bias, y_tr) + 0.5 * weight_decay * weight.pow(2).sum()
        loss.backward()
        return loss

    start = time.perf_counter()
    with torch.enable_grad():
        optimizer.step(closure)
    seconds = time.perf_counter() - start
    iterations = int(optimizer.state[optimizer._params[0]].get("n_iter", 0))
    with torch.no_grad():
        train_acc = float(((x_tr @ weight + bias).argmax(1) == y_tr).double().mean())
        test_acc = float(((x_te @ weight + bias).argmax(1) == y_te).double().mean())
    return ProbeResult(
        test_accuracy=test_acc,
        train_accuracy=train_acc,
        num_train=len(x_tr),
        num_test=len(x_te),
        dim=x_tr.shape[1],
        num_classes=num_classes,
        iterations=iterations,
        seconds=round(seconds, 3),
        features=features,
    )


def latent_probe(
    model: Any,
    train_images: torch.Tensor,
    train_labels: torch.Tensor,
    test_images: torch.Tensor,
    test_labels: torch.Tensor,
    *,
    batch_size: int = 256,
    **probe_kwargs: Any,
) -> ProbeResult:
    """Linear probe on a frozen DC-VAE's posterior means of model-space images (the paper's A.6 protocol)."""
    z_train = require_finite(model.encode(train_images, batch_size=batch_size), "train latents")
    z_test = require_finite(model.encode(test_images, batch_size=batch_size), "test latents")
    return linear_probe(z_train, train_labels, z_test, test_labels, features="latent posterior mean", **probe_kwargs)


def pixel_probe(
    train_images: torch.Tensor,
    train_labels: torch.Tensor,
    test_images: torch.Tensor,
    test_labels: torch.Tensor,
    *,
    content_size: int | None = None,
    **probe_kwargs: Any,
) -> ProbeResult:
    """The same linear probe on raw pixels (content region, flattened): the baseline for :func:`latent_probe`."""
    train = crop_content(train_images, content_size)
    test = crop_content(test_images, content_size)
    return linear_probe(train, train_labels, test, test_labels, features="raw pixels", **probe_kwargs)
