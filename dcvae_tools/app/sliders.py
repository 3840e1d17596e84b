"""The edit sliders: which directions a model offers and each slider's label, unit and range.

Everything the page needs to know about an edit slider comes from :func:`edit_directions` (one slider per
direction the checkpoint ships in ``model.attributes``: the named attributes first, then the principal directions
``pc01`` ... where it has them) and :func:`edit_unit` (the strength unit every slider of a model uses, which the
page passes to ``model.edit``). The page builds its sliders from these only.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dcvae_tools.model import DCVAE

MAX_SLIDERS = 16
"""The page has this many slider slots; a model with more directions shows the first ones."""

STD_DEFINITION = "1.0 = one standard deviation of the training latents along the direction"


@dataclass(frozen=True)
class Direction:
    """One edit slider.

    Attributes:
        key: what ``model.edit`` takes for this direction (an attribute name).
        label: the slider's label.
        unit: the strength unit, shown beside the label: ``"std"`` (standard deviations of the training latents
            along the direction) or ``"raw"`` (multiples of the stored vector, the paper's).
        minimum, maximum, step: the slider's range.
        info: one line under the slider (how the direction was made).
    """

    key: str
    label: str
    unit: str
    minimum: float
    maximum: float
    step: float
    info: str = ""

    @property
    def title(self) -> str:
        """``"label (unit)"``, the slider's visible label."""
        return f"{self.label} ({self.unit})"


def _nice(value: float) -> float:
    """Round a positive range limit up to 1, 2 or 5 times a power of ten (at least 0.1)."""
    value = max(value, 0.1)
    exponent = math.floor(math.log10(value))
    for mantissa in (1, 2, 5, 10):
        if value <= mantissa * 10**exponent * 1.0001:
            return float(mantissa * 10**exponent)
    return float(10 ** (exponent + 1))  # pragma: no cover


def _edit_takes_unit(model: DCVAE) -> bool:
    try:
        return "unit" in inspect.signature(model.edit).parameters
    except (TypeError, ValueError):  # pragma: no cover - a model without an inspectable edit
        return False


def _stored_std(metadata: dict[str, Any]) -> bool:
    unit = metadata.get("unit")
    return isinstance(unit, dict) and isinstance(unit.get("std"), int | float) and unit["std"] > 0


def edit_unit(model: DCVAE) -> str:
    """The strength unit of the page's sliders for ``model``: ``"std"`` where ``model.edit`` takes ``unit=`` and
    the model can measure one standard deviation along every direction (it has latent statistics, or each
    direction's metadata records its standard deviation), else ``"raw"``."""
    if not _edit_takes_unit(model):
        return "raw"
    if getattr(model, "latent_stats", None) is not None:
        return "std"
    attributes = list(model.attributes.values())
    return "std" if attributes and all(_stored_std(a.metadata) for a in attributes) else "raw"


def edit_kwargs(model: DCVAE) -> dict[str, Any]:
    """Keyword arguments for ``model.edit`` that fix the sliders' unit (none where ``edit`` has no ``unit=``)."""
    return {"unit": edit_unit(model)} if _edit_takes_unit(model) else {}


def unit_note(unit: str) -> str:
    """One sentence saying what a strength of 1.0 means in ``unit``."""
    if unit == "std":
        return f"Strengths in std units: {STD_DEFINITION}."
    return "Strengths in raw units: 1.0 adds the direction as stored (for a mean difference, the step from the " \
           "negative examples' mean to the positive examples' mean)."


def strength_range(unit: str, norm: float, latent_dim: int) -> tuple[float, float, float]:
    """(minimum, maximum, step) of a slider.

    In std units the range is +-3. In raw units (multiples of the stored vector) the limit is chosen so that the
    largest edit moves a latent by about 2.5 sqrt(D), the typical length of a latent drawn from the N(0, I) prior,
    rounded up to 1, 2 or 5 times a power of ten; the step is a hundredth of it.
    """
    if unit == "std":
        return -3.0, 3.0, 0.05
    limit = _nice(2.5 * math.sqrt(latent_dim) / norm) if norm > 0 else 1.0
    return -limit, limit, limit / 100


def _is_principal(metadata: dict[str, Any]) -> bool:
    return metadata.get("method") == "pca"


def edit_directions(model: DCVAE) -> list[Direction]:
    """The sliders the page shows for ``model``: its named attributes (sorted), then its principal directions
    (by component)."""
    unit = edit_unit(model)
    named, principal = [], []
    for name in sorted(model.attributes):
        attribute = model.attributes[name]
        meta = attribute.metadata
        low, high, step = strength_range(unit, float(attribute.direction.float().norm()), model.latent_dim)
        if _is_principal(meta):
            component = meta.get("component", name)
            share = meta.get("explained_variance_ratio")
            label = f"principal direction {component}"
            info = f"{share:.1%} of the training latents' variance" if isinstance(share, float) else str(
                meta.get("rule", ""))
            principal.append((component if isinstance(component, int) else 0,
                              Direction(name, label, unit, low, high, step, info)))
            continue
        rule = meta.get("rule")
        counts = f"{attribute.num_positive} vs {attribute.num_negative} examples"
        info = f"{rule} ({counts})" if rule else f"mean of positive minus negative examples ({counts})"
        named.append(Direction(name, name.replace("_", " "), unit, low, high, step, info))
    return named + [d for _, d in sorted(principal, key=lambda item: item[0])]
