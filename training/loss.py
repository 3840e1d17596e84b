"""Loss functions of the DC-VAE recipe (and of the VAE / VAE-GAN baselines).

All functions are free functions returning 0-dim tensors; the weights that combine them (e.g. the
official ``1e-6`` on the summed KL term) are applied by the training loop.

DC-VAE's discriminator scores three kinds of images: real ``x``, reconstructions ``x_rec = G(E(x))`` and
prior samples ``G(z)``; the two fake terms are weighted 0.5 each in both hinge losses (the official recipe;
``sample_weight`` moves that split). The instance-level
contrastive term is an InfoNCE loss between features of ``x`` (query) and of ``x_rec`` (key), with a
MoCo-style queue of past keys as negatives (``FeatureQueue``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F

__all__ = [
    "FeatureQueue",
    "feature_reconstruction_loss",
    "hinge_d_loss",
    "hinge_g_loss",
    "info_nce",
    "kl_divergence",
    "pixel_reconstruction_loss",
]

ReconstructionKind = Literal["l1", "l2"]


def _fake_weights(
    sample: torch.Tensor | None, recon: torch.Tensor | None, sample_weight: float
) -> list[tuple[torch.Tensor, float]]:
    if sample is None and recon is None:
        raise ValueError("at least one of the fake logits (sample, recon) must be given")
    if not 0.0 < sample_weight < 1.0:
        raise ValueError(f"sample_weight={sample_weight!r}: must be strictly between 0 and 1")
    if sample is None or recon is None:
        return [(sample if recon is None else recon, 1.0)]
    return [(sample, sample_weight), (recon, 1.0 - sample_weight)]


def hinge_d_loss(
    real_logits: torch.Tensor,
    fake_logits_sample: torch.Tensor | None,
    fake_logits_recon: torch.Tensor | None,
    sample_weight: float = 0.5,
) -> torch.Tensor:
    """Discriminator hinge loss.

    ``mean(relu(1 - real)) + w * mean(relu(1 + fake_sample)) + (1 - w) * mean(relu(1 + fake_recon))`` with
    ``w = sample_weight`` (0.5 in the official recipe); when one fake term is ``None`` the other gets weight
    1.0 (pure GAN, or DC-VAE without sampling).

    Args:
        real_logits: discriminator outputs on real images, any shape.
        fake_logits_sample: outputs on decoded prior samples ``G(z)``, or None.
        fake_logits_recon: outputs on reconstructions ``G(E(x))``, or None.
        sample_weight: the prior samples' share of the two fake terms, strictly between 0 and 1.

    Raises:
        ValueError: both fake terms are None, or ``sample_weight`` is outside (0, 1).
    """
    loss = F.relu(1.0 - real_logits).mean()
    for fake, weight in _fake_weights(fake_logits_sample, fake_logits_recon, sample_weight):
        loss = loss + weight * F.relu(1.0 + fake).mean()
    return loss


def hinge_g_loss(
    fake_logits_sample: torch.Tensor | None,
    fake_logits_recon: torch.Tensor | None,
    sample_weight: float = 0.5,
) -> torch.Tensor:
    """Generator (decoder / encoder) hinge loss ``-(w * mean(fake_sample) + (1 - w) * mean(fake_recon))``.

    ``w = sample_weight`` (0.5 in the official recipe); when one term is ``None`` the other gets weight 1.0.

    Raises:
        ValueError: both terms are None, or ``sample_weight`` is outside (0, 1).
    """
    terms = _fake_weights(fake_logits_sample, fake_logits_recon, sample_weight)
    loss = terms[0][1] * terms[0][0].mean()
    for fake, weight in terms[1:]:
        loss = loss + weight * fake.mean()
    return -loss


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) SUMMED over the batch and all latent dims (not averaged).

    ``-0.5 * sum(1 + logvar - mu**2 - exp(logvar))``; the official DC-VAE code multiplies this sum by
    ``1e-6`` (the caller applies that weight). Because it is a sum, its scale grows with the batch size.

    Args:
        mu: posterior means ``[N, D]`` (any shape).
        logvar: posterior log-variances, same shape as ``mu``.
    """
    if mu.shape != logvar.shape:
        raise ValueError(f"mu and logvar shapes differ: {tuple(mu.shape)} vs {tuple(logvar.shape)}")
    return -0.5 * torch.sum(1.0 + logvar - mu.pow(2) - logvar.exp())


