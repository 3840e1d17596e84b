"""Is an input like what the model knows? Compare its encoding and reconstruction with held-out data.

Three measures describe an input (all computed from the posterior mean ``mu`` of its encoding):

- ``mahalanobis``: the Mahalanobis distance of ``mu`` from the training latents;
- ``cycle``: how far re-encoding the reconstruction moves the latent, ``||E(D(mu)) - mu||``;
- ``recon_error``: the reconstruction MSE on the [0, 1] scale over the image content.

Each measure becomes an upper-tail p-value against the held-out test images (:func:`upper_tail_log_p`, from the
quantiles stored in the release's ``latent_stats.safetensors``), the p-values are combined with Fisher's method
(``-2 * sum(log p)``, :func:`fisher_score`), and an input is *far outside* the model's domain when that combined
score exceeds ``far_score_limit``: the combined score's ``FAR_LEVEL`` quantile over the test images themselves, so
0.5% of those and about as many of new in-domain images (0.48% measured) are flagged. No single measure separates
inputs of another kind well enough (most MNIST digits given to the Fashion-MNIST model stay below 1.5x the test
maximum of each one, and each measure alone flags 32-94% of them at this level, the strongest not the same for
every model), but an input unusual on two or three measures at once is rare in domain; ``docs/editing.md``
has the measured rates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from .stats import LatentStats

MEASURES = ("mahalanobis", "cycle", "recon_error")
"""The measures combined, in the order their p-values are reported."""

FAR_LEVEL = 0.995
"""The share of the reference test images whose combined score stays at or below the limit (0.5% of them above it;
0.48% of unseen in-domain images measured).
Measured on the retrained Fashion-MNIST models, 0.2% kept noticeably fewer MNIST digits flagged (51% against 84% on
the 82,000-iteration release) and 1% added fewer (93%, at 0.86% of unseen garments flagged): 0.5% is where a
warning is both rare on real inputs and reliable on inputs of another kind."""

TAIL_FROM = 0.99
"""Beyond the largest reference value, p falls exponentially with the scale of the tail between this level's
quantile and the maximum (see :func:`upper_tail_log_p`)."""


class OutOfDomainWarning(UserWarning):
    """Inputs far outside the model's training domain: expect poor reconstructions and edits."""


@dataclass
class DomainReport:
    """Per-input domain measures [N], their upper-tail p-values, the combined score [N] and its limit.

    Attributes:
        mahalanobis: Mahalanobis distance of each encoding from the training latents.
        cycle: distance the encoding moves when the reconstruction is encoded again.
        recon_error: reconstruction MSE ([0, 1] scale, content region).
        p_values: ``{measure: [N]}`` upper-tail p-values against the held-out test images (see ``MEASURES``).
        score: Fisher's combined score ``-2 * sum(log p)``.
        limit: the score above which an input is far outside (``far_score_limit`` of the statistics).
        reference_count: how many held-out test images the p-values are against.
    """

    mahalanobis: torch.Tensor
    cycle: torch.Tensor
    recon_error: torch.Tensor
    p_values: dict[str, torch.Tensor]
    score: torch.Tensor
    limit: float
    reference_count: int

    @property
    def far(self) -> torch.Tensor:
        """[N] bool: the combined score exceeds the limit."""
        return self.score > self.limit


def reconstruction_error(images: torch.Tensor, reconstructions: torch.Tensor, content_size: int | None) -> torch.Tensor:
    """Per-image MSE [N] on the [0, 1] scale over the content region (the padding of 28-in-32 models dropped)."""
    from ..images.convert import crop_center

    a = crop_center(images.detach().cpu().double(), content_size)
    b = crop_center(reconstructions.detach().cpu().double(), content_size)
    return ((a - b) / 2.0).pow(2).flatten(1).mean(1).float()


def cycle_distance(latents: torch.Tensor, reencoded: torch.Tensor) -> torch.Tensor:
    """Per-input distance [N] between latents [N, D] and the encodings of their reconstructions [N, D]."""
    return (reencoded.detach().cpu().double() - latents.detach().cpu().double()).norm(dim=1).float()


def upper_tail_log_p(
    values: torch.Tensor, levels: torch.Tensor, quantiles: torch.Tensor, reference_count: int
) -> torch.Tensor:
    """Natural log of the upper-tail p-value ``P(reference >= value)`` of each of ``values`` [N].

    ``quantiles`` [Q] are the reference's quantiles at ``levels`` [Q] (increasing, the last 1.0: the maximum).
    Between stored quantiles the level is interpolated linearly (on a plateau of equal quantiles, the lowest of
    its levels: the larger p); below the first quantile p is ``1 - levels[0]``; p is never below
    ``1 / (reference_count + 1)`` up to the maximum. Beyond the maximum p keeps falling as an exponential tail,
    ``p = exp(-(value - max) / s) / (reference_count + 1)``, with ``s`` fitted so that the tail passes through
    the ``TAIL_FROM`` quantile: a far input is not capped at the p of the most unusual test image.
    """
    v = values.detach().double().cpu()
    lv, q = levels.double().cpu(), quantiles.double().cpu()
    floor = 1.0 / (reference_count + 1)
    idx = torch.searchsorted(q, v.contiguous(), right=False)  # number of quantiles strictly below each value
    upper = idx.clamp(1, len(q) - 1)
    lower = upper - 1
    q_lo, q_hi = q[lower], q[upper]
    gap = (q_hi - q_lo).clamp_min(1e-300)
    level = lv[lower] + (lv[upper] - lv[lower]) * ((v - q_lo) / gap).clamp(0.0, 1.0)
    level = torch.where(idx == 0, lv[0], level)
    log_p = torch.log((1.0 - level).clamp_min(floor))
    beyond = idx >= len(q)
    if bool(beyond.any()):
        q_tail = _level_quantile(lv, q, TAIL_FROM) if len(q) > 1 else float(q[-1])
        drop = math.log((1.0 - TAIL_FROM) / floor)  # > 0 with more than 99 reference images
        scale = (float(q[-1]) - q_tail) / drop if drop > 0 else 0.0
        tail = math.log(floor) - (v - q[-1]) / scale if scale > 0 else torch.full_like(v, math.log(floor))
        log_p = torch.where(beyond, tail, log_p)
    return log_p.float()


