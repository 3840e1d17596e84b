"""Is an input like what the model knows? Compare its encoding and reconstruction with held-out data.

An input is *far outside* the model's domain when its encoding's Mahalanobis distance from the training latents,
or its reconstruction error, exceeds ``FAR_FACTOR`` times the largest value over the held-out test images
(stored in the release's ``latent_stats.safetensors``). The margin above the test set's maximum keeps the
warning for inputs of another kind (MNIST digits given to the Fashion-MNIST model), not for the rare odd
in-domain image; ``docs/editing.md`` has the measured values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from .stats import LatentStats

FAR_FACTOR = 1.5
"""How far above the held-out maximum (of each measure) counts as far outside the domain."""


class OutOfDomainWarning(UserWarning):
    """Inputs far outside the model's training domain: expect poor reconstructions and edits."""


@dataclass
class DomainReport:
    """Per-input domain measures: ``mahalanobis`` and ``recon_error`` [N], the thresholds and who is far."""

    mahalanobis: torch.Tensor
    recon_error: torch.Tensor
    mahalanobis_limit: float
    recon_error_limit: float

    @property
    def far(self) -> torch.Tensor:
        """[N] bool: far outside on either measure."""
        return (self.mahalanobis > self.mahalanobis_limit) | (self.recon_error > self.recon_error_limit)


def reconstruction_error(images: torch.Tensor, reconstructions: torch.Tensor, content_size: int | None) -> torch.Tensor:
    """Per-image MSE [N] on the [0, 1] scale over the content region (the padding of 28-in-32 models dropped)."""
    a, b = images.detach().cpu().double(), reconstructions.detach().cpu().double()
    if content_size is not None and content_size < a.shape[-1]:
        top, left = (a.shape[-2] - content_size) // 2, (a.shape[-1] - content_size) // 2
        a = a[..., top : top + content_size, left : left + content_size]
        b = b[..., top : top + content_size, left : left + content_size]
    return ((a - b) / 2.0).pow(2).flatten(1).mean(1).float()


def domain_report(stats: LatentStats, latents: torch.Tensor, recon_error: torch.Tensor) -> DomainReport:
    """Measures of latents [N, D] and their reconstruction errors [N] against ``stats``' held-out range."""
    return DomainReport(
        mahalanobis=stats.mahalanobis(latents),
        recon_error=recon_error.float().cpu(),
        mahalanobis_limit=FAR_FACTOR * stats.quantile("mahalanobis", 1.0),
        recon_error_limit=FAR_FACTOR * stats.quantile("recon_error", 1.0),
    )


def out_of_domain_message(
    model_name: str, stats: LatentStats, report: DomainReport, names: list[Any] | None = None
) -> str | None:
    """The one-line warning for the inputs ``report`` finds far outside, or None when none is."""
    far = report.far.nonzero().flatten().tolist()
    if not far:
        return None
    labels = [str(names[i]) if names is not None and i < len(names) else f"#{i}" for i in far]
    shown = ", ".join(labels[:3]) + (f" and {len(labels) - 3} more" if len(labels) > 3 else "")
    i = far[0]
    detail = (
        f"Mahalanobis distance {float(report.mahalanobis[i]):.1f} (held-out test images: median "
        f"{stats.quantile('mahalanobis', 0.5):.1f}, max {stats.quantile('mahalanobis', 1.0):.1f}), reconstruction "
        f"error {float(report.recon_error[i]):.3f} (median {stats.quantile('recon_error', 0.5):.3f}, max "
        f"{stats.quantile('recon_error', 1.0):.3f})"
    )
    count = f"{len(far)} of {len(report.far)} inputs ({shown}) are" if len(report.far) > 1 else f"input {shown} is"
    return (
        f"{model_name} knows {stats.domain}; {count} far outside it ({detail}): expect a poor reconstruction and "
        "edits that do not do what they say"
    )
