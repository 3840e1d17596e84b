"""A release's latent prior: a Gaussian mixture fitted to where its training images' latents lie.

DC-VAE's KL weight is tiny (1e-6), so nothing holds the encoder's latents near N(0, I), and decoding N(0, I)
draws asks the decoder about a region it was never trained to reconstruct. A density fitted after training to the
latents of the training images ("ex-post density estimation") samples where the decoder is good. A release may
carry one as ``latent_prior.safetensors`` (optional, like ``latent_stats.safetensors``):

- ``weights`` [K]: the components' mixing weights (positive, summing to 1);
- ``means`` [K, D]: their means;
- ``scale_tril`` [K, D, D]: the lower Cholesky factor of each component's covariance (positive diagonal).

The JSON metadata (key ``latent_prior``) holds ``format_version`` and the provenance of the fit (data, split,
image count, EM iterations, log-likelihood). A file is validated in full (format version, shapes against the
model's latent size, at most ``MAX_COMPONENTS`` components, finite values, weights, triangular factors) before it
is used; only safetensors and JSON are read. ``dcvae-train latent-stats`` fits and writes one.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .errors import ConfigError
from .io_utils import read_bounded, safetensors_header

LATENT_PRIOR_NAME = "latent_prior.safetensors"
FORMAT_VERSION = 1
MAX_COMPONENTS = 256
MAX_MAGNITUDE = 1e6
"""Largest absolute value a valid file holds (latents of the released models have norms of about 15)."""
_TENSORS = ("weights", "means", "scale_tril")
_FIX = "refit it with `dcvae-train latent-stats RELEASE` (or delete it: the file is optional)"


@dataclass
class LatentPrior:
    """A full-covariance Gaussian mixture over a model's latents.

    Attributes:
        weights: [K] mixing weights, positive, summing to 1.
        means: [K, D] component means.
        scale_tril: [K, D, D] lower Cholesky factors of the component covariances.
        metadata: JSON-able provenance: ``format_version``, ``dataset``, ``split``, ``count``, ``em_iterations``,
            ``mean_log_likelihood``.
    """

    weights: torch.Tensor
    means: torch.Tensor
    scale_tril: torch.Tensor
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def components(self) -> int:
        """How many Gaussians the mixture has (K)."""
        return int(self.weights.shape[0])

    @property
    def latent_dim(self) -> int:
        """The latent size it is over (D)."""
        return int(self.means.shape[1])

    @property
    def restarts(self) -> int:
        """How many EM starts the fit tried (the most likely was kept); 1 where the metadata does not say, as a
        fit from one start writes no count."""
        value = self.metadata.get("restarts", 1)
        return value if isinstance(value, int) and not isinstance(value, bool) and value >= 1 else 1

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` latents [n, D] (float32, CPU): a component drawn by weight, then a Gaussian draw from it.

        Deterministic for a seeded ``generator``, and as stable under a change of ``n`` as N(0, I) draws are: the
        components come from their own stream (seeded by one draw from ``generator``) and the noise from
        ``generator``, so the first rows of a larger draw equal a smaller one (when D is a multiple of 16, where
        torch's normal sampler fills rows independently of their count; 64 for the released models).
        """
        component_seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        noise = torch.randn(n, self.latent_dim, dtype=torch.float64, generator=generator)
        uniform = torch.rand(n, dtype=torch.float64, generator=torch.Generator().manual_seed(component_seed))
        edges = torch.cumsum(self.weights.double(), 0)
        which = torch.searchsorted(edges, uniform * edges[-1], right=True).clamp_max(self.components - 1)
        z = torch.empty(n, self.latent_dim, dtype=torch.float64)
        for k in range(self.components):  # per component: memory stays O(n D), not O(n D^2)
            rows = which == k
            z[rows] = self.means[k].double() + noise[rows] @ self.scale_tril[k].double().T
        return z.float()

    def log_prob(self, latents: torch.Tensor) -> torch.Tensor:
        """Log density [N] of latents [N, D] under the mixture (float64)."""
        joint = mixture_log_joint(latents.double().cpu(), self.weights.double(), self.means.double(),
                                  self.scale_tril.double())
        return torch.logsumexp(joint, 0)


def mixture_log_joint(x: torch.Tensor, weights: torch.Tensor, means: torch.Tensor,
                      scale_tril: torch.Tensor) -> torch.Tensor:
    """``log(weight_k) + log N(x | mean_k, L_k L_k^T)`` [K, N] for ``x`` [N, D] (all one dtype)."""
    d = x.shape[1]
    rows = []
    for k in range(len(weights)):
        solved = torch.linalg.solve_triangular(scale_tril[k], (x - means[k]).T, upper=False)
        log_det = 2 * torch.log(torch.diagonal(scale_tril[k])).sum()
        rows.append(torch.log(weights[k]) - 0.5 * (d * math.log(2 * math.pi) + log_det + solved.pow(2).sum(0)))
    return torch.stack(rows)


def save_latent_prior(prior: LatentPrior, path: str | Path) -> None:
    """Write ``prior`` as safetensors (float32 tensors) with its provenance as JSON metadata."""
    from .io_utils import safetensors_bytes

    tensors = {name: getattr(prior, name).float().cpu().contiguous() for name in _TENSORS}
    meta = {**prior.metadata, "format_version": FORMAT_VERSION}
    data = safetensors_bytes(tensors, {"format": "pt", "latent_prior": json.dumps(meta, sort_keys=True)})
    Path(path).write_bytes(data)


