"""Strength units of edits.

``unit="std"`` (the default where the model ships latent statistics): strength 1.0 moves a latent by one standard
deviation of the model's training latents along the direction: the edit adds ``s * sigma_d * u`` with
``u = d / |d|`` and ``sigma_d = sqrt(u^T Cov u)``. The same strength then asks for a comparable change for every
attribute and every model, whatever the length of the direction (the paper's mean differences range from about 8
to 27 on the bundled Fashion-MNIST model).

``unit="raw"``: the paper's convention, ``s * d``: strength 1.0 adds the direction as it is (for a mean
difference: moves from the negative examples' mean to the positive examples' mean).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

import torch

from ..errors import LatentError

if TYPE_CHECKING:
    from .stats import LatentStats

Unit = Literal["std", "raw"]
UNITS: tuple[str, ...] = ("std", "raw")
STD_DEFINITION = "1.0 = one standard deviation of the training latents (posterior means) along the direction"
FAR_EDIT_STD = 10.0
"""An edit that moves latents further than this many standard deviations along its direction warns: the training
latents lie within a few, so the decoder is asked for something it has never drawn (typically a saturated image)."""


class FarEditWarning(UserWarning):
    """An edit moves latents far beyond the spread of the model's training latents (see :data:`FAR_EDIT_STD`)."""


def far_edit_message(label: str, direction: torch.Tensor, offset: torch.Tensor, sigma: float, unit: Unit) -> str | None:
    """The warning for an ``offset`` along ``direction`` longer than :data:`FAR_EDIT_STD` times ``sigma`` (the
    training latents' standard deviation along it), naming the strengths that stay inside; None when it is not."""
    if not sigma > 0 or float(offset.double().norm()) <= FAR_EDIT_STD * sigma:
        return None
    norm = float(direction.double().norm())
    limit = FAR_EDIT_STD if unit == "std" else FAR_EDIT_STD * sigma / norm
    return (
        f"{label}: strengths beyond \u00b1{limit:.3g} ({unit} units) move latents more than {FAR_EDIT_STD:g} standard "
        "deviations of the training latents along it, far outside anything the model has drawn; expect saturated "
        "or meaningless images"
    )


def unit_metadata(direction: torch.Tensor, stats: LatentStats) -> dict[str, Any]:
    """What one unit of ``direction`` is: ``std`` (sigma_d), ``norm`` (|d|) and the definition, for the
    direction's metadata (``metadata["unit"]``). A direction of length 0 (identical example sets) has std 0: it
    cannot be scaled to std units, which :func:`step` says when it is used."""
    zero = float(direction.double().norm()) == 0.0
    return {
        "std": 0.0 if zero else stats.std_along(direction),
        "norm": float(direction.double().norm()),
        "definition": STD_DEFINITION,
        "data": f"{stats.metadata.get('dataset', '?')} {stats.metadata.get('split', 'train')}",
    }


def check_unit(unit: str) -> Unit:
    """``unit`` if it is a known unit, else a LatentError naming the choices."""
    if unit not in UNITS:
        raise LatentError(f"unknown strength unit {unit!r}; use 'std' (one standard deviation) or 'raw' (the paper's)")
    return unit  # type: ignore[return-value]


def direction_std(direction: torch.Tensor, stats: LatentStats | None, metadata: Mapping[str, Any] | None) -> float:
    """sigma_d of ``direction``: from ``stats`` when given, else from the unit stored in its ``metadata``."""
    if stats is not None:
        return stats.std_along(direction)
    stored = (metadata or {}).get("unit")
    if isinstance(stored, Mapping) and isinstance(stored.get("std"), int | float) and stored["std"] > 0:
        return float(stored["std"])
    raise LatentError(
        "strengths in 'std' units need the model's latent statistics (latent_stats.safetensors), which this model "
        "does not have: compute them with `dcvae-train latent-stats MODEL_FOLDER`, or pass unit='raw' "
        "(--unit raw) for the paper's raw strengths"
    )


def step(direction: torch.Tensor, strength: float, unit: Unit, sigma: float | None = None) -> torch.Tensor:
    """The latent offset of one edit: ``strength * direction`` (raw) or ``strength * sigma * direction/|direction|``."""
    if unit == "raw":
        return float(strength) * direction
    norm = direction.norm()
    if float(norm) == 0.0:
        raise LatentError("the attribute direction has length 0: it cannot be scaled to 'std' units")
    if sigma is None:
        raise LatentError("'std' units need the direction's standard deviation")
    return float(strength) * sigma * direction / norm
