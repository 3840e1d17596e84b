"""Fashion-MNIST baseline, same backbone and budget as fashion-mnist-32, objective 'dcvae-no-instance'."""

from ..options import TrainingOptions
from .fashion_mnist_32 import PRESET as _FASHION

PRESET: TrainingOptions = _FASHION.override(
    preset="fashion-mnist-32-dcvae-no-instance",
    reproduces=None,
    description="Fashion-MNIST baseline: dcvae-no-instance",
    objective="dcvae-no-instance",
)
