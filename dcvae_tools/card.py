"""Hub model cards (README.md with YAML metadata) for released checkpoints."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .config import ModelConfig


def _yaml_value(value: Any) -> str:
    return json.dumps(value)  # JSON scalars and lists are valid YAML flow values


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
            lines.append(
                f"    dataset: {{name: {_yaml_value(config.dataset)}, type: {_yaml_value(config.dataset)}}}"
            )
        lines.append("    metrics:")
        for name, value in sorted(config.metrics.items()):
            if isinstance(value, int | float):
                lines.append(f"    - {{type: {_yaml_value(name)}, value: {value}}}")
    lines += ["---", ""]
    title = repo_id or f"DC-VAE {config.architecture} ({config.dataset or 'custom data'})"
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
        lines += ["## Measured quality", "", "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in sorted(config.metrics.items())]
        lines += ["", "Every number above was written by `dcvae-train eval` on this checkpoint.", ""]
    if attributes:
        lines += ["## Attribute directions", "", "| name | positives | negatives |", "|---|---|---|"]
        for name, attr in sorted(attributes.items()):
            lines.append(f"| `{name}` | {attr.num_positive} | {attr.num_negative} |")
        lines.append("")
    lines += [
        "## Use",
        "",
        "```python",
        "from dcvae_tools import load_model",
        f"model = load_model({json.dumps(repo_id or 'PATH_OR_NAME')})",
        "recon = model.reconstruct(['photo.png'])",
        "```",
        "",
    ]
    if extra_markdown:
        lines += [extra_markdown, ""]
    return "\n".join(lines)
