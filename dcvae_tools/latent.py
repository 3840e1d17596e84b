"""Pure tensor maths on latent vectors: interpolation, mixing masks, attribute directions and edits.

Nothing here knows about networks or images; the model class wraps these with encode/decode.
"""

from __future__ import annotations

import math
import operator
import warnings
from collections.abc import Mapping, Sequence

import torch

from .arguments import as_whole_number, is_finite_strength, is_real_number, whole_number_at_least
from .errors import LatentError
from .latent_specs import MAX_SWEEP_COUNT as MAX_SWEEP_COUNT  # re-exported: the parsers lived here before
from .latent_specs import parse_index_ranges as parse_index_ranges
from .latent_specs import parse_sweep as parse_sweep


def _as_generator(seed: int | torch.Generator | None) -> torch.Generator | None:
    """A CPU generator for ``seed`` (a whole number, numpy's included), the generator itself, or None."""
    if isinstance(seed, torch.Generator) and seed.device.type != "cpu":
        raise LatentError(f"the generator is on {seed.device}, but random latents and masks are drawn on the CPU "
                          "(so a seed gives the same numbers on every device): pass a CPU torch.Generator or a seed")
    if seed is None or isinstance(seed, torch.Generator):
        return seed
    try:
        value = operator.index(seed)  # int and numpy integers; a float would be truncated, so it is refused
    except TypeError:
        value = None
    if value is None or isinstance(seed, bool) or not -(2**63) <= value < 2**64:
        raise LatentError(f"seed must be a whole number (below 2**64) or a torch.Generator, got {seed!r}")
    return torch.Generator().manual_seed(value)


def nonfinite_rows(t: torch.Tensor) -> list[int]:
    """Indices of the rows of ``t`` ([N, ...]: latents or images) that hold NaN or infinite values."""
    return (~torch.isfinite(t)).flatten(1).any(1).nonzero().flatten().tolist()


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
    """Linear interpolation ``a + t (b - a)``. ``t`` is a number or a tensor that broadcasts against ``a``: for
    several points between two [D] latents give ``t`` the shape [K, 1] (one row per point), e.g.
    ``torch.linspace(0, 1, K)[:, None]``; :func:`interpolate` does this for evenly spaced points."""
    return a + (b - a) * t


ALIGNED_TOLERANCE = 1e-3
"""Unit directions closer than this (``|a - b|``) are the same direction, where slerp is lerp; closer than this to
opposite (``|a + b|``) they are opposite, where the great circle is chosen. Angles this small are measured to
float32's precision only through ``atan2`` (``arccos`` near -1 or 1 is not)."""


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor | float, eps: float = 1e-7) -> torch.Tensor:
    """Spherical interpolation along the last dim: follows the great circle between the directions of
    ``a`` and ``b`` while interpolating their norms linearly (so equal-norm endpoints keep that norm).

    Where ``a`` and ``b`` point the same way (within ``ALIGNED_TOLERANCE``), or one is zero, it is ``lerp``. Where
    they point opposite ways every great circle joins them: it takes the one through the coordinate axis least
    aligned with ``a``, so the path keeps its norm instead of passing through zero.
    ``t`` is a number or a tensor shaped like :func:`lerp`'s (``[K, 1]`` for K points between two [D] latents).
    """
    t = torch.as_tensor(t, dtype=a.dtype, device=a.device)
    a_norm = a.norm(dim=-1, keepdim=True)
    b_norm = b.norm(dim=-1, keepdim=True)
    a_unit = a / a_norm.clamp_min(eps)
    b_unit = b / b_norm.clamp_min(eps)
    apart = (a_unit - b_unit).norm(dim=-1, keepdim=True)  # 2 sin(omega / 2)
    across_sum = (a_unit + b_unit).norm(dim=-1, keepdim=True)  # 2 cos(omega / 2)
    omega = 2 * torch.atan2(apart, across_sum)
    nonzero = (a_norm > eps) & (b_norm > eps)  # a zero endpoint has no direction
    opposite = nonzero & (across_sum < ALIGNED_TOLERANCE)
    safe = nonzero & (apart >= ALIGNED_TOLERANCE) & ~opposite
    sin_safe = torch.where(safe, torch.sin(omega), torch.ones_like(omega))
    direction = (torch.sin((1 - t) * omega) * a_unit + torch.sin(t * omega) * b_unit) / sin_safe
    arc = direction * lerp(a_norm, b_norm, t)
    if bool(opposite.any()):  # half a turn from a's direction towards an axis made orthogonal to it
        axis = torch.zeros_like(a_unit).scatter(-1, a_unit.abs().argmin(-1, keepdim=True), 1.0)
        across = axis - (axis * a_unit).sum(-1, keepdim=True) * a_unit
        across = across / across.norm(dim=-1, keepdim=True).clamp_min(eps)
        turn = (torch.cos(math.pi * t) * a_unit + torch.sin(math.pi * t) * across) * lerp(a_norm, b_norm, t)
        arc = torch.where(opposite, turn, arc)
    return torch.where(safe | opposite, arc, lerp(a, b, t))


