"""The ``dcvae`` command line: one Typer app; each command parses, calls the model API and prints.

Commands are plain functions whose shared options are declared once below (``ModelOpt``,
``DeviceOpt``, ...). torch and the model are imported inside the commands, never at module level,
so that ``dcvae --help`` does not pay for them. All printing goes through
:class:`dcvae_tools._cli_output.Output`; failures become one ``error:`` line (see
:func:`dcvae_tools._cli_output.session`). Outputs are written atomically, and commands that write
a folder of images stage them in a hidden folder first, so a failure leaves no partial output.
"""

import contextlib
import math
import os
import re
import secrets
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from dcvae_tools._cli_output import Output, debug_requested, one_line, session

if TYPE_CHECKING:  # for annotations only: the commands import these lazily
    import torch

    from dcvae_tools.model import DCVAE, AttributeVector

# ---------------------------------------------------------------------------- the app

app = typer.Typer(
    name="dcvae",
    help=(
        "Encode, reconstruct, sample, interpolate, mix and edit images with DC-VAE "
        "(Dual Contradistinctive Generative Autoencoder, CVPR 2021). "
        "Every command takes --help; models are named with -m NAME|REPO|PATH "
        "(see `dcvae models`)."
    ),
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _examples(*lines: str) -> str:
    """A command epilog listing examples, kept verbatim by the help formatter (the ``\\b`` marker)."""
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)


class Dtype(StrEnum):
    """Compute precision choices."""

    float32 = "float32"
    bfloat16 = "bfloat16"
    float16 = "float16"


# ---------------------------------------------------------------------------- shared options

ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        metavar="NAME|REPO|PATH",
        show_default="the default model",
        help="A released model name (see `dcvae models`), a Hub repo id org/name, or a checkpoint folder.",
    ),
]
RevisionOpt = Annotated[
    str | None,
    typer.Option(
        "--revision",
        metavar="REV",
        help="Hub branch, tag or commit, for repo ids (released names are pinned).",
    ),
]
DeviceOpt = Annotated[
    str | None,
    typer.Option(
        "--device",
        metavar="DEVICE",
        show_default="cuda if available, else cpu",
        help="Where to run: cpu, cuda, cuda:1, mps.",
    ),
]
DtypeOpt = Annotated[
    Dtype,
    typer.Option(
        "--dtype",
        case_sensitive=False,
        help="Compute precision; half-precision batches that overflow are redone in float32.",
    ),
]
BatchSizeOpt = Annotated[
    int | None,
    typer.Option("--batch-size", "-b", metavar="N", min=1, show_default="64", help="Images per forward pass."),
]
SeedOpt = Annotated[
    int | None,
    typer.Option(
        "--seed",
        metavar="N",
        min=0,
        show_default="random, printed",
        help="Random seed, for reproducible results.",
    ),
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No notes, progress bars or summaries.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors (also DCVAE_DEBUG=1).")]
OfflineOpt = Annotated[
    bool,
    typer.Option("--offline", help="Never touch the network; use only bundled or cached files."),
]
CacheDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--cache-dir",
        metavar="DIR",
        envvar="HF_HUB_CACHE",
        show_default="the Hugging Face cache",
        help="Where downloaded checkpoints are cached.",
    ),
]
UpscaleOpt = Annotated[
    int | None,
    typer.Option(
        "--upscale",
        metavar="N",
        min=1,
        max=16,
        show_default="1; 2 for grids of images up to 32x32",
        help="Enlarge output images N times (nearest neighbour).",
    ),
]
NrowOpt = Annotated[
    int | None,
    typer.Option("--nrow", metavar="N", min=1, show_default="square-ish", help="Images per grid row."),
]
ImagesArg = Annotated[
    list[Path],
    typer.Argument(metavar="IMAGES", help="Image files and/or folders (searched recursively)."),
]


# ---------------------------------------------------------------------------- helpers


def _usage(message: str, option: str) -> typer.BadParameter:
    """A usage error naming the option (exit status 2, with the usage line)."""
    return typer.BadParameter(message, param_hint=f"'{option}'")


def _check_image_suffix(path: Path | None, option: str, gif: bool = False) -> None:
    """Refuse an output image name whose suffix does not say the format, before any work is done."""
    if path is None:
        return
    from dcvae_tools.images import IMAGE_SUFFIXES

    allowed = (".gif",) if gif else IMAGE_SUFFIXES
    if path.suffix.lower() not in allowed:
        raise _usage(f"{path}: the file name must end in one of {', '.join(allowed)}", option)


def _check_safetensors_suffix(path: Path, option: str) -> None:
    if path.suffix.lower() != ".safetensors":
        raise _usage(f"{path}: the file name must end in .safetensors", option)


def _resolve_device(device: str | None) -> str:
    """``None`` -> cuda if available, else cpu; anything else is checked before the model is built."""
    import torch

    from dcvae_tools.errors import DCVAEError

    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        kind = torch.device(device).type
    except (RuntimeError, ValueError):
        raise DCVAEError(f"unknown device {device!r}; use cpu, cuda, cuda:N or mps") from None
    if kind == "cuda" and not torch.cuda.is_available():
        raise DCVAEError(f"--device {device}: CUDA is not available on this machine; use --device cpu")
    if kind == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise DCVAEError(f"--device {device}: MPS is not available on this machine; use --device cpu")
    return device


def _hub_offline(offline: bool) -> contextlib.AbstractContextManager[None]:
    """huggingface_hub's own offline flag on for the duration (see dcvae_tools.hub.hub_offline_mode)."""
    from .hub import hub_offline_mode

    return hub_offline_mode(offline)


def _load(
    model: str | None,
    revision: str | None = None,
    device: str | None = "cpu",
    dtype: Dtype = Dtype.float32,
    batch_size: int | None = None,
    offline: bool = False,
    cache_dir: Path | None = None,
) -> "DCVAE":
    """Load, verify and configure the model the options name (``None``: the default model)."""
    from dcvae_tools.loading import load_model

    resolved_device = _resolve_device(device)
    with _hub_offline(offline):
        loaded = load_model(
            model,
            revision=revision,
            device=resolved_device,
            dtype=dtype.value,
            cache_dir=cache_dir,
            local_files_only=offline,
            # huggingface_hub reads HF_ENDPOINT once, at import; read it now so the variable always counts
            endpoint=os.environ.get("HF_ENDPOINT") or None,
        )
    if batch_size is not None:
        loaded.batch_size = batch_size
    return loaded


