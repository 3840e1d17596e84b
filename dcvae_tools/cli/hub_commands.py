"""Commands about checkpoints: ``dcvae models``, ``dcvae download`` and ``dcvae info``."""

from pathlib import Path
from typing import Annotated, Any

import typer

from ._app import _examples, app
from ._options import (
    CacheDirOpt,
    DebugOpt,
    JsonOpt,
    ModelOpt,
    OfflineOpt,
    QuietOpt,
    RevisionOpt,
    _load,
)
from ._output import session


def _human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"  # pragma: no cover


def _format_metrics(metrics: dict[str, Any]) -> str:
    """Every metric, ``name value`` (4 significant digits), comma-separated; a sample metric says its samples came
    from N(0, I), the paper's protocol, since the model's own sampler may draw from a fitted prior instead."""
    from dcvae_tools.card import SAMPLE_METRICS

    def one(key: str, value: Any) -> str:
        text = f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}"
        return text + (" (N(0, I) samples as in the paper)" if key in SAMPLE_METRICS else "")

    return ", ".join(one(key, value) for key, value in metrics.items())


@app.command(
    short_help="List the released models and whether this machine has them.",
    epilog=_examples("dcvae models", "dcvae models --json"),
)
def models(
    cache_dir: CacheDirOpt = None, json_: JsonOpt = False, quiet: QuietOpt = False, debug: DebugOpt = False
) -> None:
    """List the released models: where each comes from and whether this machine has it.

    For each checkpoint in weights_manifest.json: data set, image size, latent size, whether it is
    bundled with this installation, whether it is published on the Hub (repo and pinned revision), whether
    this machine has it already (bundled or cached), and its metrics. Piped output is tab-separated text;
    --json gives everything.
    """
    with session(quiet=quiet, json_mode=json_, debug=debug) as out:
        from huggingface_hub import try_to_load_from_cache

        from dcvae_tools.manifest import TRAINING_STATE_NAME, load_manifest

        manifest = load_manifest()
        entries = []
        for entry in manifest.models.values():
            bundled = entry.bundled and entry.bundled_dir.is_dir()
            if bundled:
                cached = True
            elif entry.revision is None:
                cached = False
            else:
                cached = all(
                    isinstance(
                        try_to_load_from_cache(entry.repo_id, filename, cache_dir=cache_dir, revision=entry.revision),
                        str,
                    )
                    for filename in entry.files
                    if filename != TRAINING_STATE_NAME  # only training downloads it
                )
            entries.append(
                {
                    "name": entry.name,
                    "default": entry.name == manifest.default_model,
                    "dataset": entry.dataset,
                    "resolution": entry.resolution,
                    "channels": entry.channels,
                    "latent_dim": entry.latent_dim,
                    "architecture": entry.architecture,
                    "preset": entry.preset,
                    "location": "bundled" if bundled else "hub",
                    "repo_id": entry.repo_id,
                    "revision": entry.revision,
                    "published": entry.revision is not None,
                    "cached": cached,
                    "metrics": entry.metrics,
                    "description": entry.description,
                }
            )
        out.data({"default_model": manifest.default_model, "models": entries})
        if not entries:
            out.result(
                "This version of dcvae-tools lists no released models yet; load a local folder or a "
                "Hub repo with --model."
            )
            return
        rows = []
        for e in entries:
            name = f"{e['name']} (default)" if e["default"] else e["name"]
            size = f"{e['resolution']}x{e['resolution']} {'grey' if e['channels'] == 1 else 'RGB'}"
            hub = f"{e['repo_id']}@{e['revision'][:7]}" if e["published"] else "no"
            rows.append([
                name, e["dataset"], size, str(e["latent_dim"]), "yes" if e["location"] == "bundled" else "no", hub,
                "yes" if e["cached"] else "no", _format_metrics(e["metrics"]),
            ])
        columns = ["name", "data", "size", "latent", "bundled", "Hub", "here", "metrics"]
        if out.stdout.is_terminal:  # the metrics are long: one line each under the table
            out.table(columns[:-1], [row[:-1] for row in rows])
            for e in entries:
                out.result(f"{e['name']}: {_format_metrics(e['metrics']) or 'no metrics recorded'}")
        else:
            out.table(columns, rows)


