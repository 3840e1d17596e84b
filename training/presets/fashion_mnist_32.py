"""The bundled default model: Fashion-MNIST (60k train, 28x28 padded to 32x32, grey) on 2 CPU cores.

Changes from the official recipe, all for a budget of about 75 minutes on 2 CPU cores (about 1 s an
iteration there): widths gf 48 / df 32 / latent 64 instead of 256 / 128 / 128; n_critic 2 instead of 5;
momentum-discriminator and decoder-EMA decays 0.99 instead of 0.999, since a run of a few thousand
updates is too short for a 1,000-update averaging window. The objective, queue size, temperature, KL
weighting and optimiser are the official ones.
"""

from ..options import TrainingOptions

PRESET = TrainingOptions(
    preset="fashion-mnist-32",
    reproduces="fashion-mnist-32",
    description="DC-VAE on Fashion-MNIST (28x28 padded to 32x32), small AutoGAN backbone trained on CPU",
    dataset="fashion-mnist",
    image_size=32,
    channels=1,
    content_size=28,
    architecture="autogan32",
    architecture_args={"gf_dim": 48, "df_dim": 32},
    latent_dim=64,
    objective="dcvae",
    kl_weight=1e-6,
    queue_size=8192,
    temperature=0.07,
    momentum=0.99,
    ema=0.99,
    batch_size=64,
    gen_batch_size=64,
    lr=2e-4,
    betas=(0.0, 0.9),
    n_critic=2,
    total_iterations=4_000,
    seed=123,
    amp="none",
    log_every=50,
    snapshot_every=500,
    checkpoint_every=250,
).validate()
