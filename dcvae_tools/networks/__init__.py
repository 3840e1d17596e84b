"""DC-VAE backbones, one module per architecture (encoder, decoder and training discriminator together).

Each backbone module exposes ``IMAGE_SIZES``, ``ARGS`` (its size arguments with their valid ranges),
``DEFAULTS`` and ``build(kind, ...)``.
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING

from . import autogan32, dcgan32, progan

if TYPE_CHECKING:
    from torch import nn

    from ..config import ModelConfig

BACKBONES: dict[str, ModuleType] = {"autogan32": autogan32, "dcgan32": dcgan32, "progan": progan}


def build_network(config: ModelConfig, kind: str, *, spectral_norm: bool = False) -> nn.Module:
    """Build the ``"encoder"``, ``"decoder"`` or ``"discriminator"`` that ``config`` describes.

    ``spectral_norm=True`` gives the training form (power iteration on every SN layer); the default
    plain form is the inference form whose weights are stored already normalised.
    """
    backbone = BACKBONES[config.architecture]
    return backbone.build(
        kind,
        channels=config.channels,
        latent_dim=config.latent_dim,
        image_size=config.image_size,
        args=config.architecture_args,
        spectral_norm=spectral_norm,
    )
