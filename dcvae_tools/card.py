"""Hub model cards (README.md with YAML metadata) for released checkpoints."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from .config import ModelConfig

SAMPLE_METRICS = frozenset({"fd10k_classifier", "fd10k_lite0", "fid50k_inception", "sample_class_entropy10k"})
"""Metrics of the card's table measured on prior samples (drawn from N(0, I) for a release's config)."""

# What each metric measures, for the card's readers (protocols: training/metrics/metric_main.py).
METRIC_DESCRIPTIONS: dict[str, str] = {
    "recon_mse_test": "reconstruction mean squared error on the test split, pixels in [0, 1] (lower is better)",
    "recon_psnr_test": "reconstruction PSNR on the test split, dB (higher is better)",
    "fd10k_classifier": "Frechet distance of 10k samples to the training images in the features of a classifier "
    "trained on the dataset, latents from N(0, I) clamped to [-1, 1] as in the paper (lower is better)",
    "fd10k_lite0": "Frechet distance of 10k samples (N(0, I), clamped as in the paper) to the training images, "
    "EfficientNet-Lite0 features (lower is better)",
    "rfd_classifier": "Frechet distance of the test reconstructions to the test images, classifier features "
    "(lower is better)",
    "rfd_lite0": "Frechet distance of the test reconstructions to the test images, EfficientNet-Lite0 features "
    "(lower is better)",
    "probe_linear_test": "test accuracy of a linear classifier on the encoder's latent means (higher is better)",
    "probe_pixels_test": "the same linear probe on raw pixels, for comparison",
    "latent_kl_test": "KL from N(0, I) of the test images' aggregate posterior, per latent dimension (lower means "
    "the latents sit where samples are drawn)",
    "recon_class_agreement_test": "share of test images whose reconstruction the classifier puts in the same class as "
    "the image itself (higher is better)",
    "sample_class_entropy10k": "entropy of the classifier's classes over 10k samples (N(0, I), clamped as in the "
    "paper), divided by its maximum (1 = every class equally often)",
}
EDIT_DESCRIPTION = (
    "share of held-out images without the attribute that the classifier assigns to it after the edit "
    "(strength in the evaluation report; higher is better)"
)


GENERATED_MARKER = (
    "A DC-VAE (Dual Contradistinctive Generative Autoencoder, Parmar et al., CVPR 2021) checkpoint for "
    "[dcvae-tools](https://pypi.org/project/dcvae-tools/): encode images, reconstruct, sample, "
    "interpolate, mix latents and edit attributes."
)
"""The line every generated card has; tools that redraw a card (``dcvae-train latent-stats``) leave cards without it
alone."""


# Short names of the metrics in the card's model-index (the Hub shows them on the model page).
METRIC_NAMES: dict[str, str] = {
    "recon_mse_test": "Reconstruction MSE (test)",
    "recon_psnr_test": "Reconstruction PSNR (test)",
    "fd10k_classifier": "Sample FD, 10k samples (classifier features)",
    "fd10k_lite0": "Sample FD, 10k samples (EfficientNet-Lite0 features)",
    "rfd_classifier": "Reconstruction FD (classifier features)",
    "rfd_lite0": "Reconstruction FD (EfficientNet-Lite0 features)",
    "probe_linear_test": "Linear probe accuracy on latents (test)",
    "probe_pixels_test": "Linear probe accuracy on pixels (test)",
    "latent_kl_test": "Aggregate posterior KL per dimension (test)",
    "recon_class_agreement_test": "Reconstruction class agreement (test)",
    "sample_class_entropy10k": "Class entropy of 10k samples (normalised)",
}
TAGS = (
    "dc-vae",
    "vae",
    "gan",
    "contrastive-learning",
    "image-generation",
    "latent-editing",
    "pytorch",
    "safetensors",
)
PIPELINE_TAG = "unconditional-image-generation"


def _yaml_value(value: Any) -> str:
    return json.dumps(value)  # JSON scalars and lists are valid YAML flow values


def _metric_name(metric: str) -> str:
    if metric.startswith("edit_success_"):
        return f"Edit success: {metric.removeprefix('edit_success_')}"
    return METRIC_NAMES.get(metric, metric)


def _index_metrics(metrics: Mapping[str, Any]) -> list[tuple[str, float | int]]:
    """The metrics a model-index can carry: finite numbers (not booleans), by name."""
    return [
        (name, value)
        for name, value in sorted(metrics.items())
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    ]


def front_matter(config: ModelConfig, repo_id: str | None = None) -> list[str]:
    """The card's YAML metadata block, as lines: license, library, pipeline tag, tags, datasets and a
    ``model-index`` with the config's metrics on its dataset (left out when the dataset is unknown)."""
    lines = [
        "---",
        "license: apache-2.0",
        "library_name: dcvae-tools",
        f"pipeline_tag: {PIPELINE_TAG}",
        f"tags: {_yaml_value(list(TAGS))}",
    ]
    if config.dataset:
        lines.append(f"datasets: {_yaml_value([config.dataset])}")
    metrics = _index_metrics(config.metrics)
    if metrics and config.dataset:
        lines += [
            "model-index:",
            f"- name: {_yaml_value(repo_id or config.preset or config.architecture)}",
            "  results:",
            "  - task:",
            f"      type: {PIPELINE_TAG}",
            "      name: Unconditional Image Generation",
            "    dataset:",
            f"      name: {_yaml_value(config.dataset)}",
            f"      type: {_yaml_value(config.dataset)}",
            "    metrics:",
        ]
        for name, value in metrics:
            lines += [
                f"    - name: {_yaml_value(_metric_name(name))}",
                f"      type: {_yaml_value(name)}",
                f"      value: {_yaml_value(value)}",
            ]
    return [*lines, "---", ""]