def info_nce(
    query: torch.Tensor,
    key: torch.Tensor,
    queue: torch.Tensor,
    temperature: float = 0.07,
    *,
    query_ids: torch.Tensor | None = None,
    queue_ids: torch.Tensor | None = None,
) -> torch.Tensor:
    """InfoNCE (MoCo form) with one positive per query and a queue of negatives.

    ``logits = cat([sum(q * k, 1, keepdim=True), q @ queue.T], 1) / temperature``, cross-entropy with
    target 0, averaged over the batch. ``key`` is detached (no gradient through the positive's key);
    ``queue`` is detached and copied, so it is safe to ``FeatureQueue.enqueue`` before ``backward()``.

    Args:
        query: ``[N, D]`` L2-normalized queries (gradients flow into them).
        key: ``[N, D]`` L2-normalized positive keys.
        queue: ``[K, D]`` L2-normalized negatives, ``K >= 1``.
        temperature: softmax temperature (0.07 as in MoCo).
        query_ids: ``[N]`` dataset index of each query's image (optional, with ``queue_ids``).
        queue_ids: ``[K]`` dataset index each queued key came from (-1: unknown). A queued key of the
            query's own image is an old positive, not a negative: it is masked out of that query's
            softmax. On a data set smaller than a few queue lengths such stale copies are common.

    Raises:
        ValueError: shape mismatch, empty queue, or non-positive temperature.
    """
    if query.ndim != 2 or key.shape != query.shape:
        raise ValueError(
            f"query and key must both be [N, D], got {tuple(query.shape)} and {tuple(key.shape)}"
        )
    if queue.ndim != 2 or queue.shape[1] != query.shape[1]:
        raise ValueError(f"queue must be [K, {query.shape[1]}], got {tuple(queue.shape)}")
    if queue.shape[0] == 0:
        raise ValueError(
            "the negative queue must be non-empty (seed it at init with normalized random vectors, "
            "e.g. FeatureQueue)"
        )
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    key = key.detach()
    negatives = queue.detach().clone().to(dtype=query.dtype, device=query.device)
    positive = torch.sum(query * key, dim=1, keepdim=True)
    negative = query @ negatives.T
    if query_ids is not None and queue_ids is not None:
        same_image = query_ids.to(queue_ids.device).view(-1, 1) == queue_ids.view(1, -1)
        negative = negative.masked_fill(same_image.to(negative.device) & (queue_ids.view(1, -1) >= 0), float("-inf"))
    logits = torch.cat([positive, negative], dim=1) / temperature
    target = torch.zeros(query.shape[0], dtype=torch.long, device=query.device)
    return F.cross_entropy(logits, target)


