"""The paper's CelebA-HQ 512x512 model (its Figure 1): the 256x256 recipe grown one stage further.

Same data, objective and schedule as ``celebahq-progan256`` (see there); the 512x512 stage trains with
batch 8.
"""

from ..progressive import ProgressiveSchedule
from .celebahq_progan256 import _OPTIONS as _CELEBAHQ256
from .celebahq_progan256 import SCHEDULE as _SCHEDULE256

SCHEDULE: ProgressiveSchedule = _SCHEDULE256

_OPTIONS = _CELEBAHQ256.override(
    preset="celebahq-progan512",
    description="DC-VAE on CelebA-HQ 512x512, Progressive GAN backbone grown from 4x4",
    image_size=512,
    architecture_args={"fmap_base": 8192, "fmap_max": 512, "max_resolution": 512},
)

PRESET = _OPTIONS.override(total_iterations=SCHEDULE.total_iterations(_OPTIONS))
