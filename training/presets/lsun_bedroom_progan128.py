"""The paper's LSUN Bedroom 128x128 model (its Figure 1): DC-VAE with the Progressive GAN backbone.

Data: the LSUN ``bedroom_train_lmdb`` folder (``--data-root``; reading it needs ``pip install lmdb``),
every image centre-cropped to a square and resized. Objective, widths and schedule as
``celebahq-progan256`` (see there for what comes from the papers and what is chosen here).
"""

from ..progressive import ProgressiveSchedule
from .celebahq_progan256 import _OPTIONS as _CELEBAHQ256
from .celebahq_progan256 import SCHEDULE as _SCHEDULE256

SCHEDULE: ProgressiveSchedule = _SCHEDULE256

_OPTIONS = _CELEBAHQ256.override(
    preset="lsun-bedroom-progan128",
    description="DC-VAE on LSUN Bedroom 128x128, Progressive GAN backbone grown from 4x4",
    dataset="lsun",
    image_size=128,
    architecture_args={"fmap_base": 8192, "fmap_max": 512, "max_resolution": 128},
)

PRESET = _OPTIONS.override(total_iterations=SCHEDULE.total_iterations(_OPTIONS))