class FeatureQueue(torch.nn.Module):
    """Ring buffer of L2-normalized features used as InfoNCE negatives.

    Buffers ``features`` (``[size, dim]``), ``ids`` (``[size]`` int64, the dataset index each key came from,
    -1 when unknown) and ``pointer`` (0-dim int64, the next slot to write) are part of
    ``state_dict()``, so the queue checkpoints and resumes with its module. It starts filled with
    ``normalize(randn(size, dim))`` drawn from ``generator`` (or a generator seeded with ``seed``, or the
    global RNG when both are None).

    ``enqueue(keys)`` behaves exactly as writing the keys one by one at ``pointer`` and advancing it modulo
    ``size``: a batch that runs past the end wraps to the start, and a batch larger than the queue leaves
    only its last ``size`` keys (``pointer`` still advances by the full batch size, modulo ``size``).
    """

    features: torch.Tensor
    pointer: torch.Tensor

    def __init__(
        self, size: int, dim: int, generator: torch.Generator | None = None, seed: int | None = None
    ) -> None:
        super().__init__()
        if size < 1 or dim < 1:
            raise ValueError(f"size and dim must be >= 1, got size={size}, dim={dim}")
        if generator is None and seed is not None:
            generator = torch.Generator()
            generator.manual_seed(seed)
        initial = F.normalize(torch.randn(size, dim, generator=generator), dim=1)
        self.register_buffer("features", initial)
        self.register_buffer("pointer", torch.zeros((), dtype=torch.long))
        self.register_buffer("ids", torch.full((size,), -1, dtype=torch.long))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        # checkpoints written before keys carried their image's index: every slot's source is unknown
        state_dict.setdefault(prefix + "ids", torch.full((self.size,), -1, dtype=torch.long))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @property
    def size(self) -> int:
        """Number of slots."""
        return self.features.shape[0]

    @property
    def dim(self) -> int:
        """Feature dimension."""
        return self.features.shape[1]

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor, ids: torch.Tensor | None = None) -> None:
        """Write ``keys`` (``[B, dim]``, expected L2-normalized; detached) into the ring buffer.

        ``ids`` (``[B]``, optional) are the dataset indices the keys came from, kept beside them so that
        ``info_nce`` can mask a query's own stale keys; without them the slots' ids become -1 (unknown).

        Under DistributedDataParallel, gather the keys of all ranks first (as MoCo does) so every rank's
        queue stays identical.
        """
        if keys.ndim != 2 or keys.shape[1] != self.dim:
            raise ValueError(f"keys must be [B, {self.dim}], got {tuple(keys.shape)}")
        count = keys.shape[0]
        if ids is not None and ids.shape != (count,):
            raise ValueError(f"ids must be [{count}], got {tuple(ids.shape)}")
        if count == 0:
            return
        start = int(self.pointer)
        kept = min(count, self.size)
        slots = (start + torch.arange(count - kept, count, device=self.features.device)) % self.size
        self.features[slots] = keys[count - kept :].detach().to(self.features.device, self.features.dtype)
        self.ids[slots] = ids[count - kept :].to(self.ids) if ids is not None else -1
        self.pointer.fill_((start + count) % self.size)

    def forward(self) -> torch.Tensor:
        """The current queue contents ``[size, dim]`` (the buffer itself; ``info_nce`` copies it)."""
        return self.features


def _elementwise_distance(a: torch.Tensor, b: torch.Tensor, kind: ReconstructionKind) -> torch.Tensor:
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}")
    if kind == "l1":
        return F.l1_loss(b, a)
    if kind == "l2":
        return F.mse_loss(b, a)
    raise ValueError(f"kind must be 'l1' or 'l2', got {kind!r}")


def pixel_reconstruction_loss(
    x: torch.Tensor, x_rec: torch.Tensor, kind: ReconstructionKind = "l2"
) -> torch.Tensor:
    """Mean over all elements of ``|x - x_rec|`` (``"l1"``) or ``(x - x_rec)**2`` (``"l2"``).

    Used by the VAE baseline; gradients flow into both arguments (detach ``x`` yourself if needed).
    """
    return _elementwise_distance(x, x_rec, kind)


def feature_reconstruction_loss(
    feat_x: Sequence[torch.Tensor], feat_rec: Sequence[torch.Tensor], kind: ReconstructionKind = "l2"
) -> torch.Tensor:
    """Sum over layers of the per-layer mean L1/L2 distance between two equally long feature lists.

    Used by the VAE-GAN baseline (learned similarity in discriminator feature space).

    Raises:
        ValueError: the lists are empty or differ in length, or a pair of shapes differs.
    """
    feat_x, feat_rec = list(feat_x), list(feat_rec)
    if not feat_x or len(feat_x) != len(feat_rec):
        raise ValueError(
            f"need two non-empty feature lists of equal length, got {len(feat_x)} and {len(feat_rec)}"
        )
    total = _elementwise_distance(feat_x[0], feat_rec[0], kind)
    for a, b in zip(feat_x[1:], feat_rec[1:], strict=True):
        total = total + _elementwise_distance(a, b, kind)
    return total