def interpolate(a: torch.Tensor, b: torch.Tensor, steps: int = 8, method: str = "lerp") -> torch.Tensor:
    """``steps`` evenly spaced latents from ``a`` to ``b`` (both included): [steps, D] for [D] inputs,
    [N, steps, D] for [N, D] inputs (N paths at once)."""
    steps = whole_number_at_least(steps, "steps", 2, LatentError)  # the two endpoints at least
    if not isinstance(a, torch.Tensor) or not isinstance(b, torch.Tensor):
        kinds = f"{type(a).__name__} and {type(b).__name__}"
        raise LatentError(f"interpolate takes latent tensors, got {kinds}; torch.as_tensor them first "
                          "(or use model.interpolate, which also takes images)")
    if a.shape != b.shape:
        raise LatentError(f"cannot interpolate latents of shapes {tuple(a.shape)} and {tuple(b.shape)}")
    if not a.is_floating_point() or not b.is_floating_point():  # integer steps would round every point
        a, b = a.to(torch.promote_types(a.dtype, torch.float32)), b.to(torch.promote_types(b.dtype, torch.float32))
    fn = {"lerp": lerp, "slerp": slerp}.get(method)
    if fn is None:
        raise LatentError(f"method must be 'lerp' or 'slerp', got {method!r}")
    t = torch.linspace(0.0, 1.0, steps, dtype=a.dtype, device=a.device).unsqueeze(-1)  # [steps, 1]
    out = fn(a.unsqueeze(-2), b.unsqueeze(-2), t)
    out[..., 0, :] = a  # exact endpoints, whatever rounding the formula did
    out[..., -1, :] = b
    return out


def random_mask(dim: int, fraction: float, seed: int | torch.Generator | None = None) -> torch.Tensor:
    """A boolean mask over ``dim`` latent dimensions with exactly ``round(fraction * dim)`` True."""
    dim = whole_number_at_least(dim, "dim", 1, LatentError)
    if not is_real_number(fraction) or not 0.0 <= fraction <= 1.0:
        raise LatentError(f"fraction must be a number in [0, 1], got {fraction!r}")
    count = round(fraction * dim)
    order = torch.randperm(dim, generator=_as_generator(seed))
    mask = torch.zeros(dim, dtype=torch.bool)
    mask[order[:count]] = True
    return mask


def mask_from_indices(dim: int, indices: Sequence[int]) -> torch.Tensor:
    """A boolean mask over ``dim`` dimensions, True at ``indices``; out-of-range indices are an error, and so is
    anything but a whole number (``2.7`` or ``True`` is refused, not read as ``2`` or ``1``)."""
    dim = whole_number_at_least(dim, "dim", 1, LatentError)
    indices = list(indices)
    whole = [as_whole_number(i) for i in indices]
    if None in whole:
        given = indices[whole.index(None)]
        raise LatentError(
            f"latent dimension {given!r} is not a whole number: give indices like [0, 1, 2] (a boolean mask goes "
            "to mix as it is)"
        )
    indices = whole
    bad = [i for i in indices if not 0 <= i < dim]
    if bad:
        raise LatentError(
            f"latent dimension(s) {bad[:5]} out of range: this model's latents have {dim} (0-{dim - 1})"
        )
    mask = torch.zeros(dim, dtype=torch.bool)
    mask[indices] = True
    return mask


def mix(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor | Sequence[bool]) -> torch.Tensor:
    """Replace the dimensions of ``a`` selected by the boolean ``mask`` with those of ``b``.

    ``a`` and ``b`` broadcast against each other and against ``mask`` (e.g. [K, D] masks give K mixes); a list
    of booleans is taken as a mask too.
    """
    mask = torch.as_tensor(mask)
    if mask.dtype != torch.bool:
        raise LatentError(f"mask must be boolean, got {mask.dtype}")
    if mask.shape[-1] != a.shape[-1] or a.shape[-1] != b.shape[-1]:
        raise LatentError(
            f"mask and latents disagree on the latent size: mask {tuple(mask.shape)}, "
            f"a {tuple(a.shape)}, b {tuple(b.shape)}"
        )
    return torch.where(mask.to(a.device), b, a)



