"""A few-second smoke test on real Fashion-MNIST: tiny widths, small queue, for tests and laptops."""

from ..options import TrainingOptions
from .fashion_mnist_32 import PRESET as _FASHION

PRESET: TrainingOptions = _FASHION.override(
    preset="tiny",
    reproduces=None,
    description="Tiny DC-VAE for smoke tests",
    architecture_args={"gf_dim": 8, "df_dim": 8},
    latent_dim=8,
    batch_size=8,
    gen_batch_size=8,
    queue_size=64,
    n_critic=2,
    total_iterations=20,
    amp="none",
    channels_last=False,
    log_every=5,
    snapshot_every=10,
    checkpoint_every=10,
)
