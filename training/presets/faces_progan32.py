"""A CPU demo of progressive growing: scikit-image's 100 LFW faces (25x25 grey), grown 4x4 -> 32x32.

Needs ``pip install scikit-image``. Small widths (fmap_base 256, fmap_max 64: 64, 64, 32, 16 channels at
4, 8, 16, 32), latent 32, a 512-key queue for 100 images, n_critic 2 and decays 0.99 for a run of 1,400
iterations, and the decoder's Adam lr 1e-3 (ProGAN's, for its equalized-lr weights); the objective is the
official one. Run it with ``progressive_training_loop(PRESET, SCHEDULE, run_dir)`` after
``torch.set_num_threads(1)``: networks this small run many times slower on two threads of a busy CPU.
"""

from ..options import TrainingOptions
from ..progressive import ProgressiveSchedule

SCHEDULE = ProgressiveSchedule(
    start_resolution=4,
    stable_images=3_200,
    fade_images=3_200,
    batch_sizes={4: 16, 8: 16, 16: 16, 32: 16},
    decoder_lr=1e-3,
)

_OPTIONS = TrainingOptions(
    preset="faces-progan32",
    reproduces=None,
    description="DC-VAE demo on scikit-image's LFW faces, Progressive GAN backbone grown to 32x32 on CPU",
    dataset="skimage-lfw-faces",
    image_size=32,
    channels=1,
    content_size=None,
    architecture="progan",
    architecture_args={"fmap_base": 256, "fmap_max": 64, "max_resolution": 32},
    latent_dim=32,
    objective="dcvae",
    kl_weight=1e-6,
    queue_size=512,
    temperature=0.07,
    momentum=0.99,
    ema=0.99,
    batch_size=16,
    gen_batch_size=16,
    lr=2e-4,
    betas=(0.0, 0.9),
    n_critic=2,
    seed=123,
    amp="none",
    log_every=50,
    snapshot_every=200,
    checkpoint_every=200,
)

PRESET = _OPTIONS.override(total_iterations=SCHEDULE.total_iterations(_OPTIONS))