def _model_name(model: "DCVAE") -> str:
    source = getattr(model, "source", None)
    return str(source.name) if source is not None else "model"


def _pick_seed(seed: int | None) -> int:
    """The given seed, or a fresh random one (printed by the caller so the run can be repeated)."""
    return seed if seed is not None else secrets.randbelow(2**31)


def _grid_upscale(model: "DCVAE", upscale: int | None) -> int:
    if upscale is not None:
        return upscale
    return 2 if model.config.image_size <= 32 else 1


def _auto_nrow(count: int, nrow: int | None) -> int:
    return nrow if nrow is not None else max(1, math.ceil(math.sqrt(count)))


def _output_names(sources: Sequence[str] | None, count: int, suffix: str = ".png") -> list[str]:
    """File names for ``count`` outputs: the sources' stems when they are unique, else numbered."""
    if sources and len(sources) == count:
        stems = [Path(s).stem.lstrip(".") or f"{i:05d}" for i, s in enumerate(sources)]
        if len(set(stems)) == count:
            return [f"{stem}{suffix}" for stem in stems]
        return [f"{i:05d}-{stem}{suffix}" for i, stem in enumerate(stems)]
    return [f"{i:05d}{suffix}" for i in range(count)]


def _save_one(model: "DCVAE", image: "torch.Tensor", path: Path, upscale: int) -> None:
    """Save one model image [C, S, S], cropped to the content size, enlarged ``upscale`` times."""
    from dcvae_tools import images as image_io

    if upscale == 1:
        image_io.save_image(image, path, content_size=model.config.content_size)
    else:
        image_io.save_grid(
            image.unsqueeze(0),
            path,
            nrow=1,
            content_size=model.config.content_size,
            upscale=upscale,
            padding=0,
        )


def _save_grid(model: "DCVAE", images: "torch.Tensor", path: Path, nrow: int, upscale: int) -> None:
    from dcvae_tools import images as image_io

    image_io.save_grid(images, path, nrow=nrow, content_size=model.config.content_size, upscale=upscale)


@contextlib.contextmanager
def _staged_dir(folder: Path) -> Iterator[Path]:
    """Yield a hidden staging folder inside ``folder``; its files are moved in only if the body succeeds.

    On failure the staging folder is deleted (and ``folder`` too, if this created it and it is empty),
    so a command that fails half-way leaves no output at all.
    """
    from dcvae_tools.errors import DCVAEError

    if folder.exists() and not folder.is_dir():
        raise DCVAEError(f"{folder} exists and is not a folder; give -o a folder path")
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".dcvae-tmp-", dir=folder))
    committed = False
    try:
        yield stage
        for item in sorted(stage.iterdir()):
            os.replace(item, folder / item.name)
        committed = True
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        if not committed and created:
            with contextlib.suppress(OSError):
                folder.rmdir()


def _write_safetensors(path: Path, tensors: dict[str, "torch.Tensor"], metadata: dict[str, str]) -> None:
    """Write a safetensors file atomically (a temporary file in the same folder, then a rename)."""
    from safetensors.torch import save_file

    from dcvae_tools.io_utils import atomic_write

    with atomic_write(path) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp), metadata=metadata)


def _expand(paths: Sequence[Path]) -> list[Path]:
    from dcvae_tools.images import expand_image_paths

    return expand_image_paths(list(paths))


def _image_batches(
    model: "DCVAE", paths: Sequence[Path], out: Output, description: str = "encoding"
) -> Iterator[tuple[list[Path], "torch.Tensor"]]:
    """Yield (paths, model-format tensor) per batch of ``model.batch_size`` images, with a progress bar."""
    size = model.batch_size
    with out.progress(len(paths), description) as advance:
        for start in range(0, len(paths), size):
            chunk = list(paths[start : start + size])
            yield chunk, model.images_to_tensor(chunk)
            advance(len(chunk))


def _encode_paths(
    model: "DCVAE", paths: Sequence[Path], out: Output, keep_images: bool = False
) -> tuple["torch.Tensor", "torch.Tensor", "torch.Tensor | None"]:
    """Posterior (mu, logvar) of image files, batch by batch; plus the input tensors if asked."""
    import torch

    mus, logvars, inputs = [], [], []
    for _, x in _image_batches(model, paths, out):
        mu, logvar = model.posterior(x)
        mus.append(mu.cpu())
        logvars.append(logvar.cpu())
        if keep_images:
            inputs.append(x)
    return torch.cat(mus), torch.cat(logvars), (torch.cat(inputs) if keep_images else None)


def _decode_batches(
    model: "DCVAE", latents: "torch.Tensor", out: Output, description: str = "decoding"
) -> Iterator[tuple[int, "torch.Tensor"]]:
    """Yield (start index, decoded images on the CPU) per batch of ``model.batch_size`` latents."""
    size = model.batch_size
    with out.progress(len(latents), description) as advance:
        for start in range(0, len(latents), size):
            chunk = latents[start : start + size]
            yield start, model.decode(chunk).cpu()
            advance(len(chunk))


def _read_latents_missing(path: Path) -> NoReturn:
    """Raise the error for a latents file that does not exist (checked before loading the model)."""
    from dcvae_tools.errors import LatentError

    what = "is a folder, not a latents file" if path.is_dir() else "no such latents file"
    raise LatentError(f"{path}: {what}; write one with `dcvae encode IMAGES -o {path.name}`")


