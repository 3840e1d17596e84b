"""The bundled default model: Fashion-MNIST (60k train, 28x28 padded to 32x32, grey) on 2 CPU cores.

Widths are cut from the paper's (gf 256 / df 128 / latent 128) to gf 64 / df 32 / latent 64, and n_critic
from 5 to 2, so that a useful model trains in under 90 minutes on 2 cores (about 0.7 s an iteration there);
the objective, queue, temperature, KL weighting, EMA and optimiser are the official ones.
"""

from ..options import TrainingOptions

PRESET = TrainingOptions(
    preset="fashion-mnist-32",
    reproduces="fashion-mnist-32",
    description="DC-VAE on Fashion-MNIST (28x28 padded to 32x32), small AutoGAN backbone trained on CPU",
    dataset="fashion-mnist",
    image_size=32, channels=1, content_size=28,
    architecture="autogan32", architecture_args={"gf_dim": 64, "df_dim": 32}, latent_dim=64,
    objective="dcvae", kl_weight=1e-6, queue_size=8192, temperature=0.07, momentum=0.999, ema=0.999,
    batch_size=64, gen_batch_size=64, lr=2e-4, betas=(0.0, 0.9), n_critic=2,
    total_iterations=6_000, seed=123, amp="none",
    log_every=50, snapshot_every=500, checkpoint_every=250,
).validate()
