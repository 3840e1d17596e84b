"""dcvae-tools: inference and latent editing for DC-VAE (Dual Contradistinctive Generative Autoencoder).

    >>> from dcvae_tools import load_model
    >>> model = load_model()                      # the bundled default model, offline
    >>> z = model.encode(["shirt.png"])           # posterior means [N, D]
    >>> images = model.edit(z, {"long_sleeves": 1.5})
"""

__version__ = "0.1.0"

from .config import ModelConfig
from .errors import ChecksumError, ConfigError, DCVAEError, ImageError, LatentError, ModelNotFoundError, OfflineError
from .latent import apply_edits, attribute_direction, interpolate, lerp, mix, random_mask, slerp
from .loading import load_model
from .model import DCVAE, AttributeVector
from .release import save_pretrained


def push_to_hub(model: DCVAE, repo_id: str, *, token: str | None = None, private: bool = False,
                commit_message: str = "Upload DC-VAE checkpoint", endpoint: str | None = None) -> str:
    """Save ``model`` in the release format and upload it to ``repo_id``; returns the commit id.

    Record that commit id and the files' sha256 in weights_manifest.json to make it a released model.
    """
    import tempfile

    from huggingface_hub import HfApi

    api = HfApi(endpoint=endpoint, token=token)
    api.create_repo(repo_id, private=private, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        save_pretrained(model, tmp)
        info = api.upload_folder(repo_id=repo_id, folder_path=tmp, commit_message=commit_message)
    return info.oid


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
    "load_model",
    "mix",
    "push_to_hub",
    "random_mask",
    "save_pretrained",
    "slerp",
]
