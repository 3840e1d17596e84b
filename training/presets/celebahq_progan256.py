"""The paper's CelebA-HQ 256x256 model: DC-VAE with the Progressive GAN backbone, grown 4x4 -> 256x256.

Run with ``training.progressive.progressive_training_loop(PRESET, SCHEDULE, run_dir)`` (the plain
``training_loop`` would train the 256x256 networks without growing them). Data: a folder of the 30,000
CelebA-HQ images (``--data-root``); the first 29,000 by file name train, the last 1,000 are held out
(the 29,000 / 1,000 counts of the paper's supplementary A.4).

From the papers: ProGAN widths (fmap_base 8192, fmap_max 512), 800k images per fade-in and per stable
phase (ProGAN paper), and the official DC-VAE objective and optimiser (docs/design.md, "The objective and
the official recipe") for the encoder and discriminator. Chosen here, as neither paper states them for
DC-VAE: latent 512 (ProGAN's);
the decoder's Adam lr 1e-3 (ProGAN's: its equalized-lr weights are stored N(0, 1), so an lr of 2e-4 would
move them about 50x slower, relative to their size, than the plain 2e-4 layers of the 32x32 model); the
batch sizes per resolution (DC-VAE's 64 up to 32x32, then halved as memory requires; multiples of 4 for
the minibatch-stddev groups); and a final stable phase of 3.2M images at 256x256 (after its 0.8M-image fade-in).
"""

from ..options import TrainingOptions
from ..progressive import ProgressiveSchedule

SCHEDULE = ProgressiveSchedule(
    start_resolution=4,
    stable_images=800_000,
    fade_images=800_000,
    final_stable_images=3_200_000,
    batch_sizes={4: 64, 8: 64, 16: 64, 32: 64, 64: 32, 128: 32, 256: 16, 512: 8},
    decoder_lr=1e-3,
)

_OPTIONS = TrainingOptions(
    preset="celebahq-progan256",
    reproduces=None,
    description="DC-VAE on CelebA-HQ 256x256, Progressive GAN backbone grown from 4x4",
    dataset="celebahq",
    image_size=256,
    channels=3,
    content_size=None,
    architecture="progan",
    architecture_args={"fmap_base": 8192, "fmap_max": 512, "max_resolution": 256},
    latent_dim=512,
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
    seed=123,
    amp="bf16",
    log_every=100,
    snapshot_every=5000,
    checkpoint_every=2000,
)

PRESET = _OPTIONS.override(total_iterations=SCHEDULE.total_iterations(_OPTIONS))
