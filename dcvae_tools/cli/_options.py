"""Options shared by the commands, the checks run before any work, and loading the model they name.

Nothing here imports torch at module level: :func:`_load` and :func:`_resolve_device` import it when
a command runs.
"""

import contextlib
import os
import secrets
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:  # for annotations only: the model is imported lazily
    from dcvae_tools.model import DCVAE


class Dtype(StrEnum):
    """Compute precision choices."""

    float32 = "float32"
    bfloat16 = "bfloat16"
    float16 = "float16"


class Prior(StrEnum):
    """Where sampled latents come from."""

    auto = "auto"
    mixture = "mixture"
    standard = "standard"


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
        help=(
            "Compute precision; half-precision batches that overflow are redone in float32. bfloat16 is faster "
            "on a GPU or a CPU with native bfloat16 (AVX-512 BF16, AMX), much slower on other CPUs."
        ),
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
        max=2**64 - 1,  # what torch.Generator takes
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
LabelsOpt = Annotated[
    bool,
    typer.Option(
        "--labels/--no-labels",
        help="Head each grid column with what it shows, in a strip on top (--no-labels: the bare grid).",
    ),
]
NrowOpt = Annotated[
    int | None,
    typer.Option("--nrow", metavar="N", min=1, show_default="square-ish", help="Images per grid row."),
]
RecursiveOpt = Annotated[
    bool,
    typer.Option(
        "--recursive",
        "-r",
        help="Also take the images in the subfolders of a folder given as input (by default only the images "
        "directly inside it; a warning counts those left out).",
    ),
]
SkipBadOpt = Annotated[
    bool,
    typer.Option(
        "--skip-bad",
        help="Skip image files that cannot be read (corrupt, truncated, not an image, too many pixels): each is "
        "listed at the end with the reason and recorded in the output's metadata where it has some. Without it "
        "the first bad file stops the command. Paths that do not exist are always an error.",
    ),
]
ImagesArg = Annotated[
    list[Path],
    typer.Argument(
        metavar="IMAGES", help="Image files and/or folders (the images directly inside; -r for subfolders too)."
    ),
]


# ---------------------------------------------------------------------------- checks before any work


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


def _check_folder_output(path: Path | None, option: str = "-o", grid_option: str = "--grid") -> None:
    """Refuse an image file name given to an option that names a folder of images (it would become a folder
    called ``out.png``); an existing folder of that name is fine."""
    if path is None or path.is_dir():
        return
    from dcvae_tools.images import FOLDER_SUFFIXES

    if path.suffix.lower() in FOLDER_SUFFIXES:
        raise _usage(f"{path} is an image file name, but {option} is the folder that gets one image per input; "
                     f"give a folder (e.g. {option} {path.with_suffix('')}/), or {grid_option} {path} for one grid "
                     "image", option)


def _check_safetensors_suffix(path: Path, option: str) -> None:
    if path.suffix.lower() != ".safetensors":
        raise _usage(f"{path}: the file name must end in .safetensors", option)


def _count(number: int, noun: str) -> str:
    """``"1 image"``, ``"3 images"``: a count with its noun in the right number (plural by adding "s")."""
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


class _CommandUsageError(typer.BadParameter):
    """A usage error about the command as a whole rather than one option's value (exit status 2, with the usage
    line), printed as its message alone instead of "Invalid value: ..."."""

    def format_message(self) -> str:
        return self.message


def _need_output(*outputs: object, options: tuple[str, str]) -> None:
    """Refuse a run that would write nothing (``options``: the two output options as the user writes them, e.g.
    ``("-o OUT_DIR", "--grid GRID.png")``)."""
    if all(o is None for o in outputs):
        raise _CommandUsageError(f"nothing to write: give {options[0]}, {options[1]} or both")


# ---------------------------------------------------------------------------- the model


def _resolve_device(device: str | None) -> str:
    """``None`` -> cuda if available, else cpu; anything else is checked before the model is built."""
    import torch

    from dcvae_tools.arguments import check_device

    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    check_device(device, cli=True)
    return device


def _hub_offline(offline: bool) -> contextlib.AbstractContextManager[None]:
    """huggingface_hub's own offline flag on for the duration (see dcvae_tools.hub.hub_offline_mode)."""
    from dcvae_tools.hub import hub_offline_mode

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


def _model_record(model: "DCVAE") -> str:
    """How files record the model that made them (:attr:`~dcvae_tools.hub.ResolvedModel.recorded_name`)."""
    source = getattr(model, "source", None)
    return source.recorded_name if source is not None else _model_name(model)


def _pick_seed(seed: int | None) -> int:
    """The given seed, or a fresh random one (printed by the caller so the run can be repeated)."""
    return seed if seed is not None else secrets.randbelow(2**31)