def _read_latents(path: Path, model: "DCVAE") -> tuple["torch.Tensor", dict[str, str]]:
    """Read tensor ``latents`` [N, D] of a safetensors file, checking D against the model."""
    from safetensors import SafetensorError, safe_open

    from dcvae_tools.errors import LatentError

    if not path.is_file():
        raise LatentError(f"{path}: no such latents file; write one with `dcvae encode IMAGES -o {path.name}`")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = dict(f.metadata() or {})
            names = list(f.keys())
            if "latents" not in names:
                raise LatentError(
                    f"{path} holds no tensor named 'latents' (it has {', '.join(names) or 'none'}); "
                    "write latents with `dcvae encode`"
                )
            latents = f.get_tensor("latents")
    except (SafetensorError, OSError, ValueError) as err:
        raise LatentError(f"{path} is not a readable safetensors file ({one_line(str(err))})") from None
    dim = model.latent_dim
    if latents.ndim != 2 or latents.shape[1] != dim or len(latents) == 0:
        origin = f" (written for model {metadata['model']!r})" if metadata.get("model") else ""
        raise LatentError(
            f"{path}: latents have shape {list(latents.shape)}{origin}, but {_model_name(model)} needs "
            f"[N, {dim}]; decode them with the model that encoded them"
        )
    if not latents.is_floating_point():
        raise LatentError(f"{path}: latents have dtype {latents.dtype}; expected floating point values")
    latents = latents.float()
    if not bool(latents.isfinite().all()):
        raise LatentError(f"{path}: latents contain NaN or infinite values")
    return latents, metadata


def _source_files(metadata: dict[str, str]) -> list[str] | None:
    import json

    try:
        files = json.loads(metadata.get("files", "null"))
    except ValueError:
        return None
    return [str(f) for f in files] if isinstance(files, list) else None


_LATENT_REF = re.compile(r"^(?P<path>.+\.safetensors):(?P<row>\d+)$", re.IGNORECASE)


def _endpoint(ref: str, model: "DCVAE") -> "torch.Tensor":
    """An interpolation end as a latent [D]: ``IMAGE`` (encoded to its posterior mean) or
    ``LATENTS.safetensors[:ROW]`` (the row may be left out when the file holds one latent)."""
    from dcvae_tools.errors import LatentError

    match = _LATENT_REF.match(ref)
    if match or ref.lower().endswith(".safetensors"):
        path = Path(match["path"] if match else ref)
        latents, _ = _read_latents(path, model)
        if match is None:
            if len(latents) != 1:
                raise LatentError(
                    f"{path} holds {len(latents)} latents; pick one with {path}:ROW (0-{len(latents) - 1})"
                )
            return latents[0]
        row = int(match["row"])
        if row >= len(latents):
            raise LatentError(f"{path} holds {len(latents)} latents: row {row} is out of range (0-{len(latents) - 1})")
        return latents[row]
    paths = _expand([Path(ref)])
    if len(paths) != 1:
        raise LatentError(f"{ref} is a folder of {len(paths)} images; an interpolation end is one image")
    return model.encode(paths)[0].cpu()


_ATTRIBUTE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


def _parse_attribute_spec(spec: str) -> tuple[str, float | None]:
    """``KEY`` or ``KEY=STRENGTH`` -> (KEY, STRENGTH or None)."""
    key, sep, value = spec.rpartition("=")
    if not sep:
        return spec, None
    try:
        strength = float(value)
    except ValueError:
        raise _usage(f"cannot read the strength {value!r} in {spec!r}; write NAME=1.5", "--attribute") from None
    if not key or not math.isfinite(strength):
        raise _usage(f"cannot read {spec!r}; write NAME, NAME=STRENGTH, FILE or FILE:NAME=STRENGTH", "--attribute")
    return key, strength


def _resolve_attribute(key: str, model: "DCVAE") -> "AttributeVector":
    """NAME (shipped with the model), FILE (an attributes .safetensors with one direction) or FILE:NAME."""
    from dcvae_tools.errors import LatentError
    from dcvae_tools.release import load_attributes

    path, name = Path(key), None
    if not path.is_file():
        head, sep, tail = key.rpartition(":")
        if sep and head and Path(head).is_file():
            path, name = Path(head), tail
        elif key in model.attributes:
            return model.attributes[key]
        elif key.lower().endswith(".safetensors") or (sep and head.lower().endswith(".safetensors")):
            missing = head if sep and head.lower().endswith(".safetensors") else key
            raise LatentError(f"{missing}: no such attributes file; make one with `dcvae attribute`")
        else:
            shipped = ", ".join(sorted(model.attributes)) or "none"
            raise LatentError(
                f"unknown attribute {key!r}: {_model_name(model)} ships {shipped}; pass an attributes "
                "file made with `dcvae attribute` instead (FILE or FILE:NAME)"
            )
    vectors = load_attributes(path, model.latent_dim)
    if name is None:
        if len(vectors) != 1:
            listed = ", ".join(sorted(vectors)) or "none"
            raise LatentError(f"{path} holds {len(vectors)} attributes ({listed}); pick one with {path}:NAME")
        return next(iter(vectors.values()))
    if name not in vectors:
        raise LatentError(f"{path} has no attribute {name!r}; it holds {', '.join(sorted(vectors)) or 'none'}")
    return vectors[name]


def _blank_like(image: "torch.Tensor") -> "torch.Tensor":
    """An all-white cell (the grid's padding colour) to keep grid columns aligned."""
    import torch

    return torch.ones_like(image)


def _paired_rows(top: "torch.Tensor", bottom: "torch.Tensor", cols: int) -> "torch.Tensor":
    """Interleave rows of ``cols`` cells: ``top`` images, then the matching ``bottom`` images, and so on."""
    import torch

    cells: list[torch.Tensor] = []
    for start in range(0, len(top), cols):
        for source in (top, bottom):
            row = list(source[start : start + cols])
            row += [_blank_like(source[0])] * (cols - len(row))
            cells.extend(row)
    return torch.stack(cells)


def _need_output(*outputs: object, options: str) -> None:
    """Refuse a run that would write nothing (``options`` names the output options, e.g. "'-o' / '--grid'")."""
    if all(o is None for o in outputs):
        raise typer.BadParameter("nothing to write; give at least one of them", param_hint=options)


def _human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"  # pragma: no cover


def _format_metrics(metrics: dict[str, Any], limit: int = 4) -> str:
    parts = []
    for key, value in list(metrics.items())[:limit]:
        shown = f"{value:.4g}" if isinstance(value, float) else str(value)
        parts.append(f"{key} {shown}")
    return ", ".join(parts) + (", ..." if len(metrics) > limit else "")


# ---------------------------------------------------------------------------- commands


