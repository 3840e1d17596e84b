"""MNIST baseline for the representation experiment: mnist-32's backbone and budget, objective 'vae'."""

from ..options import TrainingOptions
from .mnist_32 import PRESET as _MNIST

PRESET: TrainingOptions = _MNIST.override(
    preset="mnist-32-vae",
    reproduces=None,
    description="MNIST baseline: vae (same backbone and budget as mnist-32)",
    objective="vae",
    kl_weight=1.0,
    n_critic=1,
)
