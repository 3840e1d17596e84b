"""What :class:`dcvae_tools.DCVAE`'s editing methods delegate to (model-aware, but outside ``model.py``)."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch

from ..arguments import is_finite_strength
from ..errors import ConfigError, LatentError
from ..latent import warn_if_few_examples
from .units import FarEditWarning, Unit, check_unit, direction_std, far_edit_message, step

if TYPE_CHECKING:
    from ..model import DCVAE, AttributeVector


def resolve_unit(model: DCVAE, unit: str | None) -> Unit:
    """``unit``, or the default: ``"std"`` where the model has latent statistics, else ``"raw"`` (with a warning)."""
    if unit is not None:
        return check_unit(unit)
    if model.latent_stats is not None:
        return "std"
    warnings.warn(
        "this model has no latent statistics (latent_stats.safetensors), so edit strengths are in the paper's raw "
        "units (strength x direction); pass unit='raw' to say so, or compute them with `dcvae-train latent-stats`",
        UserWarning,
        stacklevel=5,  # the caller of DCVAE.edit (through edit_offsets and _offsets)
    )
    return "raw"


def _metadata(key: Any) -> Mapping[str, Any] | None:
    from ..model import AttributeVector

    return key.metadata if isinstance(key, AttributeVector) else None


def _checked(model: DCVAE, key: Any) -> torch.Tensor:
    """The [D] direction of ``key`` (a name, an AttributeVector or a tensor), its shape checked."""
    direction = model._direction(key)
    if direction.ndim != 1 or direction.shape[-1] != model.latent_dim:
        raise LatentError(
            f"attribute direction has shape {tuple(direction.shape)}, but the latents have {model.latent_dim} dims"
        )
    if not bool(torch.isfinite(direction).all()):
        name = key if isinstance(key, str) else getattr(key, "name", None)
        which = f"the attribute direction {name!r}" if isinstance(name, str) else "an attribute direction"
        raise LatentError(f"{which} holds NaN or infinite values; recompute it from its examples "
                          "(model.attribute_vector)")
    return direction


def edit_offsets(
    model: DCVAE,
    pairs: Sequence[tuple[Any, float]],
    unit: str | None = None,
    hold: Sequence[Any] = (),
) -> list[torch.Tensor]:
    """The latent offset [D] of each (attribute, strength) pair, in ``unit``, with the ``hold`` directions
    projected out of each (then sigma is that of the projected direction). An offset far beyond the training
    latents' spread gives a :class:`FarEditWarning` (see :func:`far_edits`)."""
    offsets, far = _offsets(model, pairs, unit, hold)
    for message in far:
        warnings.warn(message, FarEditWarning, stacklevel=3)  # the caller of DCVAE.edit
    return offsets


def far_edits(model: DCVAE, pairs: Sequence[tuple[Any, float]], unit: str | None = None,
              hold: Sequence[Any] = ()) -> list[str]:
    """The distinct :class:`FarEditWarning` messages :func:`edit_offsets` would give for ``pairs`` (for a caller
    that says each once, however many batches or strengths it edits)."""
    return _offsets(model, pairs, unit, hold)[1]


def _offsets(model: DCVAE, pairs: Sequence[tuple[Any, float]], unit: str | None,
             hold: Sequence[Any]) -> tuple[list[torch.Tensor], list[str]]:
    from .conditional import project_out

    if not pairs:
        return [], []
    for key, strength in pairs:
        if not is_finite_strength(strength):
            name = key if isinstance(key, str) else getattr(key, "name", None)
            label = name if isinstance(name, str) else "a direction"
            several = not isinstance(strength, str | bytes) and hasattr(strength, "__len__")
            hint = (f" (one per call: for a sweep, torch.cat([model.edit(z, {{{label!r}: s}}) for s in strengths]))"
                    if several else "")
            raise LatentError(f"the strength of {label} is {strength!r:.60}; give a finite number{hint}")
    # every name and shape is checked before the unit is settled (an unknown name fails without a unit warning)
    directions = [_checked(model, key) for key, _ in pairs]
    held = [_checked(model, key) for key in hold]
    unit = resolve_unit(model, unit)
    offsets: list[torch.Tensor] = []
    far: list[str] = []
    for (key, strength), direction in zip(pairs, directions, strict=True):
        metadata = None
        if not held:
            metadata = model.attributes[key].metadata if isinstance(key, str) else _metadata(key)
        if held:
            direction = project_out(direction.float(), [h.float() for h in held])
        sigma = direction_std(direction, model.latent_stats, metadata) if unit == "std" else None
        offset = step(direction.float(), float(strength), unit, sigma)
        message = _far_message(model, key, direction, offset, sigma, unit, metadata)
        if message is not None and message not in far:
            far.append(message)
        offsets.append(offset)
    return offsets, far


