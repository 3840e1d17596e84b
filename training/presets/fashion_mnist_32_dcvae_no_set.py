"""Fashion-MNIST baseline, same backbone and budget as fashion-mnist-32, objective 'dcvae-no-set'.

The budget is equal encoder/decoder updates and equal real images seen (``TrainingOptions.budget``):
DC-VAE updates the encoder and decoder twice every n_critic-th iteration (adversarial, then contrastive),
this objective once, so it updates them every iteration (n_critic 1) over the same number of iterations.
"""

from ..options import TrainingOptions
from .fashion_mnist_32 import PRESET as _FASHION

PRESET: TrainingOptions = _FASHION.override(
    preset="fashion-mnist-32-dcvae-no-set",
    reproduces=None,
    description="Fashion-MNIST baseline: dcvae-no-set",
    objective="dcvae-no-set",
    n_critic=1,
)
