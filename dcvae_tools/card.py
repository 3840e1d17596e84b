"""Hub model cards (README.md with YAML metadata) for released checkpoints."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .config import ModelConfig

# What each metric measures, for the card's readers (protocols: training/metrics/metric_main.py).
METRIC_DESCRIPTIONS: dict[str, str] = {
    "recon_mse_test": "reconstruction mean squared error on the test split, pixels in [0, 1] (lower is better)",
    "recon_psnr_test": "reconstruction PSNR on the test split, dB (higher is better)",
    "fd10k_classifier": "Frechet distance of 10k prior samples to the training images in the features of a "
    "classifier trained on the dataset (lower is better)",
    "fd10k_lite0": "Frechet distance of 10k prior samples to the training images, EfficientNet-Lite0 features "
    "(lower is better)",
    "rfd_classifier": "Frechet distance of the test reconstructions to the test images, classifier features "
    "(lower is better)",
    "rfd_lite0": "Frechet distance of the test reconstructions to the test images, EfficientNet-Lite0 features "
    "(lower is better)",
    "probe_linear_test": "test accuracy of a linear classifier on the encoder's latent means (higher is better)",
    "probe_pixels_test": "the same linear probe on raw pixels, for comparison",
    "latent_kl_test": "KL from N(0, I) of the test images' aggregate posterior, per latent dimension (lower means "
    "the latents sit where samples are drawn)",
}
EDIT_DESCRIPTION = (
    "share of held-out images without the attribute that the classifier assigns to it after the edit "
    "(strength in the evaluation report; higher is better)"
)


def _yaml_value(value: Any) -> str:
    return json.dumps(value)  # JSON scalars and lists are valid YAML flow values


def _describe(metric: str) -> str:
    if metric.startswith("edit_success_"):
        return EDIT_DESCRIPTION
    return METRIC_DESCRIPTIONS.get(metric, "")


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def render_model_card(
    config: ModelConfig,
    attributes: Mapping[str, Any] | None = None,
    repo_id: str | None = None,
    extra_markdown: str = "",
) -> str:
    """A model card whose numbers all come from ``config.metrics`` (written by the evaluation command)."""
    tags = ["dcvae", "vae", "gan", "contrastive-learning", "image-generation", "pytorch", "safetensors"]
    lines = ["---", "library_name: dcvae-tools", "license: apache-2.0", f"tags: {_yaml_value(tags)}"]
    if config.dataset:
        lines.append(f"datasets: {_yaml_value([config.dataset])}")
    if config.metrics:
        lines.append("model-index:")
        lines.append(f"- name: {_yaml_value(repo_id or config.preset or config.architecture)}")
        lines.append("  results:")
        lines.append("  - task: {type: image-generation}")
        if config.dataset:
            lines.append(f"    dataset: {{name: {_yaml_value(config.dataset)}, type: {_yaml_value(config.dataset)}}}")
        lines.append("    metrics:")
        for name, value in sorted(config.metrics.items()):
            if isinstance(value, int | float):
                lines.append(f"    - {{type: {_yaml_value(name)}, value: {value}}}")
    lines += ["---", ""]
    name = repo_id or config.preset
    title = name or f"DC-VAE {config.architecture} ({config.dataset or 'custom data'})"
    lines += [f"# {title}", ""]
    if config.description:
        lines += [config.description, ""]
    lines += [
        "A DC-VAE (Dual Contradistinctive Generative Autoencoder, Parmar et al., CVPR 2021) checkpoint for "
        "[dcvae-tools](https://pypi.org/project/dcvae-tools/): encode images, reconstruct, sample, "
        "interpolate, mix latents and edit attributes.",
        "",
        "| | |",
        "|---|---|",
        f"| architecture | `{config.architecture}` {json.dumps(config.architecture_args)} |",
        f"| images | {config.image_size}x{config.image_size}, {config.channels} channel(s)"
        + (
            f", content {config.content_size}x{config.content_size} padded"
            if config.content_size != config.image_size
            else ""
        )
        + " |",
        f"| latent size | {config.latent_dim} |",
        f"| training data | {config.dataset or 'unknown'} |",
        f"| training preset | `{config.preset or 'unknown'}` (`dcvae-train train --preset {config.preset}`) |",
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
        for attr_name, attr in sorted(attributes.items()):
            rule = str(getattr(attr, "metadata", {}).get("rule", ""))
            lines.append(f"| `{attr_name}` | {attr.num_positive} | {attr.num_negative} | {rule} |")
        lines.append("")
    lines += [
        "## Use",
        "",
        "```python",
        "from dcvae_tools import load_model",
        f"model = load_model({json.dumps(name or 'PATH_OR_NAME')})",
        "recon = model.reconstruct(['image.png'])",
    ]
    if attributes:
        first = sorted(attributes)[0]
        lines.append(f"edited = model.edit(model.encode(['image.png']), {{{json.dumps(first)}: 1.5}})")
    lines += ["```", ""]
    if extra_markdown:
        lines += [extra_markdown, ""]
    return "\n".join(lines)
