"""dcvae-tools: inference and latent editing for DC-VAE (Dual Contradistinctive Generative Autoencoder).

    >>> from dcvae_tools import load_model
    >>> model = load_model()                      # the bundled default model, offline
    >>> z = model.encode(["docs/examples/fashion-mnist/tshirt.png"])  # posterior means [N, D]
    >>> images = model.edit(z, {"long_sleeves": 1.5})                  # [N, C, S, S] in [-1, 1]
    >>> model.to_pil(images)[0].save("edited.png")

Names are imported lazily, so ``import dcvae_tools`` (and ``dcvae --help``) does not load torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_exports

__version__ = "0.1.0"

_LAZY = {
    "DCVAE": ".model",
    "AttributeVector": ".model",
    "ModelConfig": ".config",
    "load_model": ".loading",
    "save_pretrained": ".release",
    "push_to_hub": ".release",
    "save_attributes": ".release",
    "load_attributes": ".release",
    "lerp": ".latent",
    "slerp": ".latent",
    "interpolate": ".latent",
    "mix": ".latent",
    "random_mask": ".latent",
    "attribute_direction": ".latent",
    "apply_edits": ".latent",
    "DCVAEError": ".errors",
    "ImageError": ".errors",
    "ConfigError": ".errors",
    "ChecksumError": ".errors",
    "ModelNotFoundError": ".errors",
    "OfflineError": ".errors",
    "LatentError": ".errors",
}

if TYPE_CHECKING:
    from .config import ModelConfig
    from .errors import (
        ChecksumError,
        ConfigError,
        DCVAEError,
        ImageError,
        LatentError,
        ModelNotFoundError,
        OfflineError,
    )
    from .latent import apply_edits, attribute_direction, interpolate, lerp, mix, random_mask, slerp
    from .loading import load_model
    from .model import DCVAE, AttributeVector
    from .release import load_attributes, push_to_hub, save_attributes, save_pretrained


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


__all__ = [
    "DCVAE",
    "AttributeVector",
    "ChecksumError",
    "ConfigError",
    "DCVAEError",
    "ImageError",
    "LatentError",
    "ModelConfig",
    "ModelNotFoundError",
    "OfflineError",
    "__version__",
    "apply_edits",
    "attribute_direction",
    "interpolate",
    "lerp",
    "load_attributes",
    "load_model",
    "mix",
    "push_to_hub",
    "random_mask",
    "save_attributes",
    "save_pretrained",
    "slerp",
]