def max_latent_prior_bytes(latent_dim: int) -> int:
    """The largest a valid file can be: a 1 MiB header plus the tensors in float64 at ``MAX_COMPONENTS``."""
    return 8 + (1 << 20) + 8 * MAX_COMPONENTS * (1 + latent_dim + latent_dim * latent_dim)


def load_latent_prior(path: str | Path, latent_dim: int) -> LatentPrior:
    """Read and validate a latent_prior.safetensors file (see :func:`latent_prior_from_bytes`)."""
    data = read_bounded(path, max_latent_prior_bytes(latent_dim),
                        f"a {LATENT_PRIOR_NAME} for {latent_dim}-dimensional latents", _FIX)
    return latent_prior_from_bytes(data, latent_dim, Path(path))


def latent_prior_from_bytes(data: bytes, latent_dim: int, source: Path) -> LatentPrior:
    """Parse and validate the bytes of a latent_prior.safetensors file.

    The format version and the header (tensor names, dtypes, shapes against ``latent_dim``, the number of
    components) are checked before any tensor is built; then the values: finite, weights positive and summing to
    1, factors lower-triangular with a positive diagonal. Every error names ``source`` and says how to remake it.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load as load_bytes

    header = safetensors_header(data, source, _FIX)
    if not all(isinstance(header.get(name, {}), dict) for name in _TENSORS):
        raise ConfigError(f"{source} is not a readable safetensors file (a tensor entry is not an object); {_FIX}")
    try:
        meta = json.loads(header.get("__metadata__", {}).get("latent_prior", "{}"))
    except (json.JSONDecodeError, AttributeError, TypeError, RecursionError) as err:
        raise ConfigError(f"{source}: its 'latent_prior' metadata is not readable JSON ({err}); {_FIX}") from err
    if not isinstance(meta, dict):
        raise ConfigError(f"{source}: its 'latent_prior' metadata is not a JSON object; {_FIX}")
    version = meta.get("format_version")
    if type(version) is not int or version != FORMAT_VERSION:
        raise ConfigError(f"{source} is in latent-prior format version {version!r}, this "
                          f"dcvae-tools reads version {FORMAT_VERSION}; {_FIX}")
    names = {k for k in header if k != "__metadata__"}
    if names != set(_TENSORS):
        raise ConfigError(f"{source}: holds tensors {sorted(names)}, expected {list(_TENSORS)}; {_FIX}")
    shapes = {name: header[name].get("shape") if isinstance(header[name], dict) else None for name in _TENSORS}
    k = shapes["weights"][0] if isinstance(shapes["weights"], list) and len(shapes["weights"]) == 1 else None
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_COMPONENTS:
        raise ConfigError(f"{source}: tensor 'weights' has shape {shapes['weights']}, expected [K] with "
                          f"1 <= K <= {MAX_COMPONENTS}; {_FIX}")
    expected = {"weights": [k], "means": [k, latent_dim], "scale_tril": [k, latent_dim, latent_dim]}
    for name in _TENSORS:
        if shapes[name] != expected[name]:
            raise ConfigError(f"{source}: tensor {name!r} has shape {shapes[name]}, expected {expected[name]} for a "
                              f"model with {latent_dim}-dimensional latents; {_FIX}")
        if header[name].get("dtype") not in ("F64", "F32"):
            raise ConfigError(f"{source}: tensor {name!r} has dtype {header[name].get('dtype')}, expected F64 or "
                              f"F32; {_FIX}")
    try:
        tensors = {name: value.double() for name, value in load_bytes(data).items()}
    except SafetensorError as err:
        raise ConfigError(f"{source} is not a readable {LATENT_PRIOR_NAME} file ({err}); {_FIX}") from err
    for name, value in tensors.items():
        if not bool(value.isfinite().all()):
            raise ConfigError(f"{source}: tensor {name!r} contains NaN or infinite values; {_FIX}")
        if float(value.abs().max()) > MAX_MAGNITUDE:  # sampling runs in float64 but decoders in float32 or less
            raise ConfigError(f"{source}: tensor {name!r} holds values beyond +-{MAX_MAGNITUDE:g}, far outside any "
                              f"latent space; {_FIX}")
    weights = tensors["weights"]
    if not bool((weights > 0).all()) or abs(float(weights.sum()) - 1.0) > 1e-4:
        raise ConfigError(f"{source}: the weights must be positive and sum to 1, got sum {float(weights.sum()):.6g} "
                          f"and minimum {float(weights.min()):.6g}; {_FIX}")
    scale = tensors["scale_tril"]
    if bool(torch.triu(scale, diagonal=1).ne(0).any()):
        raise ConfigError(f"{source}: scale_tril must be lower-triangular (Cholesky factors); {_FIX}")
    if not bool((torch.diagonal(scale, dim1=-2, dim2=-1) > 0).all()):
        raise ConfigError(f"{source}: scale_tril must have a positive diagonal (Cholesky factors); {_FIX}")
    return LatentPrior(weights / weights.sum(), tensors["means"], scale, metadata=meta)