def _version_callback(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"dcvae-tools {version('dcvae-tools')}")
        except PackageNotFoundError:  # pragma: no cover - running from a source tree
            typer.echo("dcvae-tools (not installed)")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version_callback, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """DC-VAE inference and latent editing."""


@app.command(epilog=_examples("dcvae models", "dcvae models --json"))
def models(
    cache_dir: CacheDirOpt = None, json_: JsonOpt = False, quiet: QuietOpt = False, debug: DebugOpt = False
) -> None:
    """List the released models and whether they are cached.

    For each checkpoint in weights_manifest.json: data set, image size, latent size, whether it is
    bundled with this installation or downloaded from the Hub, whether this machine has it already,
    and its key metrics.
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
            if e["location"] == "bundled":
                where, have = "bundled", "yes"
            else:
                where = "hub" if e["published"] else "hub (unpublished)"
                have = "yes" if e["cached"] else "no"
            name = f"{e['name']} (default)" if e["default"] else e["name"]
            size = f"{e['resolution']}x{e['resolution']} {'grey' if e['channels'] == 1 else 'RGB'}"
            rows.append([name, e["dataset"], size, str(e["latent_dim"]), where, have, _format_metrics(e["metrics"])])
        out.table(["name", "dataset", "images", "latent", "from", "cached", "metrics"], rows)


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
    folder is printed on stdout; later commands (and --offline) use the cached copy.
    """
    with session(quiet=quiet, json_mode=json_, debug=debug) as out:
        out.info(f"fetching {name_or_repo} ...")
        model = _load(name_or_repo, revision=revision, device="cpu", offline=offline, cache_dir=cache_dir)
        source = model.source
        out.data(
            {
                "name": source.name,
                "source": source.source,
                "revision": source.revision,
                "folder": str(source.folder),
            }
        )
        at = f" at revision {source.revision}" if source.revision else ""
        out.info(f"verified {source.name}{at} ({source.source})")
        out.result(str(source.folder))


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
        "dcvae info -m ./checkpoints/my-run",
        "dcvae info -m someone/dcvae-celeba --offline --json",
    )
)
def info(
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
        from dcvae_tools.io_utils import sha256_file

        loaded = _load(model, revision=revision, device="cpu", offline=offline, cache_dir=cache_dir)
        source = loaded.source
        folder = Path(source.folder)
        files = [
            {"name": p.name, "size": p.stat().st_size, "sha256": sha256_file(p)}
            for p in sorted(folder.iterdir())
            if p.is_file() and not p.name.startswith(".")
        ]
        verified, how = _verification(source, files)
        config = loaded.config
        attributes = [
            {
                "name": a.name,
                "num_positive": a.num_positive,
                "num_negative": a.num_negative,
                "normalized": a.normalized,
                "norm": round(float(a.direction.norm()), 6),
            }
            for a in sorted(loaded.attributes.values(), key=lambda a: a.name)
        ]
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
                "attributes": attributes,
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
            f"  sample clamp  {config.sample_clamp if config.sample_clamp is not None else 'none'}",
            f"  parameters    encoder {parameters['encoder']:,}, decoder {parameters['decoder']:,}",
        ]
        for key in ("dataset", "preset", "description"):
            if getattr(config, key):
                lines.append(f"  {key:<13} {getattr(config, key)}")
        if config.metrics:
            lines.append(f"  metrics       {_format_metrics(config.metrics, limit=len(config.metrics))}")
        lines.append(f"attributes ({len(attributes)})" + ("" if attributes else ": none shipped"))
        for a in attributes:
            lines.append(
                f"  {a['name']:<20} {a['num_positive']} positive / {a['num_negative']} negative"
                f"{', normalized' if a['normalized'] else ''}, norm {a['norm']:.4g}"
            )
        lines.append("files")
        for f in files:
            lines.append(f"  {f['name']:<24} {_human_size(f['size']):>9}  sha256 {f['sha256']}")
        out.result("\n".join(lines))


