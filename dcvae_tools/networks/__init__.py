"""DC-VAE backbones, one module per architecture (encoder, decoder and training discriminator together).

Each backbone module exposes ``IMAGE_SIZES``, ``ARGS`` (its size arguments with their valid ranges),
``DEFAULTS`` and ``build(kind, ...)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol

from . import autogan32, dcgan32, progan

if TYPE_CHECKING:
    from torch import nn

BACKBONES: dict[str, ModuleType] = {"autogan32": autogan32, "dcgan32": dcgan32, "progan": progan}


class NetworkSpec(Protocol):
    """What a network is built from: the fields of :class:`dcvae_tools.config.ModelConfig` used here.

    Spelled out as a protocol so that the networks sit below the config and never import it.
    """

    @property
    def architecture(self) -> str: ...
    @property
    def image_size(self) -> int: ...
    @property
    def channels(self) -> int: ...
    @property
    def latent_dim(self) -> int: ...
    @property
    def architecture_args(self) -> Mapping[str, Any]: ...


def build_network(config: NetworkSpec, kind: str, *, spectral_norm: bool = False) -> nn.Module:
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