def _level_quantile(levels: torch.Tensor, quantiles: torch.Tensor, level: float) -> float:
    """The stored quantile at ``level``, interpolated between stored levels."""
    i = int(torch.searchsorted(levels, torch.tensor([level], dtype=levels.dtype)).item())
    if i <= 0:
        return float(quantiles[0])
    if i >= len(levels) or abs(float(levels[i]) - level) < 1e-12:
        return float(quantiles[min(i, len(levels) - 1)])
    t = (level - float(levels[i - 1])) / (float(levels[i]) - float(levels[i - 1]))
    return float(quantiles[i - 1] + t * (quantiles[i] - quantiles[i - 1]))


def fisher_score(log_p_values: list[torch.Tensor]) -> torch.Tensor:
    """Fisher's combination ``-2 * sum(log p)`` [N] of per-measure log p-values (each [N])."""
    return -2.0 * torch.stack([p.double() for p in log_p_values]).sum(0)


def measure_log_p(stats: LatentStats, measures: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``{measure: log p [N]}`` of each of ``MEASURES`` in ``measures`` against ``stats``' held-out quantiles."""
    count = stats.reference_count
    return {
        name: upper_tail_log_p(measures[name], stats.quantile_levels, stats.quantiles_of(name), count)
        for name in MEASURES
    }


def domain_report(
    stats: LatentStats, latents: torch.Tensor, recon_error: torch.Tensor, cycle: torch.Tensor
) -> DomainReport:
    """Measures of latents [N, D], their reconstruction errors [N] and cycle distances [N] against ``stats``."""
    measures = {
        "mahalanobis": stats.mahalanobis(latents),
        "cycle": cycle.detach().float().cpu(),
        "recon_error": recon_error.detach().float().cpu(),
    }
    log_p = measure_log_p(stats, measures)
    return DomainReport(
        **measures,
        p_values={name: value.double().exp().float() for name, value in log_p.items()},
        score=fisher_score(list(log_p.values())).float(),
        limit=stats.far_score_limit_value,
        reference_count=stats.reference_count,
    )


_PHRASES = {
    "mahalanobis": "its encoding is further from the training latents than {share}",
    "cycle": "re-encoding its reconstruction moves its encoding further than for {share}",
    "recon_error": "its reconstruction error is larger than for {share}",
}


def _share(p: float, count: int, first: bool) -> str:
    if p < 1.0 / (count + 1) * (1 - 1e-6):  # below the floor: beyond the largest reference value
        return f"all {count:,} held-out test images" if first else "all of them"
    return f"{math.floor((1.0 - p) * 1000) / 10:.1f}% of " + ("held-out test images" if first else "them")


def far_reason(stats: LatentStats, report: DomainReport, index: int) -> str:
    """Why input ``index`` is flagged, in words: the measures on which it is unusual (p <= 0.05), most unusual
    first, as shares of the held-out test images."""
    p = {name: float(report.p_values[name][index]) for name in MEASURES}
    unusual = sorted((name for name in MEASURES if p[name] <= 0.05), key=lambda name: p[name])
    if not unusual:
        level = 100 * float(stats.metadata.get("far_level", FAR_LEVEL))
        return (f"no measure alone is very unusual, but together its encoding's distance from the training latents, "
                f"how far re-encoding its reconstruction moves it and its reconstruction error are more unusual than "
                f"for {level:g}% of held-out test images")
    parts = [_PHRASES[name].format(share=_share(p[name], report.reference_count, i == 0))
             for i, name in enumerate(unusual)]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def out_of_domain_message(
    model_name: str, stats: LatentStats, report: DomainReport, names: list[Any] | None = None
) -> str | None:
    """The one-line warning for the inputs ``report`` finds far outside, or None when none is."""
    far = report.far.nonzero().flatten().tolist()
    if not far:
        return None
    labels = [str(names[i]) if names is not None and i < len(names) else f"#{i}" for i in far]
    shown = ", ".join(labels[:3]) + (f" and {len(labels) - 3} more" if len(labels) > 3 else "")
    count = f"{len(far)} of {len(report.far)} inputs ({shown}) are" if len(report.far) > 1 else f"input {shown} is"
    first = f"{labels[0]}: " if len(report.far) > 1 else ""
    return (
        f"{model_name} knows {stats.domain}; {count} far outside it ({first}{far_reason(stats, report, far[0])}): "
        + ("expect poor reconstructions and edits that do not do what they say" if len(far) > 1
           else "expect a poor reconstruction and edits that do not do what they say")
    )
