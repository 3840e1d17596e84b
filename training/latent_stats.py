"""Latent statistics, strength units and principal components of a release, from its training data.

``dcvae-train latent-stats RELEASE`` (see :func:`regenerate`) writes into a release folder:

- ``latent_stats.safetensors``: mean and covariance of the posterior means of the model's training split, the
  quantiles of the test split's Mahalanobis distance, cycle distance (re-encoding the reconstruction) and
  reconstruction error, and the out-of-domain check's limit (see :mod:`dcvae_tools.editing.stats`);
- ``latent_prior.safetensors``: a full-covariance Gaussian mixture fitted by EM to one posterior draw of each
  training image, which ``model.sample`` and ``dcvae sample`` draw from (see :mod:`dcvae_tools.prior`);
- in ``attributes.safetensors``: each direction's strength unit (``metadata["unit"]``: the standard deviation of the
  training latents along it and its length), and the first ten principal components as ``pc01`` .. ``pc10``.

It is the one command that regenerates every editing artefact a release ships; run it again after retraining.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from dcvae_tools.editing.pca import principal_directions
from dcvae_tools.editing.stats import LatentStats, compute_latent_stats
from dcvae_tools.editing.units import unit_metadata
from dcvae_tools.model import DCVAE, AttributeVector
from dcvae_tools.prior import LatentPrior

from .latent_prior import DEFAULT_COMPONENTS, DEFAULT_RESTARTS, fit_latent_prior, posterior_draws
from .metrics.common import split_tensors

DOMAINS = {
    "fashion-mnist": "28x28 grey Fashion-MNIST garments (clothes, shoes and bags, centred on black)",
    "mnist5k": "28x28 grey handwritten MNIST digits (white on black)",
    "mnist": "28x28 grey handwritten MNIST digits (white on black)",
}
NUM_COMPONENTS = 10


def posterior_in_chunks(model: DCVAE, images: torch.Tensor, batch_size: int = 1024
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior means and log-variances [N, D] (on the CPU) of model-format ``images``, in chunks."""
    parts = [model.posterior(images[i : i + batch_size], batch_size=256) for i in range(0, len(images), batch_size)]
    return torch.cat([mu.cpu() for mu, _ in parts]), torch.cat([logvar.cpu() for _, logvar in parts])


