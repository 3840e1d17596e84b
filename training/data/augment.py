"""Augmentation of the real images a training iteration sees (off by default: the official recipe has none).

Random translation by whole pixels, with the image's border repeated into the space it leaves. Every draw comes
from a generator seeded by (seed, iteration, rank) alone, so the augmentation keeps no state of its own: a run
resumed from any checkpoint, or split across processes, draws exactly what an uninterrupted run draws.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["augmentation_generator", "random_translate"]


def augmentation_generator(seed: int, iteration: int, rank: int = 0) -> torch.Generator:
    """A CPU generator for one iteration of one process, independent of every other (seed, iteration, rank)."""
    state = np.random.SeedSequence([seed, iteration, rank], spawn_key=(0x617567,)).generate_state(2, np.uint64)
    return torch.Generator().manual_seed(int(state[0] >> np.uint64(1)))


def random_translate(images: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Shift each image of ``images`` [N, C, H, W] by its own (dy, dx), each uniform in [-max_shift, max_shift].

    Pixels shifted in from outside repeat the nearest border pixel (for padded digits and garments: the black
    background). ``max_shift`` 0 returns ``images`` unchanged.
    """
    if max_shift < 0:
        raise ValueError(f"max_shift={max_shift}: must be >= 0")
    if max_shift == 0 or len(images) == 0:
        return images
    n, _, height, width = images.shape
    shifts = torch.randint(-max_shift, max_shift + 1, (n, 2), generator=generator).tolist()
    padded = F.pad(images, (max_shift,) * 4, mode="replicate")
    crops = [
        padded[i, :, max_shift - dy: max_shift - dy + height, max_shift - dx: max_shift - dx + width]
        for i, (dy, dx) in enumerate(shifts)
    ]
    return torch.stack(crops)
