"""Exceptions raised by dcvae-tools (every user mistake is a DCVAEError whose message names the fix), and where the
package's warnings point."""


def one_line(err: BaseException | str) -> str:
    """An exception's (or a text's) message with its whitespace and line breaks collapsed: messages that go into
    another one-line message."""
    return " ".join(str(err).split())


def outside_package_stacklevel() -> int:
    """The ``stacklevel`` for a ``warnings.warn`` called right after this that makes the warning point at the first
    frame outside dcvae_tools: the user's line, however deep inside the package the warning is raised."""
    import os
    import sys

    package = os.path.dirname(os.path.abspath(__file__)) + os.sep
    frame, level = sys._getframe(1), 1  # the caller of this function is level 1 of its warnings.warn
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame, level = frame.f_back, level + 1
    return level


class DCVAEError(Exception):
    """Base class of every error dcvae-tools raises for bad input, missing files or bad checkpoints."""


class ImageError(DCVAEError):
    """An image could not be read, decoded or converted."""


class ConfigError(DCVAEError):
    """A checkpoint's config.json is malformed or names something this version does not support."""


class NonFiniteWeightsError(ConfigError):
    """A checkpoint's weights hold NaN or infinite values (a training run that diverged)."""


class ChecksumError(DCVAEError):
    """A downloaded or bundled file does not match the sha256 the manifest (or the Hub) promised."""


class ModelNotFoundError(DCVAEError):
    """A model name, path, repository, revision or file could not be found."""


class OfflineError(DCVAEError):
    """A download was needed but the network is off (or unreachable) and nothing is cached."""


class LatentError(DCVAEError):
    """Latents of the wrong shape or size were given to a latent operation."""
