"""The paper's CIFAR-10 model: the official hyperparameters (AutoGAN backbone, 800 epochs of 50k images).

It trains in this toolkit's fast mode (bfloat16 autocast, channels-last memory; weights, optimizer and losses
float32), which the official code does not: ``--set amp=none --set channels_last=false`` trains in float32 as it
does. On a CPU without native bfloat16 the loop falls back to float32 by itself.
"""

from ..options import TrainingOptions

PRESET = TrainingOptions(
    preset="cifar10-autogan32",
    description="DC-VAE on CIFAR-10, AutoGAN backbone, the official recipe (paper: sampling FID 17.9)",
    dataset="cifar10",
    image_size=32,
    channels=3,
    content_size=None,
    architecture="autogan32",
    architecture_args={"gf_dim": 256, "df_dim": 128},
    latent_dim=128,
    objective="dcvae",
    kl_weight=1e-6,
    queue_size=8192,
    temperature=0.07,
    momentum=0.999,
    ema=0.999,
    batch_size=64,
    gen_batch_size=128,
    lr=2e-4,
    betas=(0.0, 0.9),
    n_critic=5,
    total_iterations=800 * (50_000 // 64),
    seed=123,
    amp="bf16",
    channels_last=True,
).validate()
