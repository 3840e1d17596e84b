"""Latent statistics of a model: where its training images' encodings lie, and what "in domain" looks like.

A release may carry ``latent_stats.safetensors`` (optional, like ``attributes.safetensors``):

- ``mean`` [D] and ``covariance`` [D, D]: of the posterior means of the model's training images. They define the
  strength unit of edits (:mod:`dcvae_tools.editing.units`), the principal components
  (:mod:`dcvae_tools.editing.pca`) and the Mahalanobis distance of an encoding.
- ``quantile_levels`` [Q] (``QUANTILE_LEVELS``: dense in the upper tail, ending with 1.0, the maximum) with
  ``mahalanobis_quantiles``, ``cycle_quantiles`` and ``recon_error_quantiles`` [Q]: the distribution, over
  held-out test images, of the Mahalanobis distance of the encoding, of how far re-encoding the reconstruction
  moves the encoding, and of the reconstruction error (MSE on the [0, 1] scale over the image content);
- ``far_score_limit`` [1]: the held-out images' ``FAR_LEVEL`` quantile of the combined (Fisher) score of the three
  measures' p-values. :mod:`dcvae_tools.editing.domain` warns about inputs whose score exceeds it.

The JSON metadata (key ``latent_stats``) says which data the numbers come from and names the model's domain in
words, and ``reference_count`` (the p-values' resolution). Only safetensors and JSON are read; a file is validated
in full (its format version, shapes against the model's latent size, finite values, a symmetric positive
semi-definite covariance, non-decreasing quantiles, a positive limit) before it is used.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import ConfigError
from ..io_utils import safetensors_header

LATENT_STATS_NAME = "latent_stats.safetensors"
FORMAT_VERSION = 2
QUANTILE_LEVELS = (
    0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.92, 0.94, 0.95, 0.96, 0.97, 0.975, 0.98,
    0.985, 0.99, 0.9925, 0.995, 0.996, 0.997, 0.998, 0.9985, 0.999, 0.9995, 0.9998, 0.9999, 1.0,
)
"""The levels stored (33): coarse below the 90th percentile, dense in the upper tail where the p-values of the
out-of-domain check are read, and 1.0, the largest value seen."""
_QUANTILES = ("mahalanobis_quantiles", "cycle_quantiles", "recon_error_quantiles")
_TENSORS = ("mean", "covariance", "quantile_levels", *_QUANTILES, "far_score_limit")


@dataclass
class LatentStats:
    """Mean and covariance of a model's training latents, and reference quantiles of held-out images.

    Attributes:
        mean: [D] mean of the posterior means of the training images.
        covariance: [D, D] their covariance (float64).
        quantile_levels: [Q] increasing levels in (0, 1].
        mahalanobis_quantiles: [Q] quantiles of the held-out images' Mahalanobis distance.
        cycle_quantiles: [Q] quantiles of how far re-encoding their reconstructions moves their encodings.
        recon_error_quantiles: [Q] quantiles of their reconstruction MSE ([0, 1] scale, content region).
        far_score_limit: [1] the combined score above which an input is far outside the domain.
        metadata: JSON-able provenance: ``format_version``, ``dataset``, ``split``, ``count``,
            ``reference_split``, ``reference_count``, ``far_level``, ``domain`` (the model's domain in words).
    """

    mean: torch.Tensor
    covariance: torch.Tensor
    quantile_levels: torch.Tensor
    mahalanobis_quantiles: torch.Tensor
    cycle_quantiles: torch.Tensor
    recon_error_quantiles: torch.Tensor
    far_score_limit: torch.Tensor
    metadata: dict[str, Any] = field(default_factory=dict)
    _eig: tuple[torch.Tensor, torch.Tensor] | None = field(default=None, repr=False, compare=False)

    @property
    def latent_dim(self) -> int:
        return int(self.mean.shape[0])

    @property
    def domain(self) -> str:
        """The model's domain in words, e.g. ``"28x28 grey Fashion-MNIST garments"``."""
        return str(self.metadata.get("domain") or f"{self.metadata.get('dataset', 'its training')} images")

    def eigen(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Eigenvalues (descending, clamped at 0) and eigenvectors (columns) of the covariance, float64."""
        if self._eig is None:
            values, vectors = torch.linalg.eigh(self.covariance.double())
            order = torch.argsort(values, descending=True)
            self._eig = (values[order].clamp_min(0.0), vectors[:, order])
        return self._eig

    def std_along(self, direction: torch.Tensor) -> float:
        """Standard deviation of the training latents projected on the unit vector of ``direction``."""
        u = direction.double().cpu()
        norm = float(u.norm())
        if norm == 0.0:
            raise ConfigError("a direction of length 0 has no standard deviation along it")
        u = u / norm
        return float(torch.sqrt((u @ self.covariance.double() @ u).clamp_min(0.0)))

    def mahalanobis(self, latents: torch.Tensor) -> torch.Tensor:
        """Mahalanobis distance [N] of latents [N, D] from the training mean (tiny variances floored)."""
        values, vectors = self.eigen()
        floor = max(float(values[0]) * 1e-6, 1e-12)
        centred = latents.double().cpu() - self.mean.double()
        projected = centred @ vectors
        return torch.sqrt((projected.pow(2) / values.clamp_min(floor)).sum(-1)).float()

    @property
    def reference_count(self) -> int:
        """How many held-out images the quantiles come from."""
        return int(self.metadata.get("reference_count") or 1)

    @property
    def far_score_limit_value(self) -> float:
        """The combined score above which an input is far outside the domain."""
        return float(self.far_score_limit.reshape(-1)[0])

    def quantiles_of(self, which: str) -> torch.Tensor:
        """The stored quantiles [Q] of ``which``: ``"mahalanobis"``, ``"cycle"`` or ``"recon_error"``."""
        if f"{which}_quantiles" not in _QUANTILES:
            raise KeyError(f"no quantiles of {which!r}; stored: mahalanobis, cycle, recon_error")
        return getattr(self, f"{which}_quantiles")

    def quantile(self, which: str, level: float) -> float:
        """The ``which`` (``"mahalanobis"``, ``"cycle"`` or ``"recon_error"``) quantile at ``level``: the stored
        value at a stored level, else interpolated linearly between the stored levels around it (the first stored
        value below the first level)."""
        values = self.quantiles_of(which).double()
        levels = self.quantile_levels.double()
        i = int(torch.searchsorted(levels, torch.tensor([level], dtype=torch.float64)).item())
        if i < len(levels) and abs(float(levels[i]) - level) < 1e-9:
            return float(values[i])
        if i <= 0 or i >= len(levels):
            return float(values[0] if i <= 0 else values[-1])
        t = (level - float(levels[i - 1])) / (float(levels[i]) - float(levels[i - 1]))
        return float(values[i - 1] + t * (values[i] - values[i - 1]))


def compute_latent_stats(
    train_latents: torch.Tensor,
    reference_latents: torch.Tensor,
    reference_recon_errors: torch.Tensor,
    reference_cycle: torch.Tensor,
    metadata: dict[str, Any] | None = None,
    levels: tuple[float, ...] = QUANTILE_LEVELS,
) -> LatentStats:
    """Statistics from training latents [N, D] and the held-out images' latents [M, D], reconstruction errors [M]
    and cycle distances [M] (:func:`dcvae_tools.editing.domain.cycle_distance`).

    The far-score limit is the ``FAR_LEVEL`` quantile of the held-out images' own combined scores, their p-values
    read from the stored quantiles exactly as an input's are at check time.
    """
    from .domain import FAR_LEVEL, fisher_score, measure_log_p

    z = train_latents.double().cpu()
    if z.ndim != 2 or len(z) < 2:
        raise ConfigError(f"need at least two training latents [N, D], got shape {tuple(z.shape)}")
    count = len(reference_latents)
    if not (len(reference_recon_errors) == len(reference_cycle) == count >= 1):
        raise ConfigError(
            f"need one reconstruction error and cycle distance per held-out latent, got {count} latents, "
            f"{len(reference_recon_errors)} errors and {len(reference_cycle)} distances"
        )
    if levels[-1] != 1.0:
        raise ConfigError(f"the quantile levels must end with 1.0 (the maximum), got {levels}")
    mean = z.mean(0)
    centred = z - mean
    covariance = centred.T @ centred / (len(z) - 1)
    covariance = (covariance + covariance.T) / 2
    empty = torch.zeros(len(levels), dtype=torch.float64)
    stats = LatentStats(
        mean=mean,
        covariance=covariance,
        quantile_levels=torch.tensor(levels, dtype=torch.float64),
        mahalanobis_quantiles=empty,
        cycle_quantiles=empty,
        recon_error_quantiles=empty,
        far_score_limit=torch.ones(1, dtype=torch.float64),
        metadata={"count": len(z), **(metadata or {}), "format_version": FORMAT_VERSION,
                  "reference_count": count, "far_level": FAR_LEVEL},
    )
    q = stats.quantile_levels
    measures = {
        "mahalanobis": stats.mahalanobis(reference_latents).double(),
        "cycle": reference_cycle.detach().double().cpu(),
        "recon_error": reference_recon_errors.detach().double().cpu(),
    }
    for name, values in measures.items():
        setattr(stats, f"{name}_quantiles", torch.quantile(values, q))
    scores = fisher_score(list(measure_log_p(stats, measures).values()))
    stats.far_score_limit = torch.quantile(scores, FAR_LEVEL).reshape(1)
    return stats


def save_latent_stats(stats: LatentStats, path: str | Path) -> None:
    """Write ``stats`` as safetensors (float64 tensors) with the provenance as JSON metadata."""
    from ..io_utils import safetensors_bytes

    tensors = {name: getattr(stats, name).double().cpu().contiguous() for name in _TENSORS}
    data = safetensors_bytes(tensors, {"format": "pt", "latent_stats": json.dumps(stats.metadata, sort_keys=True)})
    Path(path).write_bytes(data)


def max_latent_stats_bytes(latent_dim: int) -> int:
    """The largest a valid file can be: a 1 MiB header plus every tensor in float64 at its largest shape."""
    return 8 + (1 << 20) + 8 * (latent_dim * latent_dim + latent_dim + len(_TENSORS) * 64 + 1)


def load_latent_stats(path: str | Path, latent_dim: int) -> LatentStats:
    """Read and validate a latent_stats.safetensors file (see :func:`latent_stats_from_bytes`)."""
    from ..io_utils import read_bounded

    data = read_bounded(path, max_latent_stats_bytes(latent_dim),
                        f"a {LATENT_STATS_NAME} for {latent_dim}-dimensional latents",
                        "recompute it with `dcvae-train latent-stats` (or delete it)")
    return latent_stats_from_bytes(data, latent_dim, Path(path))


def latent_stats_from_bytes(data: bytes, latent_dim: int, source: Path) -> LatentStats:
    """Parse and validate the bytes of a latent_stats.safetensors file.

    The header is checked first (tensor names, dtypes and shapes against ``latent_dim``), so a malformed file is
    refused before any tensor is built; then values: finite, a symmetric covariance with no clearly negative
    eigenvalue, levels in (0, 1] ending with 1.0, quantiles non-decreasing and a positive far-score limit. The
    format version is checked before anything else. Every error names ``source`` and says how to remake it.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load as load_bytes

    fix = "recompute it with `dcvae-train latent-stats` (or delete it: the file is optional)"
    header = safetensors_header(data, source, fix)
    try:
        meta = json.loads(header.get("__metadata__", {}).get("latent_stats", "{}"))
    except (json.JSONDecodeError, AttributeError, TypeError, RecursionError) as err:
        raise ConfigError(f"{source}: its 'latent_stats' metadata is not readable JSON ({err}); {fix}") from err
    if not isinstance(meta, dict):
        raise ConfigError(f"{source}: its 'latent_stats' metadata is not a JSON object; {fix}")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise ConfigError(
            f"{source} is in latent-statistics format version {version}, this dcvae-tools reads version "
            f"{FORMAT_VERSION} (which adds the out-of-domain check's cycle quantiles and limit); run "
            "`dcvae-train latent-stats` on the release to recompute it (or delete it: the file is optional)"
        )
    reference_count = meta.get("reference_count")
    if isinstance(reference_count, bool) or not isinstance(reference_count, int) or reference_count < 1:
        raise ConfigError(f"{source}: its metadata's reference_count must be a positive integer, got "
                          f"{reference_count!r}; {fix}")
    far_level = meta.get("far_level")
    if isinstance(far_level, bool) or not isinstance(far_level, int | float) or not 0 < far_level < 1:
        raise ConfigError(f"{source}: its metadata's far_level must be a number in (0, 1), got {far_level!r}; {fix}")
    expected = {"mean": [latent_dim], "covariance": [latent_dim, latent_dim], "far_score_limit": [1]}
    names = {k for k in header if k != "__metadata__"}
    if names != set(_TENSORS):
        raise ConfigError(f"{source}: holds tensors {sorted(names)}, expected {list(_TENSORS)}; {fix}")
    levels = header["quantile_levels"].get("shape") if isinstance(header["quantile_levels"], dict) else None
    for name in _TENSORS:
        info = header[name]
        shape = info.get("shape") if isinstance(info, dict) else None
        want = expected.get(name, levels if isinstance(levels, list) and len(levels) == 1 else None)
        count_ok = (isinstance(levels, list) and len(levels) == 1 and isinstance(levels[0], int)
                    and not isinstance(levels[0], bool) and 2 <= levels[0] <= 64)
        if shape != want or not count_ok:
            raise ConfigError(
                f"{source}: tensor {name!r} has shape {shape}, expected {want or '[Q] with 2 <= Q <= 64'} for "
                f"a model with {latent_dim}-dimensional latents; {fix}"
            )
        if info.get("dtype") not in ("F64", "F32"):
            raise ConfigError(f"{source}: tensor {name!r} has dtype {info.get('dtype')}, expected F64 or F32; {fix}")
    try:
        tensors = {k: v.double() for k, v in load_bytes(data).items()}
    except SafetensorError as err:
        raise ConfigError(f"{source} is not a readable {LATENT_STATS_NAME} file ({err}); {fix}") from err
    for name, value in tensors.items():
        if not bool(value.isfinite().all()):
            raise ConfigError(f"{source}: tensor {name!r} contains NaN or infinite values; {fix}")
    cov = tensors["covariance"]
    scale = float(cov.diagonal().abs().max()) or 1.0
    if float((cov - cov.T).abs().max()) > 1e-6 * scale:
        raise ConfigError(f"{source}: the covariance is not symmetric; {fix}")
    if float(torch.linalg.eigvalsh(cov).min()) < -1e-6 * scale:
        raise ConfigError(f"{source}: the covariance has negative eigenvalues (not a covariance); {fix}")
    q = tensors["quantile_levels"]
    if not (bool((q > 0).all()) and float(q[-1]) == 1.0 and bool((q[1:] > q[:-1]).all())):
        raise ConfigError(f"{source}: quantile_levels must increase within (0, 1] and end with 1.0, got "
                          f"{q.tolist()}; {fix}")
    for name in _QUANTILES:
        v = tensors[name]
        if bool((v < 0).any()) or bool((v[1:] < v[:-1]).any()):
            raise ConfigError(f"{source}: {name} must be non-negative and non-decreasing, got {v.tolist()}; {fix}")
    if not float(tensors["far_score_limit"][0]) > 0:
        raise ConfigError(f"{source}: far_score_limit must be positive, got {float(tensors['far_score_limit'][0])}; "
                          f"{fix}")
    return LatentStats(**{name: tensors[name] for name in _TENSORS}, metadata=meta)
