"""Reading and writing for the commands: image batches, latents files, staged output folders, images.

Outputs are written atomically, and commands that write a folder of images stage them in a hidden
folder first (:func:`_staged_dir`), so a failure leaves no partial output. torch, safetensors and the
image helpers are imported inside the functions.
"""

import contextlib
import math
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from ._options import _model_name
from ._output import Output, one_line

if TYPE_CHECKING:  # for annotations only: torch and the model are imported lazily
    import torch

    from dcvae_tools.model import DCVAE

# ---------------------------------------------------------------------------- output images


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


# ---------------------------------------------------------------------------- output folders


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


# ---------------------------------------------------------------------------- batches through the model


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


# ---------------------------------------------------------------------------- latents files


def _write_safetensors(path: Path, tensors: dict[str, "torch.Tensor"], metadata: dict[str, str]) -> None:
    """Write a safetensors file atomically (a temporary file in the same folder, then a rename)."""
    from safetensors.torch import save_file

    from dcvae_tools.io_utils import atomic_write

    with atomic_write(path) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp), metadata=metadata)


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
