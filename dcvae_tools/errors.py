"""Exceptions raised by dcvae-tools. Every user mistake is a DCVAEError whose message names the fix."""


class DCVAEError(Exception):
    """Base class of every error dcvae-tools raises for bad input, missing files or bad checkpoints."""


class ImageError(DCVAEError):
    """An image could not be read, decoded or converted."""


class ConfigError(DCVAEError):
    """A checkpoint's config.json is malformed or names something this version does not support."""


class ChecksumError(DCVAEError):
    """A downloaded or bundled file does not match the sha256 the manifest (or the Hub) promised."""


class ModelNotFoundError(DCVAEError):
    """A model name, path, repository, revision or file could not be found."""


class OfflineError(DCVAEError):
    """A download was needed but the network is off (or unreachable) and nothing is cached."""


class LatentError(DCVAEError):
    """Latents of the wrong shape or size were given to a latent operation."""
