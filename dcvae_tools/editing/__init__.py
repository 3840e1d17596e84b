"""Latent editing beyond the paper's mean differences.

- :mod:`.stats`: a model's latent statistics (``latent_stats.safetensors``): mean, covariance, held-out quantiles.
- :mod:`.units`: strength units (``"std"``: one standard deviation along the direction; ``"raw"``: the paper's).
- :mod:`.boundary`: supervised directions, a logistic-regression boundary's normal (InterFaceGAN).
- :mod:`.pca`: unsupervised directions, principal components of the training latents (GANSpace).
- :mod:`.conditional`: edits that hold other directions fixed (InterFaceGAN's conditional manipulation).
- :mod:`.domain`: the out-of-domain check and its warning.
- :mod:`.refine`: refined inversion, latents optimised from the posterior mean (``refine_latents``).

Names are imported lazily (``from dcvae_tools.editing import fit_boundary``) so importing the package costs nothing.
A name here is never also a submodule's: ``dcvae_tools.editing.boundary`` is always the module, whose direction for a
model is ``boundary_direction`` (what ``model.boundary`` calls).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "LatentStats": ".stats",
    "LATENT_STATS_NAME": ".stats",
    "compute_latent_stats": ".stats",
    "load_latent_stats": ".stats",
    "save_latent_stats": ".stats",
    "Boundary": ".boundary",
    "fit_boundary": ".boundary",
    "boundary_direction": ".api",
    "principal_directions": ".pca",
    "draw_components": ".pca",
    "project_out": ".conditional",
    "orthonormal_basis": ".conditional",
    "OutOfDomainWarning": ".domain",
    "DomainReport": ".domain",
    "domain_report": ".domain",
    "domain_measures": ".api",
    "unit_metadata": ".units",
    "FarEditWarning": ".units",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        try:  # the refinement module, where present (dcvae_tools/editing/refine.py)
            refine = importlib.import_module(".refine", __name__)
        except ImportError:
            refine = None
        if refine is not None and name in getattr(refine, "__all__", ()):
            return getattr(refine, name)
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module, __name__), name)


__all__ = sorted(_EXPORTS)