def _far_message(model: DCVAE, key: Any, direction: torch.Tensor, offset: torch.Tensor, sigma: float | None,
                 unit: Unit, metadata: Mapping[str, Any] | None) -> str | None:
    """The far-edit message of one offset, judged only where the spread along the direction is known (the
    model's latent statistics, or the unit stored with the direction)."""
    if float(direction.double().norm()) == 0.0:
        return None  # no move at all (a raw edit along a zero direction leaves the latent as it is)
    if sigma is None:
        try:
            sigma = direction_std(direction, model.latent_stats, metadata)
        except (LatentError, ConfigError):
            return None
    name = key if isinstance(key, str) else getattr(key, "name", None)
    label = name if isinstance(name, str) else "the direction"
    return far_edit_message(label, direction, offset, sigma, unit)


def boundary_direction(
    model: DCVAE,
    positive: Any,
    negative: Any,
    name: str = "attribute",
    l2: float = 1e-2,
    metadata: Mapping[str, Any] | None = None,
    *,
    _stacklevel: int = 3,
) -> AttributeVector:
    """A supervised direction: the unit normal of a logistic-regression boundary between the latents of
    ``positive`` and ``negative`` (images or latents). Its unit (``metadata["unit"]``) is recorded when the model
    has latent statistics. Fewer than 20 examples on either side warn."""
    from ..latent_specs import check_attribute_name
    from ..model import AttributeVector
    from .boundary import fit_boundary
    from .units import unit_metadata

    check_attribute_name(name)

    zp, zn = model._side_latents(positive, "positive"), model._side_latents(negative, "negative")
    fitted = fit_boundary(zp.cpu(), zn.cpu(), l2=l2)
    warn_if_few_examples(len(zp), len(zn), stacklevel=_stacklevel)
    meta: dict[str, Any] = {
        "method": "boundary",
        "l2": l2,
        "training_accuracy": fitted.accuracy,
        **dict(metadata or {}),
    }
    if model.latent_stats is not None:
        meta["unit"] = unit_metadata(fitted.normal, model.latent_stats)
    return AttributeVector(name, fitted.normal.float(), len(zp), len(zn), True, meta)


def domain_measures(model: DCVAE, images: torch.Tensor, latents: torch.Tensor | None = None,
                    reconstructions: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The posterior means [N, D] of model-format images (or ``latents``), the reconstruction errors [N] of their
    decodings (or ``reconstructions``) and their cycle distances [N] (how far encoding the reconstruction moves
    the latent): what the out-of-domain check measures, at release time and at check time alike."""
    from .domain import cycle_distance, reconstruction_error

    z = model.encode(images) if latents is None else latents
    recon = model.decode(z) if reconstructions is None else reconstructions
    errors = reconstruction_error(images, recon, model.config.content_size)
    return z, errors, cycle_distance(z, model.encode(recon))


def check_domain(model: DCVAE, images: torch.Tensor, latents: torch.Tensor | None = None,
                 reconstructions: torch.Tensor | None = None, names: list[Any] | None = None,
                 warn: bool = True, stacklevel: int = 2) -> Any:
    """The :class:`~dcvae_tools.editing.domain.DomainReport` of model-format images (None without latent
    statistics); warns once, naming the model's domain and why, when any is far outside it. ``latents`` must be
    posterior means (the statistics were measured on those); ``reconstructions`` their decodings."""
    from .domain import OutOfDomainWarning, domain_report, out_of_domain_message

    stats = model.latent_stats
    if stats is None:
        return None
    z, errors, cycle = domain_measures(model, images, latents, reconstructions)
    report = domain_report(stats, z, errors, cycle)
    if warn:
        source = getattr(model, "source", None)
        message = out_of_domain_message(str(source.name) if source is not None else "this model", stats, report, names)
        if message is not None:
            warnings.warn(message, OutOfDomainWarning, stacklevel=stacklevel)
    return report