@app.command(
    epilog=_examples(
        "dcvae download fashion-mnist-32",
        "dcvae download someone/dcvae-celeba --revision v1.0",
        'cd "$(dcvae download -q fashion-mnist-32)"',
    )
)
def download(
    name_or_repo: Annotated[str, typer.Argument(metavar="NAME_OR_REPO", help="Released model name or Hub repo id.")],
    revision: RevisionOpt = None,
    cache_dir: CacheDirOpt = None,
    offline: OfflineOpt = False,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Download and verify a checkpoint; print its folder.

    Every file is checked against its sha256 (from weights_manifest.json for released models, from the
    Hub's content hashes for other repos) and the checkpoint is loaded once to make sure it works. The
    folder is printed on stdout; later commands (and --offline) use the cached copy. A local folder is
    loaded too, and called verified only if its files match a released model's.
    """
    with session(quiet=quiet, json_mode=json_, debug=debug) as out:
        out.info(f"loading and verifying {name_or_repo} ...")
        model = _load(name_or_repo, revision=revision, device="cpu", offline=offline, cache_dir=cache_dir)
        source = model.source
        # a local folder is accepted as -m takes it, but only files matching a released model count as verified
        # (released and Hub files were hashed while loading: no second pass over them)
        verified, how = _verification(source, _files(source.folder) if source.source == "local" else [])
        out.data(
            {
                "name": source.name,
                "source": source.source,
                "revision": source.revision,
                "folder": str(source.folder),
                "verified": verified,
            }
        )
        at = f" at revision {source.revision}" if source.revision else ""
        if verified:
            out.info(f"verified {source.name}{at} ({source.source})")
        else:
            out.info(f"loaded {source.name} ({source.source}), not verified: {how}")
        out.result(str(source.folder))


def _files(folder: Path) -> list[dict[str, Any]]:
    """The checkpoint folder's files with their size and sha256 (hidden files left out)."""
    from dcvae_tools.io_utils import sha256_file

    return [
        {"name": p.name, "size": p.stat().st_size, "sha256": sha256_file(p)}
        for p in sorted(Path(folder).resolve().iterdir())
        if p.is_file() and not p.name.startswith(".")
    ]


def _verification(source: Any, files: list[dict[str, Any]]) -> tuple[bool, str]:
    """How the loaded files were checked: against the manifest, the Hub's hashes, or not at all."""
    from dcvae_tools.manifest import TRAINING_STATE_NAME, load_manifest

    manifest = load_manifest()
    if source.source == "bundled" or (source.source == "hub" and manifest.get(source.name) is not None):
        return True, "every file's sha256 matches weights_manifest.json"
    if source.source == "hub":
        return True, "every file matches the content hash the Hub announced"
    have = {f["name"]: f["sha256"] for f in files}
    for entry in manifest.models.values():
        released = {name: f for name, f in entry.files.items() if name != TRAINING_STATE_NAME}
        if released and all(have.get(name) == f.sha256 for name, f in released.items()):
            return True, f"a local folder whose files match released model {entry.name!r}"
    return False, "a local folder: nothing to compare its files against"


@app.command(
    epilog=_examples(
        "dcvae info",
        "dcvae info mnist-32",
        "dcvae info ./checkpoints/my-run",
        "dcvae info someone/dcvae-celeba --offline --json",
    )
)
def info(
    name_or_repo: Annotated[
        str | None,
        typer.Argument(
            metavar="NAME|REPO|PATH",
            show_default=False,
            help="The checkpoint to describe, as for -m (default: the default model).",
        ),
    ] = None,
    model: ModelOpt = None,
    revision: RevisionOpt = None,
    offline: OfflineOpt = False,
    cache_dir: CacheDirOpt = None,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Show a checkpoint's config, attributes and files.

    Prints where the checkpoint was loaded from, how its files were verified, its config (architecture,
    image and latent size, sampling clamp, data set, metrics), the attribute directions it ships and
    every file with its size and sha256.
    """
    with session(quiet=quiet, json_mode=json_, debug=debug) as out:
        if name_or_repo is not None and model is not None and name_or_repo != model:
            raise typer.BadParameter(
                f"{name_or_repo!r} and -m {model!r} name two checkpoints: give one of them",
                param_hint="NAME|REPO|PATH",
            )
        model = name_or_repo if name_or_repo is not None else model
        loaded = _load(model, revision=revision, device="cpu", offline=offline, cache_dir=cache_dir)
        source = loaded.source
        folder = Path(source.folder).resolve()
        files = _files(folder)
        verified, how = _verification(source, files)
        config = loaded.config
        attributes = [
            {
                "name": a.name,
                "num_positive": a.num_positive,
                "num_negative": a.num_negative,
                "normalized": a.normalized,
                "norm": round(float(a.direction.norm()), 6),
                "method": a.metadata.get("method", "mean difference"),
                # one strength unit (std): the training latents' standard deviation along the direction
                "std": (round(float(a.metadata["unit"]["std"]), 6)
                        if isinstance(a.metadata.get("unit"), dict) and "std" in a.metadata["unit"] else None),
            }
            for a in sorted(loaded.attributes.values(), key=lambda a: a.name)
        ]
        stats = loaded.latent_stats
        latent_stats = None if stats is None else {
            "domain": stats.domain,
            "train_count": stats.metadata.get("count"),
            "reference_count": stats.metadata.get("reference_count"),
            "mahalanobis_median": round(stats.quantile("mahalanobis", 0.5), 4),
            "mahalanobis_max": round(stats.quantile("mahalanobis", 1.0), 4),
            "recon_error_median": round(stats.quantile("recon_error", 0.5), 6),
            "recon_error_max": round(stats.quantile("recon_error", 1.0), 6),
            "cycle_median": round(stats.quantile("cycle", 0.5), 4),
            "cycle_max": round(stats.quantile("cycle", 1.0), 4),
            "far_score_limit": round(stats.far_score_limit_value, 4),
            "far_level": stats.metadata.get("far_level"),
        }
        prior = loaded.latent_prior
        latent_prior = None if prior is None else {
            "components": prior.components,
            # from the file's free-form metadata: only well-typed values (NaN would make the JSON invalid)
            "train_count": prior.metadata["count"] if type(prior.metadata.get("count")) is int else None,
            "dataset": prior.metadata["dataset"] if isinstance(prior.metadata.get("dataset"), str) else None,
        }
        parameters = {
            "encoder": sum(p.numel() for p in loaded.encoder.parameters()),
            "decoder": sum(p.numel() for p in loaded.decoder.parameters()),
        }
        out.data(
            {
                "name": source.name,
                "source": source.source,
                "revision": source.revision,
                "folder": str(folder),
                "verified": verified,
                "verification": how,
                "config": config.to_dict(),
                "parameters": parameters,
                # what latents and attribute files record of the model that made them
                "weights_sha256": loaded.weights_sha256(),
                "attributes": attributes,
                "latent_stats": latent_stats,
                "latent_prior": latent_prior,
                "files": files,
            }
        )
        at = f", revision {source.revision}" if source.revision else ""
        args = ", ".join(f"{k}={v}" for k, v in sorted(config.architecture_args.items()))
        colour = "grey" if config.channels == 1 else "RGB"
        content = (
            f", content {config.content_size}x{config.content_size}" if config.content_size != config.image_size else ""
        )
        lines = [
            f"{source.name}  ({source.source}{at})",
            f"  folder        {folder}",
            f"  verified      {'yes' if verified else 'no'}: {how}",
            f"  architecture  {config.architecture}" + (f" ({args})" if args else ""),
            f"  images        {config.image_size}x{config.image_size} {colour}{content}",
            f"  latent dim    {config.latent_dim}",
            "  samples from  " + (f"a fitted mixture of {prior.components} Gaussians (latent_prior.safetensors; "
                                  "--prior standard for N(0, I))" if prior is not None else "N(0, I)"),
            "  sample clamp  " + (f"N(0, I) draws clipped to [-{config.sample_clamp:g}, {config.sample_clamp:g}]"
                                  if config.sample_clamp is not None else "none: N(0, I) draws are not clipped")
            + (" (the mixture's are not)" if prior is not None and config.sample_clamp is not None else ""),
            f"  parameters    encoder {parameters['encoder']:,}, decoder {parameters['decoder']:,}",
            f"  weights hash  {loaded.weights_sha256()} (recorded in the latents and directions it makes)",
        ]
        for key in ("dataset", "preset", "description"):
            if getattr(config, key):
                lines.append(f"  {key:<13} {getattr(config, key)}")
        if config.metrics:
            lines.append(f"  metrics       {_format_metrics(config.metrics)}")
        lines.append(f"attributes ({len(attributes)})" + ("" if attributes else ": none shipped"))
        for a in attributes:
            lines.append(
                f"  {a['name']:<20} "
                + ("principal direction" if a["method"] == "pca"
                   else f"{a['num_positive']} positive / {a['num_negative']} negative")
                + f"{', normalized' if a['normalized'] else ''}, norm {a['norm']:.4g}"
                + (f", 1 std = {a['std']:.4g}" if a["std"] is not None else "")
                + (f" ({a['method']})" if a["method"] not in ("mean difference", "pca") else "")
            )
        if latent_stats is not None:
            ls = latent_stats
            lines.append(
                f"latent statistics: {ls['domain']}; {ls['train_count']} training latents; held-out "
                f"{ls['reference_count']} images: Mahalanobis distance median {ls['mahalanobis_median']:.3g}, max "
                f"{ls['mahalanobis_max']:.3g}; reconstruction error median {ls['recon_error_median']:.3g}, max "
                f"{ls['recon_error_max']:.3g}; re-encoding distance median {ls['cycle_median']:.3g}, max "
                f"{ls['cycle_max']:.3g}; an input is far outside the domain when Fisher's combination of the three "
                f"measures' p-values (-2 sum log p) exceeds {ls['far_score_limit']:.3g}"
            )
        lines.append("files")
        for f in files:
            lines.append(f"  {f['name']:<24} {_human_size(f['size']):>9}  sha256 {f['sha256']}")
        out.result("\n".join(lines))