@app.command(
    epilog=_examples(
        "dcvae encode shirts/ -o shirts.safetensors",
        "dcvae encode a.png b.jpg -o z.safetensors --sample --seed 0",
        "dcvae encode photos/ -o z.safetensors -m ./my-checkpoint --json",
    )
)
def encode(
    images: ImagesArg,
    output: Annotated[
        Path,
        typer.Option("--output", "-o", metavar="LATENTS.safetensors", help="Where to write the latents."),
    ],
    sample: Annotated[
        bool, typer.Option("--sample", help="Draw from the posterior instead of taking its mean.")
    ] = False,
    seed: SeedOpt = None,
    model: ModelOpt = None,
    revision: RevisionOpt = None,
    device: DeviceOpt = None,
    dtype: DtypeOpt = Dtype.float32,
    batch_size: BatchSizeOpt = None,
    offline: OfflineOpt = False,
    cache_dir: CacheDirOpt = None,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Encode images to latents (a .safetensors file).

    Writes tensor "latents" [N, D]: the encoder's posterior means, or posterior samples with --sample.
    The metadata records the source files (so `dcvae decode` can name its outputs), the model and the
    seed. Images of any size or mode are converted to the model's format, with a note for each.
    """
    import json

    _check_safetensors_suffix(output, "--output")
    with session(quiet=quiet, json_mode=json_, debug=debug) as out:

        paths = _expand(images)
        loaded = _load(model, revision, device, dtype, batch_size, offline, cache_dir)
        mu, logvar, _ = _encode_paths(loaded, paths, out)
        used_seed = _pick_seed(seed) if sample else None
        latents = loaded.sample_posterior(mu, logvar, used_seed) if sample else mu
        metadata = {
            "format": "pt",
            "files": json.dumps([str(p) for p in paths]),
            "model": _model_name(loaded),
            "sample": json.dumps(sample),
        }
        if used_seed is not None:
            metadata["seed"] = str(used_seed)
        if loaded.source.revision:
            metadata["revision"] = str(loaded.source.revision)
        _write_safetensors(output, {"latents": latents}, metadata)
        out.data(
            {
                "output": str(output),
                "count": len(paths),
                "latent_dim": loaded.latent_dim,
                "shape": list(latents.shape),
                "model": _model_name(loaded),
                "sample": sample,
                "seed": used_seed,
            }
        )
        seeded = f", posterior samples with seed {used_seed}" if sample else ""
        out.done(f"wrote {output}: latents [{len(paths)}, {loaded.latent_dim}]{seeded}")


@app.command(
    epilog=_examples(
        "dcvae decode z.safetensors -o decoded/",
        "dcvae decode z.safetensors --grid decoded.png --nrow 8",
    )
)
def decode(
    latents: Annotated[Path, typer.Argument(metavar="LATENTS.safetensors", help="Latents written by `dcvae encode`.")],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            metavar="OUT_DIR",
            help="Folder for one PNG per latent (named after the sources).",
        ),
    ] = None,
    grid: Annotated[Path | None, typer.Option("--grid", metavar="GRID.png", help="One image with all of them.")] = None,
    nrow: NrowOpt = None,
    upscale: UpscaleOpt = None,
    model: ModelOpt = None,
    revision: RevisionOpt = None,
    device: DeviceOpt = None,
    dtype: DtypeOpt = Dtype.float32,
    batch_size: BatchSizeOpt = None,
    offline: OfflineOpt = False,
    cache_dir: CacheDirOpt = None,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Decode latents to images.

    Writes one PNG per row of tensor "latents", named after the files it was encoded from when the
    file records them (else 00000.png, 00001.png, ...), and/or one grid image.
    """
    _need_output(output, grid, options="'-o' / '--grid'")
    _check_image_suffix(grid, "--grid")
    with session(quiet=quiet, debug=debug) as out:
        import torch

        if not latents.is_file():
            _read_latents_missing(latents)
        loaded = _load(model, revision, device, dtype, batch_size, offline, cache_dir)
        z, metadata = _read_latents(latents, loaded)
        names = _output_names(_source_files(metadata), len(z))
        kept: list[torch.Tensor] = []
        with contextlib.ExitStack() as stack:
            stage = stack.enter_context(_staged_dir(output)) if output is not None else None
            for start, decoded in _decode_batches(loaded, z, out):
                if stage is not None:
                    for offset, image in enumerate(decoded):
                        _save_one(loaded, image, stage / names[start + offset], upscale or 1)
                if grid is not None:
                    kept.append(decoded)
            if grid is not None:
                images = torch.cat(kept)
                _save_grid(loaded, images, grid, _auto_nrow(len(images), nrow), _grid_upscale(loaded, upscale))
        written = [f"{len(z)} images in {output}/"] if output is not None else []
        written += [str(grid)] if grid is not None else []
        out.done(f"decoded {len(z)} latents: wrote {' and '.join(written)}")


@app.command(
    epilog=_examples(
        "dcvae reconstruct shirts/ -o recon/",
        "dcvae reconstruct a.png b.png c.png --grid recon.png",
    )
)
def reconstruct(
    images: ImagesArg,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", metavar="OUT_DIR", help="Folder for one reconstruction per input."),
    ] = None,
    grid: Annotated[
        Path | None,
        typer.Option("--grid", metavar="GRID.png", help="Rows of inputs, each above its reconstructions."),
    ] = None,
    upscale: UpscaleOpt = None,
    model: ModelOpt = None,
    revision: RevisionOpt = None,
    device: DeviceOpt = None,
    dtype: DtypeOpt = Dtype.float32,
    batch_size: BatchSizeOpt = None,
    offline: OfflineOpt = False,
    cache_dir: CacheDirOpt = None,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Encode and decode images (reconstructions).

    Each image is encoded to its posterior mean and decoded. The grid shows up to 8 inputs per row
    with their reconstructions in the row below, as in the paper's figures.
    """
    _need_output(output, grid, options="'-o' / '--grid'")
    _check_image_suffix(grid, "--grid")
    with session(quiet=quiet, debug=debug) as out:
        import torch

        paths = _expand(images)
        loaded = _load(model, revision, device, dtype, batch_size, offline, cache_dir)
        names = _output_names([str(p) for p in paths], len(paths))
        inputs: list[torch.Tensor] = []
        outputs: list[torch.Tensor] = []
        with contextlib.ExitStack() as stack:
            stage = stack.enter_context(_staged_dir(output)) if output is not None else None
            done = 0
            for _, x in _image_batches(loaded, paths, out, "reconstructing"):
                recon = loaded.decode(loaded.posterior(x)[0]).cpu()
                if stage is not None:
                    for image in recon:
                        _save_one(loaded, image, stage / names[done], upscale or 1)
                        done += 1
                if grid is not None:
                    inputs.append(x)
                    outputs.append(recon)
            if grid is not None:
                cols = min(len(paths), 8)
                cells = _paired_rows(torch.cat(inputs), torch.cat(outputs), cols)
                _save_grid(loaded, cells, grid, cols, _grid_upscale(loaded, upscale))
        written = [f"{len(paths)} images in {output}/"] if output is not None else []
        written += [str(grid)] if grid is not None else []
        out.done(f"reconstructed {len(paths)} images: wrote {' and '.join(written)}")


@app.command(
    epilog=_examples(
        "dcvae sample -n 64 --seed 0 -o samples.png",
        "dcvae sample -n 16 --no-clamp --out-dir samples/",
    )
)
def sample(
    num: Annotated[int, typer.Option("--num", "-n", metavar="N", min=1, max=100_000, help="How many images.")] = 64,
    seed: SeedOpt = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", metavar="GRID.png", help="One grid image with all samples."),
    ] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out-dir", metavar="DIR", help="Folder for one PNG per sample.")
    ] = None,
    clamp: Annotated[
        float | None,
        typer.Option(
            "--clamp",
            metavar="C",
            show_default="the model's",
            help="Clamp prior samples to [-C, C] (the paper's FID protocol: 1.0).",
        ),
    ] = None,
    no_clamp: Annotated[bool, typer.Option("--no-clamp", help="Sample the plain standard normal.")] = False,
    nrow: NrowOpt = None,
    upscale: UpscaleOpt = None,
    model: ModelOpt = None,
    revision: RevisionOpt = None,
    device: DeviceOpt = None,
    dtype: DtypeOpt = Dtype.float32,
    batch_size: BatchSizeOpt = None,
    offline: OfflineOpt = False,
    cache_dir: CacheDirOpt = None,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Generate new images from random latents.

    Latents are drawn from the standard normal prior and clamped to [-C, C], C being the model's
    sample_clamp (1.0 in the paper's FID protocol) unless --clamp or --no-clamp say otherwise.
    """
    _need_output(output, out_dir, options="'-o' / '--out-dir'")
    _check_image_suffix(output, "--output")
    if clamp is not None and no_clamp:
        raise _usage("give --clamp C or --no-clamp, not both", "--clamp")
    if clamp is not None and not (math.isfinite(clamp) and clamp > 0):
        raise _usage(f"{clamp} is not a positive number", "--clamp")
    with session(quiet=quiet, debug=debug) as out:
        import torch

        loaded = _load(model, revision, device, dtype, batch_size, offline, cache_dir)
        used_seed = _pick_seed(seed)
        bound: Any = None if no_clamp else (clamp if clamp is not None else "config")
        z = loaded.random_latents(num, seed=used_seed, clamp=bound)
        names = _output_names(None, num)
        kept: list[torch.Tensor] = []
        with contextlib.ExitStack() as stack:
            stage = stack.enter_context(_staged_dir(out_dir)) if out_dir is not None else None
            for start, decoded in _decode_batches(loaded, z, out, "sampling"):
                if stage is not None:
                    for offset, image in enumerate(decoded):
                        _save_one(loaded, image, stage / names[start + offset], upscale or 1)
                kept.append(decoded)
            if output is not None:
                _save_grid(loaded, torch.cat(kept), output, _auto_nrow(num, nrow), _grid_upscale(loaded, upscale))
        written = [str(output)] if output is not None else []
        written += [f"{num} images in {out_dir}/"] if out_dir is not None else []
        out.done(f"sampled {num} images with seed {used_seed}: wrote {' and '.join(written)}")


@app.command(
    epilog=_examples(
        "dcvae interpolate a.png b.png --steps 8 -o strip.png",
        "dcvae interpolate z.safetensors:0 z.safetensors:5 --slerp --gif morph.gif",
    )
)
def interpolate(
    a: Annotated[str, typer.Argument(metavar="A", help="Image file, or LATENTS.safetensors:ROW.")],
    b: Annotated[str, typer.Argument(metavar="B", help="Image file, or LATENTS.safetensors:ROW.")],
    steps: Annotated[
        int, typer.Option("--steps", metavar="N", min=2, max=1000, help="Images from A to B, both included.")
    ] = 8,
    slerp: Annotated[bool, typer.Option("--slerp", help="Spherical instead of linear interpolation.")] = False,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", metavar="STRIP.png", help="One row of images from A to B."),
    ] = None,
    gif: Annotated[Path | None, typer.Option("--gif", metavar="ANIM.gif", help="An animation from A to B.")] = None,
    duration: Annotated[
        int, typer.Option("--duration", metavar="MS", min=10, help="Milliseconds per GIF frame.")
    ] = 100,
    boomerang: Annotated[
        bool, typer.Option("--boomerang/--no-boomerang", help="Play the GIF forwards then backwards.")
    ] = True,
    upscale: UpscaleOpt = None,
    model: ModelOpt = None,
    revision: RevisionOpt = None,
    device: DeviceOpt = None,
    dtype: DtypeOpt = Dtype.float32,
    offline: OfflineOpt = False,
    cache_dir: CacheDirOpt = None,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Interpolate between two images or latents.

    A and B are image files (encoded to their posterior means) or rows of a latents file
    (z.safetensors:ROW). Evenly spaced points from A to B are decoded, both ends included, linearly or
    along the sphere with --slerp.
    """
    _need_output(output, gif, options="'-o' / '--gif'")
    _check_image_suffix(output, "--output")
    _check_image_suffix(gif, "--gif", gif=True)
    with session(quiet=quiet, debug=debug) as out:
        from dcvae_tools import images as image_io

        loaded = _load(model, revision=revision, device=device, dtype=dtype, offline=offline, cache_dir=cache_dir)
        za, zb = _endpoint(a, loaded), _endpoint(b, loaded)
        frames = loaded.interpolate(za, zb, steps=steps, method="slerp" if slerp else "lerp").cpu()
        scale = _grid_upscale(loaded, upscale)
        if output is not None:
            _save_grid(loaded, frames, output, steps, scale)
        if gif is not None:
            image_io.save_gif(
                frames,
                gif,
                duration_ms=duration,
                upscale=scale,
                content_size=loaded.config.content_size,
                boomerang=boomerang,
            )
        written = [str(p) for p in (output, gif) if p is not None]
        out.done(f"interpolated {steps} steps ({'slerp' if slerp else 'lerp'}): wrote {' and '.join(written)}")


@app.command(
    epilog=_examples(
        "dcvae mix a.png b.png --count 6 --seed 0 -o mix.png",
        "dcvae mix --a a1.png --a a2.png --a a3.png --b b.png --fraction 0.25 -o mix.png",
        "dcvae mix left/ right/ --dims 0-63 --dims 64-127 -o halves.png",
    )
)
def mix(
    output: Annotated[Path, typer.Option("--output", "-o", metavar="GRID.png", help="The grid to write.")],
    sources: Annotated[
        list[Path] | None,
        typer.Argument(
            metavar="[A B]",
            show_default=False,
            help="Two image files or folders: the A images and the B images.",
        ),
    ] = None,
    a_images: Annotated[
        list[Path] | None, typer.Option("--a", metavar="IMAGE", help="An A image or folder (repeatable).")
    ] = None,
    b_images: Annotated[
        list[Path] | None, typer.Option("--b", metavar="IMAGE", help="A B image or folder (repeatable).")
    ] = None,
    fraction: Annotated[
        float | None,
        typer.Option(
            "--fraction",
            metavar="F",
            min=0.0,
            max=1.0,
            show_default="0.5",
            help="Share of latent dimensions taken from B, chosen at random.",
        ),
    ] = None,
    dims: Annotated[
        list[str] | None,
        typer.Option(
            "--dims",
            metavar="RANGES",
            help="Take exactly these dimensions from B, e.g. 0-63,70 (repeatable: one mix per --dims).",
        ),
    ] = None,
    count: Annotated[
        int | None,
        typer.Option(
            "--count",
            metavar="K",
            min=1,
            max=64,
            show_default="6",
            help="Mixes per row, each with another random subset.",
        ),
    ] = None,
    seed: SeedOpt = None,
    upscale: UpscaleOpt = None,
    model: ModelOpt = None,
    revision: RevisionOpt = None,
    device: DeviceOpt = None,
    dtype: DtypeOpt = Dtype.float32,
    batch_size: BatchSizeOpt = None,
    offline: OfflineOpt = False,
    cache_dir: CacheDirOpt = None,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Mix latent dimensions of A and B (paper, Figure 6).

    Each mix replaces a subset of A's latent dimensions with B's: a random --fraction of them (--count
    different subsets), or exactly the --dims given. The grid has one row per A image: A, B, then the
    mixes; every row uses the same subsets. B is one image for all rows, or one per A image.
    """
    _check_image_suffix(output, "--output")
    if sources and (a_images or b_images):
        raise _usage("give A and B as two arguments or with --a/--b, not both", "--a")
    if sources:
        if len(sources) != 2:
            raise _usage(f"expected two arguments A and B, got {len(sources)}; use --a/--b for lists", "A B")
        a_images, b_images = [sources[0]], [sources[1]]
    if not a_images or not b_images:
        raise _usage("give A and B images (two arguments, or --a and --b)", "--a")
    if dims and (fraction is not None or count is not None):
        raise _usage("--dims fixes the subsets; drop --fraction/--count (repeat --dims for more mixes)", "--dims")
    with session(quiet=quiet, debug=debug) as out:
        import torch

        from dcvae_tools.errors import LatentError
        from dcvae_tools.latent import mask_from_indices, parse_index_ranges, random_mask

        a_paths, b_paths = _expand(a_images), _expand(b_images)
        if len(b_paths) not in (1, len(a_paths)):
            raise LatentError(f"got {len(a_paths)} A images and {len(b_paths)} B images; give one B, or one per A")
        loaded = _load(model, revision, device, dtype, batch_size, offline, cache_dir)
        dim = loaded.latent_dim
        used_seed = None
        if dims:
            masks = torch.stack([mask_from_indices(dim, parse_index_ranges(spec)) for spec in dims])
        else:
            used_seed = _pick_seed(seed)
            generator = torch.Generator().manual_seed(used_seed)
            share = 0.5 if fraction is None else fraction
            masks = torch.stack([random_mask(dim, share, generator) for _ in range(count or 6)])
        za, _, xa = _encode_paths(loaded, a_paths, out, keep_images=True)
        zb, _, xb = _encode_paths(loaded, b_paths, out, keep_images=True)
        assert xa is not None and xb is not None
        mixed = loaded.mix(za, zb, mask=masks).cpu()  # row-major: every mask for row 0, then row 1, ...
        rows = max(len(za), len(zb))
        k = len(masks)
        cells = []
        for i in range(rows):
            cells += [xa[i if len(xa) > 1 else 0], xb[i if len(xb) > 1 else 0], *mixed[i * k : (i + 1) * k]]
        _save_grid(loaded, torch.stack(cells), output, k + 2, _grid_upscale(loaded, upscale))
        if dims:
            how = f"the --dims subset{'s' if k > 1 else ''}"
        else:
            chosen = int(masks[0].sum())
            how = f"{k} random subset{'s' if k > 1 else ''} of {chosen}/{dim} dimensions, seed {used_seed}"
        plural = "s" if rows > 1 else ""
        out.done(f"wrote {output}: {rows} row{plural} (A, B, {k} mix{'es' if k > 1 else ''}) with {how}")


@app.command(
    epilog=_examples(
        "dcvae attribute --positive smiling/ --negative neutral/ --name smile -o attrs.safetensors",
        "dcvae attribute -p sleeves/ -n sleeveless/ --name long_sleeves -o attrs.safetensors --append",
    )
)
def attribute(
    positive: Annotated[
        list[Path],
        typer.Option("--positive", "-p", metavar="IMAGES", help="Images or folders WITH the attribute (repeatable)."),
    ],
    negative: Annotated[
        list[Path],
        typer.Option(
            "--negative", "-n", metavar="IMAGES", help="Images or folders WITHOUT the attribute (repeatable)."
        ),
    ],
    name: Annotated[str, typer.Option("--name", metavar="NAME", help="The attribute's name, e.g. smile.")],
    output: Annotated[
        Path,
        typer.Option("--output", "-o", metavar="ATTRIBUTES.safetensors", help="Where to write the direction."),
    ],
    normalize: Annotated[bool, typer.Option("--normalize", help="Scale the direction to unit length.")] = False,
    append: Annotated[
        bool, typer.Option("--append", help="Add to (or replace in) an existing file's attributes.")
    ] = False,
    model: ModelOpt = None,
    revision: RevisionOpt = None,
    device: DeviceOpt = None,
    dtype: DtypeOpt = Dtype.float32,
    batch_size: BatchSizeOpt = None,
    offline: OfflineOpt = False,
    cache_dir: CacheDirOpt = None,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Make an attribute direction from example images.

    The paper's recipe: the mean latent of images with the attribute minus the mean latent of images
    without it (20 of each in the paper). The direction is saved under --name in an attributes file
    that `dcvae edit --attribute FILE:NAME` uses; --append adds it to an existing file.
    """
    _check_safetensors_suffix(output, "--output")
    if not _ATTRIBUTE_NAME.match(name):
        raise _usage(f"{name!r}: use letters, digits, '_', '-' and '.' (no ':' or '=')", "--name")
    with session(quiet=quiet, json_mode=json_, debug=debug) as out:
        from dcvae_tools.io_utils import atomic_write
        from dcvae_tools.release import load_attributes, save_attributes

        pos_paths, neg_paths = _expand(positive), _expand(negative)
        if (len(pos_paths), len(neg_paths)) != (20, 20):
            out.warn(
                f"{len(pos_paths)} positive and {len(neg_paths)} negative images; the paper's recipe uses 20 of each"
            )
        loaded = _load(model, revision, device, dtype, batch_size, offline, cache_dir)
        existing = {}
        if append and output.exists():
            existing = load_attributes(output, loaded.latent_dim)
            if name in existing:
                out.warn(f"{output} already has {name!r}; replacing it")
        z_pos, _, _ = _encode_paths(loaded, pos_paths, out)
        z_neg, _, _ = _encode_paths(loaded, neg_paths, out)
        vector = loaded.attribute_vector(
            z_pos,
            z_neg,
            name=name,
            normalize=normalize,
            metadata={
                "model": _model_name(loaded),
                "positive": [str(p) for p in pos_paths],
                "negative": [str(p) for p in neg_paths],
                "latents": "posterior mean",
            },
        )
        vectors = {**existing, name: vector}
        with atomic_write(output) as tmp:
            save_attributes(vectors, tmp)
        norm = float(vector.direction.norm())
        out.data(
            {
                "output": str(output),
                "name": name,
                "num_positive": len(pos_paths),
                "num_negative": len(neg_paths),
                "normalized": normalize,
                "norm": norm,
                "attributes": sorted(vectors),
            }
        )
        out.done(
            f"wrote {output}: {name!r} from {len(pos_paths)} positive / {len(neg_paths)} negative images "
            f"(norm {norm:.4g}); the file holds {', '.join(sorted(vectors))}"
        )


@app.command(
    epilog=_examples(
        "dcvae edit photo.png --attribute smile=1.5 -o edited/",
        "dcvae edit shirts/ --attribute attrs.safetensors:long_sleeves=2 -o edited/",
        "dcvae edit a.png b.png --attribute smile --sweep -2:2:5 -o strips/ --grid sweep.png",
    )
)
def edit(
    images: ImagesArg,
    attributes: Annotated[
        list[str],
        typer.Option(
            "--attribute",
            "-a",
            metavar="NAME_OR_FILE[=STRENGTH]",
            help="An attribute the model ships (NAME), an attributes file (FILE or FILE:NAME); strength "
            "defaults to 1. Repeatable: the edits add up.",
        ),
    ],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            metavar="OUT_DIR",
            help="Folder for one edited image (or strip, with --sweep) per input.",
        ),
    ] = None,
    grid: Annotated[
        Path | None,
        typer.Option("--grid", metavar="GRID.png", help="All inputs: one row each, the original first."),
    ] = None,
    sweep: Annotated[
        str | None,
        typer.Option(
            "--sweep",
            metavar="START:STOP:COUNT",
            help="Strengths to show for the single attribute, e.g. -2:2:5.",
        ),
    ] = None,
    upscale: UpscaleOpt = None,
    model: ModelOpt = None,
    revision: RevisionOpt = None,
    device: DeviceOpt = None,
    dtype: DtypeOpt = Dtype.float32,
    batch_size: BatchSizeOpt = None,
    offline: OfflineOpt = False,
    cache_dir: CacheDirOpt = None,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Edit images along attribute directions.

    Each image is encoded, strength x direction is added for every --attribute, and the result is
    decoded. With --sweep, each input gives a strip: the original, then the single attribute applied
    at each strength (the paper's Figure 7).
    """
    _need_output(output, grid, options="'-o' / '--grid'")
    _check_image_suffix(grid, "--grid")
    specs = [_parse_attribute_spec(spec) for spec in attributes]
    if sweep is not None:
        if len(specs) != 1:
            raise _usage("--sweep takes exactly one --attribute", "--sweep")
        if specs[0][1] is not None:
            raise _usage("--sweep sets the strengths; drop =STRENGTH from --attribute", "--sweep")
    with session(quiet=quiet, debug=debug) as out:
        import torch

        from dcvae_tools.latent import parse_sweep

        strengths = parse_sweep(sweep) if sweep is not None else None
        paths = _expand(images)
        loaded = _load(model, revision, device, dtype, batch_size, offline, cache_dir)
        edits = [(_resolve_attribute(key, loaded), 1.0 if s is None else s) for key, s in specs]
        names = _output_names([str(p) for p in paths], len(paths))
        columns = 1 + (len(strengths) if strengths is not None else 1)
        rows: list[torch.Tensor] = []
        with contextlib.ExitStack() as stack:
            stage = stack.enter_context(_staged_dir(output)) if output is not None else None
            done = 0
            for _, x in _image_batches(loaded, paths, out, "editing"):
                z = loaded.posterior(x)[0]
                if strengths is None:
                    variants = [loaded.edit(z, edits).cpu()]
                else:
                    vector = edits[0][0]
                    variants = [loaded.edit(z, [(vector, s)]).cpu() for s in strengths]
                for i in range(len(x)):
                    row = torch.stack([x[i].cpu(), *(v[i] for v in variants)])
                    if stage is not None:
                        if strengths is None:
                            _save_one(loaded, row[1], stage / names[done], upscale or 1)
                        else:
                            _save_grid(loaded, row, stage / names[done], columns, _grid_upscale(loaded, upscale))
                    if grid is not None:
                        rows.append(row)
                    done += 1
            if grid is not None:
                _save_grid(loaded, torch.cat(rows), grid, columns, _grid_upscale(loaded, upscale))
        what = (
            ", ".join(f"{v.name}={s:g}" for v, s in edits)
            if strengths is None
            else (f"{edits[0][0].name} at {', '.join(f'{s:g}' for s in strengths)}")
        )
        written = [f"{len(paths)} {'strips' if strengths else 'images'} in {output}/"] if output is not None else []
        written += [str(grid)] if grid is not None else []
        out.done(f"edited {len(paths)} images ({what}): wrote {' and '.join(written)}")


# ---------------------------------------------------------------------------- entry point


def main() -> None:
    """Console-script entry point: run the app, mapping anything that escaped the commands to one line.

    Commands already turn their expected errors into ``error: ...`` and exit status 1 (see
    :func:`dcvae_tools._cli_output.session`); this catches the rest, e.g. Ctrl-C (status 130).
    """
    debug = debug_requested("--debug" in sys.argv[1:])
    try:
        app()
    except KeyboardInterrupt:
        if debug:
            raise
        Output().error("interrupted")
        sys.exit(130)
    except Exception as err:
        if debug:
            raise
        Output().error(f"{type(err).__name__}: {err} (rerun with --debug for the traceback)")
        sys.exit(1)


if __name__ == "__main__":
    main()
