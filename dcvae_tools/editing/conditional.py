"""Conditional edits (InterFaceGAN's conditional manipulation): move along one direction while holding others.

The held directions are orthonormalised (Gram-Schmidt) and projected out of the target direction, so the edit
has no component along any held direction: a linear score along a held direction does not change.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..errors import LatentError


def orthonormal_basis(directions: Sequence[torch.Tensor], eps: float = 1e-8) -> list[torch.Tensor]:
    """An orthonormal basis (float64) of the span of ``directions`` (Gram-Schmidt; dependent ones dropped)."""
    basis: list[torch.Tensor] = []
    for d in directions:
        v = d.double().flatten().clone()
        scale = float(v.norm())
        for b in basis:
            v = v - (v @ b) * b
        if scale > 0 and float(v.norm()) > eps * scale:
            basis.append(v / v.norm())
    return basis


def project_out(direction: torch.Tensor, held: Sequence[torch.Tensor]) -> torch.Tensor:
    """``direction`` minus its projection on the span of ``held`` (same dtype as ``direction``)."""
    v = direction.double().flatten().clone()
    for b in orthonormal_basis(held):
        if b.shape != v.shape:
            raise LatentError(f"held direction has {b.numel()} dims, the target {v.numel()}")
        v = v - (v @ b) * b
    if float(v.norm()) <= 1e-6 * float(direction.double().norm()):
        raise LatentError("the direction lies in the span of the held directions: nothing is left to edit along")
    return v.to(direction.dtype).reshape(direction.shape)
