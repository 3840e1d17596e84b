"""Fashion-MNIST baseline, same backbone and budget as fashion-mnist-32, objective 'dcvae-no-set'."""

from ..options import TrainingOptions
from .fashion_mnist_32 import PRESET as _FASHION

PRESET: TrainingOptions = _FASHION.override(
    preset="fashion-mnist-32-dcvae-no-set",
    reproduces=None,
    description="Fashion-MNIST baseline: dcvae-no-set",
    objective="dcvae-no-set",
)