def check_example_latents(positive: torch.Tensor, negative: torch.Tensor, what: str) -> None:
    """Raise :class:`LatentError` unless ``positive`` [P, D] and ``negative`` [Q, D] are non-empty latent sets of
    one size ``D``; ``what`` names what needs them in the message."""
    if positive.ndim != 2 or negative.ndim != 2 or positive.shape[1] != negative.shape[1]:
        raise LatentError(
            f"expected positive [P, D] and negative [Q, D] latents, got {tuple(positive.shape)} and "
            f"{tuple(negative.shape)}"
        )
    if len(positive) == 0 or len(negative) == 0:
        raise LatentError(f"{what} needs at least one positive and one negative example")

PAPER_EXAMPLES_PER_SIDE = 20
"""The paper builds each attribute direction from 20 images with the attribute and 20 without."""


def warn_if_few_examples(num_positive: int, num_negative: int, stacklevel: int = 3) -> None:
    """Warn when either side has fewer examples than the paper's 20: the mean (or boundary) of fewer latents
    carries more of those particular images and less of the attribute."""
    if min(num_positive, num_negative) < PAPER_EXAMPLES_PER_SIDE:
        warnings.warn(
            f"{num_positive} positive and {num_negative} negative examples; the paper's recipe uses "
            f"{PAPER_EXAMPLES_PER_SIDE} of each, and a direction from fewer carries more of those particular images",
            stacklevel=stacklevel,
        )


SAME_MEAN_TOLERANCE = 1e-4
"""Two mean latents closer than this fraction of a latent's length are the same up to float rounding (encoding the
same images in different batches differs by about 1e-7); a real attribute moves the mean by 1e-2 or more."""


def attribute_direction(
    positive: torch.Tensor, negative: torch.Tensor, normalize: bool = False
) -> torch.Tensor:
    """Mean latent of ``positive`` [P, D] minus mean latent of ``negative`` [Q, D] (the paper's recipe,
    with P = Q = 20); ``normalize=True`` scales it to unit length.

    Raises :class:`LatentError` when the two means are equal up to float rounding (closer than
    ``SAME_MEAN_TOLERANCE`` of the examples' mean length; e.g. the same images on both sides): a direction of
    length 0 would edit nothing, and one of rounding noise would edit at random.
    """
    if not isinstance(positive, torch.Tensor) or not isinstance(negative, torch.Tensor):
        kinds = f"{type(positive).__name__} and {type(negative).__name__}"
        numpy = "numpy" in (type(positive).__module__, type(negative).__module__)
        fix = ("torch.from_numpy them first" if numpy else
               "for images use model.attribute_vector(positive, negative), which encodes them")
        raise LatentError(f"attribute_direction takes latent tensors [P, D] and [Q, D], got {kinds}; {fix}")
    check_example_latents(positive, negative, "an attribute direction")
    direction = positive.double().mean(0) - negative.double().mean(0)
    norm = direction.norm()
    scale = torch.cat([positive, negative]).double().norm(dim=1).mean()
    if norm == 0 or norm <= SAME_MEAN_TOLERANCE * scale:
        raise LatentError(
            "the positive and negative examples have the same mean latent (up to float rounding), so the direction "
            "has length 0; use positives that show the attribute and negatives that lack it"
        )
    if normalize:
        direction = direction / norm
    return direction.to(positive.dtype)


def apply_edits(
    latents: torch.Tensor, edits: Mapping[torch.Tensor, float] | Sequence[tuple[torch.Tensor, float]]
) -> torch.Tensor:
    """``latents + sum(strength * direction)`` over the given (direction, strength) pairs (a list of pairs, or a
    mapping {direction: strength}), in raw units. A direction is a [D] tensor or anything with a ``.direction``
    (an :class:`~dcvae_tools.AttributeVector`); attribute names need the model: use :meth:`DCVAE.edit`."""
    pairs = list(edits.items()) if isinstance(edits, Mapping) else list(edits)
    out = latents.clone() if latents.is_floating_point() else latents.to(torch.float32)
    for number, (direction, strength) in enumerate(pairs, 1):
        if not is_finite_strength(strength):
            raise LatentError(f"edit strengths are finite numbers, got {strength!r:.40} (edit {number})")
        direction = getattr(direction, "direction", direction)
        if not isinstance(direction, torch.Tensor):
            raise LatentError(f"apply_edits takes direction tensors (or AttributeVectors), got {direction!r:.40}; "
                              "for an attribute's name use model.edit(latents, {name: strength})")
        if direction.shape[-1] != latents.shape[-1]:
            raise LatentError(
                f"attribute direction has {direction.shape[-1]} dims, but the latents have {latents.shape[-1]}"
            )
        if not bool(torch.isfinite(direction).all()):
            raise LatentError(f"the direction of edit {number} holds NaN or infinite values; recompute it from its "
                              "examples")
        out = out + float(strength) * direction.to(device=out.device, dtype=out.dtype)
    return out
