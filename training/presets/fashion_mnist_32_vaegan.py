"""Fashion-MNIST baseline, same backbone and budget as fashion-mnist-32, objective 'vaegan'."""

from ..options import TrainingOptions
from .fashion_mnist_32 import PRESET as _FASHION

PRESET: TrainingOptions = _FASHION.override(
    preset="fashion-mnist-32-vaegan",
    reproduces=None,
    description="Fashion-MNIST baseline: vaegan",
    objective="vaegan",
)