def _describe(metric: str) -> str:
    if metric.startswith("edit_success_"):
        return EDIT_DESCRIPTION
    return METRIC_DESCRIPTIONS.get(metric, "")


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def _loadable_name(repo_id: str | None, preset: str | None) -> str:
    """What the card's example passes to ``load_model``: the Hub repo, the preset when a released model has that
    name, else a placeholder for the folder (a preset like ``tiny`` names no model ``load_model`` can find)."""
    if repo_id:
        return repo_id
    if preset:
        from .manifest import load_manifest

        if load_manifest().get(preset) is not None:
            return preset
    return "path/to/this/folder"


def render_model_card(
    config: ModelConfig,
    attributes: Mapping[str, Any] | None = None,
    repo_id: str | None = None,
    extra_markdown: str = "",
    latent_prior: Any = None,
) -> str:
    """A model card whose numbers all come from ``config.metrics`` (written by the evaluation command); with
    ``latent_prior`` (a :class:`dcvae_tools.prior.LatentPrior`) it says where samples come from."""
    lines = front_matter(config, repo_id)
    name = repo_id or config.preset
    title = name or f"DC-VAE {config.architecture} ({config.dataset or 'custom data'})"
    lines += [f"# {title}", ""]
    if config.description:
        lines += [config.description, ""]
    lines += [
        GENERATED_MARKER,
        "",
        "| | |",
        "|---|---|",
        f"| architecture | `{config.architecture}` {json.dumps(config.architecture_args, sort_keys=True)} |",
        f"| images | {config.image_size}x{config.image_size}, {config.channels} channel(s)"
        + (
            f", content {config.content_size}x{config.content_size} padded"
            if config.content_size != config.image_size
            else ""
        )
        + " |",
        f"| latent size | {config.latent_dim} |",
        f"| training data | {config.dataset or 'unknown'} |",
        f"| training preset | `{config.preset or 'unknown'}` (the recipe its training started from, as "
        "`dcvae-train presets` describes it; a run may change options from it) |",
        "",
    ]
    if config.metrics:
        lines += ["## Measured quality", "", "| metric | value | what it measures |", "|---|---:|---|"]
        lines += [f"| `{k}` | {_format_value(v)} | {_describe(k)} |" for k, v in sorted(config.metrics.items())]
        lines += ["", "Every number above was written by `dcvae-train eval` on this checkpoint.", ""]
    if attributes:
        lines += [
            "## Attribute directions",
            "",
            "Each is the mean latent of the positive training images minus that of the negative ones (the "
            "paper's recipe); the indices used are in the attribute's metadata.",
            "",
            "| name | positives | negatives | chosen as |",
            "|---|---:|---:|---|",
        ]
        components = []
        for attr_name, attr in sorted(attributes.items()):
            meta = getattr(attr, "metadata", {}) or {}
            if meta.get("method") == "pca":
                components.append(attr_name)
                continue
            lines.append(f"| `{attr_name}` | {attr.num_positive} | {attr.num_negative} | {meta.get('rule', '')} |")
        lines.append("")
        if components:
            lines += [
                f"Also shipped: the principal directions {', '.join(f'`{c}`' for c in components)} of the training "
                "latents (unsupervised, each one standard deviation long). Edit strengths are in standard deviations "
                "of the training latents along each direction unless `unit=\"raw\"` is passed.",
                "",
            ]
    if latent_prior is not None:
        meta = latent_prior.metadata
        split = "training" if meta.get("split", "train") == "train" else f"{meta['split']}-split"
        fitted_to = (f"{meta['count']:,} {meta.get('dataset') or ''} {split} images".replace("  ", " ")
                     if isinstance(meta.get("count"), int) else "the training images")
        sampled_metrics = any(k in SAMPLE_METRICS for k in config.metrics)
        restarts = latent_prior.restarts
        by_em = f"by EM (the most likely of {restarts} starts)" if restarts > 1 else "by EM"
        lines += [
            "## Sampling",
            "",
            f"`model.sample(n)` and `dcvae sample` draw latents from `latent_prior.safetensors`: a mixture of "
            f"{latent_prior.components} full-covariance Gaussians fitted {by_em} to the latents of {fitted_to} (one "
            "posterior draw each), where the decoder was trained. `prior=\"standard\"` (`--prior standard`) draws "
            "the paper's N(0, I), clamped to the config's `sample_clamp`."
            + (" The sample metrics in the table above follow the paper (N(0, I)); `dcvae-train eval --sample-prior "
               "mixture` measures samples of the shipped prior." if sampled_metrics else ""),
            "",
        ]
    lines += [
        "## Use",
        "",
        "```python",
        "from dcvae_tools import load_model",
        f"model = load_model({json.dumps(_loadable_name(repo_id, config.preset))})",
        "recon = model.reconstruct(['image.png'])",
    ]
    if latent_prior is not None:
        lines.append("samples = model.sample(16, seed=0)")
    if attributes:
        first = sorted(attributes)[0]
        lines.append(f"edited = model.edit(model.encode(['image.png']), {{{json.dumps(first)}: 1.5}})")
    lines += ["```", ""]
    if extra_markdown:
        lines += [extra_markdown, ""]
    return "\n".join(lines)