def reference_measures(model: DCVAE, images: torch.Tensor, batch_size: int = 1024
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Posterior means [N, D], reconstruction errors [N] and cycle distances [N] of model-format ``images``, in
    chunks: the held-out measures the out-of-domain check compares inputs with."""
    from dcvae_tools.editing.api import domain_measures

    parts = []
    with torch.inference_mode():
        for i in range(0, len(images), batch_size):
            z, errors, cycle = domain_measures(model, images[i : i + batch_size])
            parts.append((z.cpu(), errors, cycle))
    return tuple(torch.cat([p[k] for p in parts]) for k in range(3))  # type: ignore[return-value]


def stats_metadata(model: DCVAE) -> dict[str, Any]:
    """The provenance recorded with a model's latent statistics."""
    dataset = model.config.dataset
    return {
        "dataset": dataset,
        "split": "train",
        "latents": "posterior mean",
        "reference_split": "test",
        "recon_error": "per-image MSE on the [0, 1] scale over the content region",
        "cycle": "distance between the posterior mean and the posterior mean of its reconstruction",
        "domain": DOMAINS.get(dataset or "", f"{dataset} images"),
    }


def model_latent_stats(model: DCVAE, data_root: str | None = None,
                       prior_components: int = DEFAULT_COMPONENTS,
                       prior_restarts: int = DEFAULT_RESTARTS) -> tuple[LatentStats, LatentPrior]:
    """Statistics of ``model`` on its dataset (training-split latents, test-split reference quantiles and the
    out-of-domain limit) and its latent prior (a ``prior_components``-component mixture fitted to one posterior
    draw of each training image, the best of ``prior_restarts`` EM starts)."""
    c = model.config
    if not c.dataset:
        raise ValueError("the model's config names no dataset; latent statistics need its training data")
    train, _ = split_tensors(c.dataset, "train", c.image_size, c.channels, data_root, None, c.content_size)
    test, _ = split_tensors(c.dataset, "test", c.image_size, c.channels, data_root, None, c.content_size)
    with torch.inference_mode():
        mu_train, logvar_train = posterior_in_chunks(model, train)
    z_test, errors, cycle = reference_measures(model, test)
    stats = compute_latent_stats(mu_train, z_test, errors, cycle, stats_metadata(model))
    prior = fit_latent_prior(posterior_draws(mu_train, logvar_train), prior_components, restarts=prior_restarts,
                             metadata={"dataset": c.dataset, "split": "train",
                                       "latents": "one posterior draw per image (seed 0)"})
    return stats, prior


def with_units_and_components(
    attributes: dict[str, AttributeVector], stats: LatentStats, num_components: int = NUM_COMPONENTS
) -> dict[str, AttributeVector]:
    """The attributes with their strength units recorded, plus ``pc01`` .. the principal components (any
    earlier ``pcNN`` entries replaced)."""
    out = {}
    for name, vector in attributes.items():
        if vector.metadata.get("method") == "pca":
            continue
        meta = {**vector.metadata, "unit": unit_metadata(vector.direction, stats)}
        out[name] = AttributeVector(name, vector.direction, vector.num_positive, vector.num_negative,
                                    vector.normalized, meta)
    out.update(principal_directions(stats, num_components))
    return out


def _old_prior(folder: Path, model: DCVAE) -> LatentPrior | None:
    """The folder's current latent prior if it reads (a card generated with it lists it), else None."""
    from dcvae_tools.errors import ConfigError
    from dcvae_tools.prior import LATENT_PRIOR_NAME, load_latent_prior

    try:
        return load_latent_prior(folder / LATENT_PRIOR_NAME, model.config.latent_dim)
    except ConfigError:
        return None


def regenerate(folder: str | Path, data_root: str | None = None, *, figure: Path | None = None,
               prior_components: int = DEFAULT_COMPONENTS, prior_restarts: int = DEFAULT_RESTARTS,
               progress: Any = print) -> dict[str, Any]:
    """Recompute ``folder``'s latent_stats.safetensors, latent_prior.safetensors, attribute units and principal
    components (atomically, file by file) and optionally draw the principal-components figure; returns a
    summary."""
    from dcvae_tools.card import GENERATED_MARKER, render_model_card
    from dcvae_tools.editing.stats import LATENT_STATS_NAME, save_latent_stats
    from dcvae_tools.io_utils import atomic_write, atomic_write_text
    from dcvae_tools.prior import LATENT_PRIOR_NAME, save_latent_prior
    from dcvae_tools.release import ATTRIBUTES_NAME, CARD_NAME, load_release, save_attributes

    folder = Path(folder)
    model = load_release(folder, read_derived=False)  # recomputed: an old or broken file must not stop it
    progress(f"encoding the {model.config.dataset} train and test splits with {folder} ...")
    stats, prior = model_latent_stats(model, data_root, prior_components, prior_restarts)
    attributes = with_units_and_components(dict(model.attributes), stats)
    card = folder / CARD_NAME
    # A card exactly as generated lists the directions, so it is redrawn with the new ones; a card written or
    # edited by hand is left alone (with a note). Read before anything is written, so a failure changes nothing.
    old_card = card.read_text(encoding="utf-8") if card.is_file() else None
    generated = old_card in {render_model_card(model.config, model.attributes),
                             render_model_card(model.config, model.attributes, latent_prior=_old_prior(folder, model))}
    if old_card is not None and not generated:
        progress(f"{card} is not the generated card (edited by hand, or from an older dcvae-tools): left as it is; "
                 "add the new directions to it yourself" if GENERATED_MARKER in old_card else
                 f"{card} is a hand-written card: left as it is")
    with atomic_write(folder / LATENT_STATS_NAME) as tmp:
        save_latent_stats(stats, tmp)
    with atomic_write(folder / LATENT_PRIOR_NAME) as tmp:
        save_latent_prior(prior, tmp)
    save_attributes(attributes, folder / ATTRIBUTES_NAME)  # atomically
    if generated:
        atomic_write_text(card, render_model_card(model.config, attributes, latent_prior=prior))
    if figure is not None:
        from dcvae_tools.editing.pca import draw_components

        model.attributes, model.latent_stats = attributes, stats
        draw_components(model, figure)
    values, _ = stats.eigen()
    return {
        "folder": str(folder),
        "train_count": stats.metadata["count"],
        "reference_count": stats.metadata["reference_count"],
        "mahalanobis_quantiles": dict(zip(stats.quantile_levels.tolist(), stats.mahalanobis_quantiles.tolist(),
                                          strict=True)),
        "recon_error_quantiles": dict(zip(stats.quantile_levels.tolist(), stats.recon_error_quantiles.tolist(),
                                          strict=True)),
        "cycle_quantiles": dict(zip(stats.quantile_levels.tolist(), stats.cycle_quantiles.tolist(), strict=True)),
        "far_score_limit": stats.far_score_limit_value,
        "prior": {"restarts": prior.restarts,
                  **{k: prior.metadata[k] for k in ("components", "seed", "em_iterations", "mean_log_likelihood")}},
        "explained_variance_top10": (values[:NUM_COMPONENTS] / values.sum()).tolist(),
        "units": {n: a.metadata.get("unit") for n, a in attributes.items() if not n.startswith("pc")},
    }
