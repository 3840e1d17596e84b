"""Fashion-MNIST baseline, same backbone and budget as fashion-mnist-32, objective 'vae'.

Same budget as DC-VAE: equal encoder/decoder updates and equal real images seen (n_critic 1, since the VAE
has one encoder/decoder phase per iteration where DC-VAE has two every second iteration).
"""

from ..options import TrainingOptions
from .fashion_mnist_32 import PRESET as _FASHION

PRESET: TrainingOptions = _FASHION.override(
    preset="fashion-mnist-32-vae",
    reproduces=None,
    description="Fashion-MNIST baseline: vae",
    objective="vae",
    kl_weight=1.0,
    n_critic=1,
)
