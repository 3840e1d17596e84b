"""The checkpoint config (config.json): parsed and validated before any tensor is allocated."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError

FORMAT_VERSION = 1
"""The release-format version this library reads and writes."""

_KNOWN_KEYS = {
    "format_version",
    "architecture",
    "architecture_args",
    "image_size",
    "channels",
    "latent_dim",
    "content_size",
    "pixel_range",
    "sample_clamp",
    "dataset",
    "preset",
    "metrics",
    "description",
    "library",
}


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a DC-VAE's encoder and decoder, plus where it came from.

    Attributes:
        architecture: backbone name, one of ``dcvae_tools.networks.BACKBONES`` (``"autogan32"``, ...).
        architecture_args: the backbone's own size arguments (``gf_dim``, ``df_dim``, ...).
        image_size: side of the square images the networks take and produce.
        channels: 1 (grey) or 3 (RGB).
        latent_dim: size of the latent vector.
        content_size: side of the image content inside ``image_size``; smaller when the training data
            was padded (Fashion-MNIST's 28x28 padded to 32x32). Inputs are resized to it and padded.
        pixel_range: the value range of the network's pixels; always ``(-1.0, 1.0)`` in format 1.
        sample_clamp: random latents are clamped to ``[-c, c]`` when sampling (the paper's FID protocol
            uses 1.0); ``None`` samples the plain standard normal.
        dataset: the training data, free text.
        preset: the training preset this checkpoint's training started from (a run may change options from it).
        metrics: measured numbers, name -> value, as written by the evaluation command.
        description: one line for humans.
    """

    architecture: str
    image_size: int
    channels: int
    latent_dim: int
    architecture_args: dict[str, Any] = field(default_factory=dict)
    content_size: int | None = None
    pixel_range: tuple[float, float] = (-1.0, 1.0)
    sample_clamp: float | None = 1.0
    dataset: str | None = None
    preset: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    description: str | None = None

    def __post_init__(self) -> None:
        if self.content_size is None:
            object.__setattr__(self, "content_size", self.image_size)
        validate(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict written to config.json (format version included)."""
        data = asdict(self)
        data["pixel_range"] = list(self.pixel_range)
        data["format_version"] = FORMAT_VERSION
        data["library"] = "dcvae-tools"
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, data: Any, source: str = "config") -> ModelConfig:
        """Validate a parsed config.json and build the config; raises ConfigError naming the bad key."""
        validate(data, source)
        kwargs = {k: v for k, v in data.items() if k not in ("format_version", "library")}
        kwargs["pixel_range"] = tuple(float(v) for v in data.get("pixel_range", (-1.0, 1.0)))
        return cls(**kwargs)

    @classmethod
    def from_file(cls, path: str | Path) -> ModelConfig:
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as err:
            raise ConfigError(f"cannot read {path}: {err.strerror or err}") from err
        return cls.from_bytes(data, source=str(path))

    @classmethod
    def from_bytes(cls, data: bytes, source: str = "config") -> ModelConfig:
        """Parse and validate a config.json's bytes (UTF-8 JSON)."""
        try:
            parsed = json.loads(data.decode("utf-8"))
        except UnicodeDecodeError as err:
            raise ConfigError(f"{source} is not UTF-8 text ({err.reason} at byte {err.start})") from err
        except json.JSONDecodeError as err:
            raise ConfigError(f"{source} is not valid JSON ({err.msg} at line {err.lineno})") from err
        except RecursionError:
            raise ConfigError(f"{source} is not a config: its JSON is nested too deeply to read") from None
        except ValueError as err:  # e.g. an integer past Python's 4,300-digit conversion limit
            raise ConfigError(f"{source} is not a config: {err}") from None
        return cls.from_dict(parsed, source=source)


def _check_int(data: dict, key: str, source: str, low: int, high: int) -> None:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{source}: '{key}' must be an integer, got {value!r}")
    if not low <= value <= high:
        raise ConfigError(f"{source}: '{key}' must be between {low} and {high}, got {value}")


def _json_kind(value: Any) -> str:
    """What a parsed JSON value is, in JSON's words (null, array, string, ...)."""
    kinds = {type(None): "null", bool: "true/false", int: "a number", float: "a number", str: "a string"}
    return kinds.get(type(value), "an array" if isinstance(value, list) else type(value).__name__)


def validate(data: Any, source: str = "config") -> None:
    """Check a config dict's keys, types and ranges, including the backbone's own arguments.

    Pure Python: nothing is allocated, so a hostile config cannot make us build a huge network.
    """
    from .networks import BACKBONES  # imported here so that `import dcvae_tools.config` stays free of torch

    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a JSON object, got {_json_kind(data)}")
    version = data.get("format_version", FORMAT_VERSION)
    if isinstance(version, bool) or not isinstance(version, int):
        raise ConfigError(f"{source}: 'format_version' must be an integer, got {version!r}")
    if version != FORMAT_VERSION:
        raise ConfigError(
            f"{source}: 'format_version' is {version!r}, but this dcvae-tools reads format {FORMAT_VERSION}; "
            "upgrade dcvae-tools (pip install -U dcvae-tools)"
        )
    unknown = sorted(set(data) - _KNOWN_KEYS)
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {', '.join(map(repr, unknown))}")
    for key in ("architecture", "image_size", "channels", "latent_dim"):
        if key not in data:
            raise ConfigError(f"{source}: missing required key '{key}'")
    arch = data["architecture"]
    if not isinstance(arch, str) or arch not in BACKBONES:
        raise ConfigError(f"{source}: 'architecture' is {arch!r}; supported: {', '.join(sorted(BACKBONES))}")
    backbone = BACKBONES[arch]
    _check_int(data, "image_size", source, 4, 4096)
    if data["image_size"] not in backbone.IMAGE_SIZES:
        raise ConfigError(
            f"{source}: 'image_size' {data['image_size']} is not supported by {arch} "
            f"(supported: {', '.join(map(str, backbone.IMAGE_SIZES))})"
        )
    _check_int(data, "channels", source, 1, 3)
    if data["channels"] == 2:
        raise ConfigError(f"{source}: 'channels' must be 1 (grey) or 3 (RGB), got 2")
    _check_int(data, "latent_dim", source, 1, 65536)
    if data.get("content_size") is not None:
        _check_int(data, "content_size", source, 1, data["image_size"])
    pixel_range = data.get("pixel_range", [-1.0, 1.0])
    if not isinstance(pixel_range, list | tuple) or list(pixel_range) != [-1.0, 1.0]:
        raise ConfigError(
            f"{source}: 'pixel_range' must be [-1, 1] in format {FORMAT_VERSION}, got {pixel_range!r}"
        )
    clamp = data.get("sample_clamp", 1.0)
    if clamp is not None and (
        isinstance(clamp, bool)
        or not isinstance(clamp, int | float)
        or not math.isfinite(clamp)
        or clamp <= 0
    ):
        raise ConfigError(f"{source}: 'sample_clamp' must be a positive number or null, got {clamp!r}")
    for key in ("dataset", "preset", "description"):
        if data.get(key) is not None and not isinstance(data[key], str):
            raise ConfigError(f"{source}: '{key}' must be a string or null, got {data[key]!r}")
    if not isinstance(data.get("metrics", {}), dict):
        raise ConfigError(f"{source}: 'metrics' must be an object")
    args = data.get("architecture_args", {})
    if not isinstance(args, dict):
        raise ConfigError(f"{source}: 'architecture_args' must be an object")
    for key in sorted(set(args) - set(backbone.ARGS)):
        raise ConfigError(
            f"{source}: 'architecture_args.{key}' is not an argument of {arch} "
            f"(its arguments: {', '.join(sorted(backbone.ARGS))})"
        )
    for key, (low, high) in backbone.ARGS.items():
        if key in args:
            _check_int(args, key, f"{source}: architecture_args", low, high)
    check = getattr(backbone, "check_args", None)
    if check is not None:  # cross-argument rules, e.g. progan's max_resolution >= image_size
        try:
            check(data["image_size"], args)
        except ConfigError as err:
            raise ConfigError(f"{source}: {err}") from None
