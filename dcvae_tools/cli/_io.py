"""Reading and writing for the commands: image batches, latents files, staged output folders, images.

Outputs are written atomically, and commands that write a folder of images stage them in a hidden
folder first (:func:`_staged_dir`), so a failure leaves no partial output. torch, safetensors and the
image helpers are imported inside the functions.
"""

import contextlib
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, NoReturn

from ._options import _model_name, _model_record
from ._output import Output, one_line

if TYPE_CHECKING:  # for annotations only: torch and the model are imported lazily
    import torch

    from dcvae_tools.model import DCVAE

# ---------------------------------------------------------------------------- output images


def _grid_upscale(model: "DCVAE", upscale: int | None) -> int:
    if upscale is not None:
        return upscale
    return 2 if model.config.image_size <= 32 else 1


def _output_names(sources: Sequence[str] | None, count: int, suffix: str = ".png") -> list[str]:
    """File names for ``count`` outputs: the sources' stems when they are unique, else numbered."""
    if sources and len(sources) == count:
        stems = [Path(s).stem.lstrip(".") or f"{i:05d}" for i, s in enumerate(sources)]
        if len(set(stems)) == count:
            return [f"{stem}{suffix}" for stem in stems]
        return [f"{i:05d}-{stem}{suffix}" for i, stem in enumerate(stems)]
    return [f"{i:05d}{suffix}" for i in range(count)]


class _OutputNames:
    """The output names of ``paths`` (see :func:`_output_names`), handed out in order by :meth:`take`;
    the names of files left out by ``--skip-bad`` are passed over, so every output keeps its name."""

    def __init__(self, paths: Sequence[Path]) -> None:
        self._items = list(zip(paths, _output_names([str(p) for p in paths], len(paths)), strict=True))
        self._next = 0

    @property
    def names(self) -> list[str]:
        """Every output name, in the order of the inputs."""
        return [name for _, name in self._items]

    def take(self, path: Path) -> str:
        """The name for ``path``, the next of the inputs still to come that is this file."""
        while self._items[self._next][0] != path:
            self._next += 1
        self._next += 1
        return self._items[self._next - 1][1]


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


def _save_grid(
    model: "DCVAE", images: "torch.Tensor", path: Path, nrow: int | None, upscale: int,
    labels: Sequence[str] | None = None, row_labels: Sequence[str] | None = None
) -> None:
    from dcvae_tools import images as image_io

    image_io.save_grid(
        images, path, nrow=nrow, content_size=model.config.content_size, upscale=upscale, column_labels=labels,
        row_labels=row_labels,
    )


# ---------------------------------------------------------------------------- output folders


def _refuse_overwriting_inputs(targets: Iterable[Path], inputs: Iterable[Path], option: str) -> None:
    """Refuse, before any work, an output that would replace one of the command's own input files
    (``option`` names the output option in the message)."""
    from dcvae_tools.errors import DCVAEError

    targets = list(targets)
    for target in targets:
        blocking = next((parent for parent in target.parents if parent.exists()), None)
        if blocking is not None and not blocking.is_dir():
            raise DCVAEError(f"{option} {target}: {blocking} is a file, not a folder, so nothing can be written "
                             f"under it; choose another {option}")
    existing = [target for target in targets if target.exists()]
    for target in existing:
        if target.is_dir():
            raise DCVAEError(
                f"{target} is a folder, so the output {target.name} cannot be written there; move it away or "
                f"choose another {option}"
            )
    if not existing:
        return  # the usual first run: nothing to compare
    protected = {path.resolve(): path for path in inputs if path.exists()}
    for target in existing:
        source = protected.get(target.resolve())
        if source is not None:
            raise DCVAEError(
                f"{option} {target} would overwrite the input {source}; write the outputs somewhere else"
            )


def _refuse_output_in_model_folder(output: Path, model: "DCVAE", fix: str) -> None:
    """Refuse, before any work, an output file in the loaded model's folder, or one named like a release's file in
    any other checkpoint folder (one holding a config.json and a model.safetensors: a bundled release, a Hub cache
    snapshot): replacing a file there (its attributes, its weights) would make that model fail its hash check from
    then on (a subfolder, or another name beside another model's files, replaces nothing)."""
    from dcvae_tools.errors import DCVAEError
    from dcvae_tools.manifest import TRAINING_STATE_NAME
    from dcvae_tools.release import CONFIG_NAME, RELEASE_FILES, WEIGHTS_NAME

    target = output.resolve()
    source = getattr(model, "source", None)
    if source is not None:
        folder = Path(source.folder).resolve()
        if folder in (target, target.parent):
            raise DCVAEError(f"{output} is in the folder of the model loaded ({folder}), whose files are checked "
                             f"against their hashes; {fix}")
    folder = target.parent
    if (target.name in (*RELEASE_FILES, TRAINING_STATE_NAME) and (folder / CONFIG_NAME).is_file()
            and (folder / WEIGHTS_NAME).is_file()):
        raise DCVAEError(f"{output} would replace a file of the checkpoint in {folder} (another model than the one "
                         f"loaded), whose files are checked against their hashes; {fix}")


def _refuse_overwriting_images(paths: Sequence[Path], output: Path | None, names: Sequence[str],
                               grid: Path | None, *, folder_option: str = "-o", grid_option: str = "--grid") -> None:
    """:func:`_refuse_overwriting_inputs` for a command that writes one file per input image into
    ``output`` (named by ``names``) and/or a ``grid``."""
    from dcvae_tools.errors import DCVAEError

    if output is not None:
        _refuse_overwriting_inputs([output / name for name in names], paths, folder_option)
    if grid is not None:
        _refuse_overwriting_inputs([grid], paths, grid_option)
        if output is not None and grid.parent.resolve() == output.resolve() and grid.name in set(names):
            raise DCVAEError(f"{grid_option} {grid} has the name of one of the images written to {folder_option} "
                             f"{output}; give the grid another name or folder")


@contextlib.contextmanager
def _staged_file(path: Path) -> Iterator[Path]:
    """Yield a hidden name beside ``path`` (with its suffix, so the format still follows it); what is written there
    is moved onto ``path`` only if the whole body succeeds, and deleted otherwise. Entered in one ExitStack with a
    command's other outputs (before a :func:`_staged_dir`, so it moves after the folder's files), a failure anywhere
    leaves none of them."""
    import uuid

    staged = path.with_name(f".{path.name}.staged-{uuid.uuid4().hex[:8]}{path.suffix}")
    try:
        yield staged
        if staged.exists():
            os.replace(staged, path)
    except Exception as err:  # a message about the staged file is about the user's: name theirs
        if len(err.args) == 1 and isinstance(err.args[0], str) and str(staged) in err.args[0]:
            err.args = (err.args[0].replace(str(staged), str(path)),)
        if isinstance(err, OSError) and err.filename is not None and str(err.filename) == str(staged):
            err.filename = str(path)
        raise
    finally:
        with contextlib.suppress(OSError):
            staged.unlink()


@contextlib.contextmanager
def _staged_dir(folder: Path, inputs: Sequence[Path] = (), option: str = "-o") -> Iterator[Path]:
    """Yield a hidden staging folder inside ``folder``; its files are moved in only if the body succeeds.

    On failure the staging folder is deleted (and so are ``folder`` and any parents this created, while
    empty), so a command that fails half-way leaves no output at all. Before anything is moved, every output
    is checked: one whose place in ``folder`` is taken by a folder, or by one of ``inputs``, stops the command
    with nothing moved.
    """
    from dcvae_tools.errors import DCVAEError
    from dcvae_tools.io_utils import missing_folders, remove_empty_folders

    if folder.exists() and not folder.is_dir():
        raise DCVAEError(f"{folder} exists and is not a folder; give {option} a folder path")
    created = missing_folders(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".dcvae-tmp-", dir=folder))
    committed = False
    try:
        yield stage
        staged = sorted(stage.iterdir())
        # checked again here, the outputs being known now: a folder or an input may have appeared meanwhile
        _refuse_overwriting_inputs([folder / item.name for item in staged], inputs, option)
        for item in staged:
            os.replace(item, folder / item.name)
        committed = True
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        if not committed:
            remove_empty_folders(created)


# ---------------------------------------------------------------------------- batches through the model


def _expand(paths: Sequence[Path], recursive: bool = False) -> list[Path]:
    from dcvae_tools.images import expand_image_paths

    return expand_image_paths(list(paths), recursive=recursive)


Skipped = list[tuple[Path, str]]
"""Bad image files passed over by ``--skip-bad``: (file, why), in the order they were met."""


def _image_batches(
    model: "DCVAE",
    paths: Sequence[Path],
    out: Output,
    description: str = "encoding",
    skipped: Skipped | None = None,
    can_skip: bool = True,
) -> Iterator[tuple[list[Path], "torch.Tensor"]]:
    """Yield (paths, model-format tensor) per batch of ``model.batch_size`` images, with a progress bar.

    With ``skipped`` (``--skip-bad``), a file that cannot be read or converted is left out of its batch
    and recorded there instead of stopping the command; a batch with no good file is not yielded. Without it,
    a bad file among several stops the command, naming --skip-bad when ``can_skip`` (the command has it).
    """
    size = model.batch_size
    with out.progress(len(paths), description) as advance:
        for start in range(0, len(paths), size):
            chunk = list(paths[start : start + size])
            if skipped is None:
                yield chunk, _convert_or_explain(model, chunk, several=can_skip and len(paths) > 1)
            else:
                good, tensor = _convert_skipping(model, chunk, skipped)
                if good:
                    yield good, tensor
            advance(len(chunk))


def _convert_or_explain(model: "DCVAE", chunk: list[Path], several: bool) -> "torch.Tensor":
    """Convert a batch; a bad file among several stops the command with the way round it (--skip-bad)."""
    from dcvae_tools.errors import ImageError

    try:
        return model.images_to_tensor(chunk)
    except ImageError as err:
        if not several:
            raise
        raise ImageError(f"{err}; pass --skip-bad to leave unreadable files out and go on") from None


def _convert_skipping(model: "DCVAE", chunk: list[Path], skipped: Skipped) -> tuple[list[Path], "torch.Tensor"]:
    """Convert a batch; if a file in it is bad, convert file by file and record the bad ones in ``skipped``."""
    import torch

    from dcvae_tools.errors import ImageError

    try:
        return chunk, model.images_to_tensor(chunk)
    except ImageError:
        pass
    good, tensors = [], []
    for path in chunk:
        try:
            tensors.append(model.images_to_tensor([path]))
        except ImageError as err:
            message = one_line(str(err))
            skipped.append((path, message.removeprefix(f"{path}: ")))
        else:
            good.append(path)
    return good, (torch.cat(tensors) if tensors else torch.empty(0))


def _no_good_images(
    out: Output, skipped: Skipped, bad: Skipped, what: str = "images", outcome: str = "nothing written"
) -> NoReturn:
    """Report ``skipped`` and raise the error for a ``--skip-bad`` run in which all the ``what`` were ``bad``."""
    from dcvae_tools.errors import ImageError

    _report_skipped(out, skipped)
    first = f" (first: {bad[0][0]}: {bad[0][1]})" if bad else ""
    raise ImageError(f"all {len(bad)} {what} are unreadable{first}; {outcome}")


def _report_skipped(out: Output, skipped: Skipped) -> None:
    """One ``warning:`` line per skipped file (shown even with -q), at the end of a ``--skip-bad`` run."""
    for path, reason in skipped:
        out.warn(f"skipped {path}: {reason}")


def _skipped_summary(skipped: Skipped | None) -> str:
    """The end of a command's final line: how many bad files were skipped (empty without --skip-bad)."""
    if not skipped:
        return ""
    return f"; skipped {len(skipped)} bad file{'s' if len(skipped) > 1 else ''} (listed above)"


def _skipped_records(skipped: Skipped) -> list[dict[str, str]]:
    """The skipped files as JSON-ready records, for output metadata and --json."""
    return [{"file": str(path), "reason": reason} for path, reason in skipped]


class Encoded(NamedTuple):
    """Posterior of image files: means and log-variances [N, D], the input tensors if kept, the files used."""

    mu: "torch.Tensor"
    logvar: "torch.Tensor"
    images: "torch.Tensor | None"
    paths: list[Path]


def _encode_paths(
    model: "DCVAE",
    paths: Sequence[Path],
    out: Output,
    keep_images: bool = False,
    skipped: Skipped | None = None,
    what: str = "images",
    can_skip: bool = True,
) -> Encoded:
    """Posterior (mu, logvar) of image files, batch by batch; plus the input tensors if asked.

    With ``skipped`` (``--skip-bad``) bad files are left out and recorded there; ``paths`` of the result
    are the files encoded, row by row. If every file is bad, an ImageError says so (``what`` names them).
    ``can_skip``: the command has --skip-bad (its error for a bad file suggests it).
    """
    import torch

    mus, logvars, inputs, used = [], [], [], []
    bad: Skipped | None = [] if skipped is not None else None
    for chunk, x in _image_batches(model, paths, out, skipped=bad, can_skip=can_skip):
        mu, logvar = model.posterior(x)
        mus.append(mu.cpu())
        logvars.append(logvar.cpu())
        used.extend(chunk)
        if keep_images:
            inputs.append(x)
    if skipped is not None and bad:
        skipped.extend(bad)
    if not used:
        _no_good_images(out, skipped or [], bad or [], what)
    return Encoded(torch.cat(mus), torch.cat(logvars), torch.cat(inputs) if keep_images else None, used)


def _decode_batches(
    model: "DCVAE", latents: "torch.Tensor", out: Output, description: str = "decoding", source: str = "the latents"
) -> Iterator[tuple[int, "torch.Tensor"]]:
    """Yield (start index, decoded images on the CPU) per batch of ``model.batch_size`` latents.

    Latents far outside the model's range (finite, but huge) decode to NaN; that is raised as a
    LatentError naming ``source`` and the rows, instead of failing later when the images are saved.
    """
    return ((start, decoded) for start, _, decoded in _decode_stream(model, iter([latents]), len(latents), out,
                                                                      description, source))


def _decode_stream(
    model: "DCVAE",
    chunks: Iterator["torch.Tensor"],
    total: int,
    out: Output,
    description: str = "decoding",
    source: str = "the latents",
) -> Iterator[tuple[int, "torch.Tensor", "torch.Tensor"]]:
    """:func:`_decode_batches` over latents that come in pieces (a sharded folder's shards), yielding (start, the
    batch's latents, their decodings); ``total`` rows in all, start indices counted across the pieces."""
    size = model.batch_size
    offset = 0
    with out.progress(total, description) as advance:
        for latents in chunks:
            for start in range(0, len(latents), size):
                chunk = latents[start : start + size]
                decoded = model.decode(chunk).cpu()
                _check_decoded(decoded, chunk, source, offset + start)
                yield offset + start, chunk, decoded
                advance(len(chunk))
            offset += len(latents)


def _check_decoded(
    images: "torch.Tensor", latents: "torch.Tensor", source: str, start: int = 0, unit: str = "row"
) -> None:
    """Raise LatentError naming ``source`` if some of ``images`` (decoded from ``latents``) are not finite."""
    from dcvae_tools.errors import LatentError
    from dcvae_tools.latent import nonfinite_rows

    broken = nonfinite_rows(images)
    if broken:
        rows = ", ".join(str(start + i) for i in broken[:5]) + (" ..." if len(broken) > 5 else "")
        largest = float(latents.abs().max())
        raise LatentError(
            f"{source}: {unit}(s) {rows} decode to NaN or infinite pixels; the latents (largest |z| = {largest:.3g}) "
            "are far outside the model's range"
        )


# ---------------------------------------------------------------------------- latents files


def _write_safetensors(path: Path, tensors: dict[str, "torch.Tensor"], metadata: dict[str, str]) -> None:
    """Write a safetensors file atomically (a temporary file in the same folder, then a rename), the same bytes
    for the same latents and metadata."""
    from dcvae_tools.io_utils import atomic_write_bytes, safetensors_bytes

    cpu = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    atomic_write_bytes(path, safetensors_bytes(cpu, metadata))


def _read_latents_missing(path: Path) -> NoReturn:
    """Raise the error for a latents file that does not exist (checked before loading the model)."""
    from dcvae_tools.errors import LatentError
    from dcvae_tools.images import FOLDER_SUFFIXES

    if path.is_dir():
        what = "is a folder without index.json, not a latents file or sharded latents folder"
        if any(p.suffix.lower() in FOLDER_SUFFIXES for p in path.iterdir()):
            raise LatentError(f"{path}: {what}; it holds images: {_IMAGES_GO_ELSEWHERE}")
    else:
        what = "no such latents file"
    raise LatentError(f"{path}: {what}; write one with `dcvae encode IMAGES -o {path.name}`")


_IMAGES_GO_ELSEWHERE = "`dcvae reconstruct` takes images, or `dcvae encode` turns them into latents"


def _not_latents_fix(path: Path) -> str:
    """What to do about a file given as latents that is not one: images go another way."""
    from dcvae_tools.images import FOLDER_SUFFIXES

    if path.suffix.lower() in FOLDER_SUFFIXES:
        return f"it looks like an image: {_IMAGES_GO_ELSEWHERE}"
    return "latents files are written by `dcvae encode IMAGES -o z.safetensors`"


def _is_latents(path: Path) -> bool:
    """Whether ``path`` is a latents file or a sharded latents folder (one with an index.json)."""
    from dcvae_tools.encoding import is_sharded

    return path.is_file() or is_sharded(path)


def _read_latents(path: Path, model: "DCVAE") -> tuple["torch.Tensor", dict[str, str]]:
    """Read tensor ``latents`` [N, D] of a safetensors file or a sharded latents folder, checking D against
    the model (a folder's shards are checked against their sha256 and joined in order)."""
    from safetensors import SafetensorError

    from dcvae_tools.encoding import load_latents
    from dcvae_tools.errors import LatentError

    if not _is_latents(path):
        _read_latents_missing(path)
    try:
        latents, metadata = load_latents(path)
    except (SafetensorError, OSError, ValueError) as err:
        raise LatentError(
            f"{path} is not a readable safetensors file ({one_line(str(err))}); {_not_latents_fix(path)}"
        ) from None
    checked = _checked_latents(latents, path, metadata, model)
    _recorded_model(path, metadata, model)
    return checked, metadata


def _warn_if_other_model(path: Path, model: "DCVAE", what: str, *, name: object,
                         weights_sha256: object = None) -> None:
    """Warn when ``path`` records that other weights than the loaded model's made it: latents and directions
    only mean something to the weights that made them, whatever their shape.

    The recorded ``weights_sha256`` decides when there is one (the same weights under another name, such as a
    release loaded by its repo id, pass; a folder retrained in place does not); older files without it are
    judged by the recorded model ``name``.
    """
    current = _model_record(model)
    recorded = name if isinstance(name, str) else ""
    if isinstance(weights_sha256, str) and weights_sha256:
        if weights_sha256 == model.weights_sha256():
            return
        if recorded and _is_loaded_model(recorded, model):  # e.g. a local folder retrained in place
            made_by, fix = f"another version of {current!r}", "make them again with the model loaded"
        else:
            made_by = f"model {recorded!r}" if recorded else "another model"
            fix = (f"pass -m {recorded}, or " if recorded else "") + f"make them again with {current!r}"
        warnings.warn(
            f"{path} holds {what} made by {made_by}, whose weights differ from those of the model loaded "
            f"({current!r}): they only mean something to the weights that made them; {fix}",
            stacklevel=2,
        )
        return
    if not recorded or current == "model" or _is_loaded_model(recorded, model):
        return
    warnings.warn(
        f"{path} holds {what} made by model {recorded!r}, but the model loaded is {current!r}: they only mean "
        f"something to the model that made them; pass -m {recorded}",
        stacklevel=2,
    )


def _is_loaded_model(recorded: str, model: "DCVAE") -> bool:
    """Whether a recorded model name names the loaded model: the same name, or (for a model loaded from a local
    folder) a path to that folder, however it was written."""
    from dcvae_tools.hub import is_explicit_path
    from dcvae_tools.manifest import load_manifest

    source = getattr(model, "source", None)
    if source is None or source.source != "local":
        return recorded == _model_name(model)
    if recorded == _model_record(model):
        return True
    if not is_explicit_path(recorded) and load_manifest().get(recorded) is not None:
        return False  # a released name, not a local folder that happens to share it
    theirs = Path(recorded).expanduser()
    return theirs.exists() and theirs.resolve() == Path(source.folder).resolve()


def _recorded_model(path: Path, metadata: Mapping[str, Any], model: "DCVAE", what: str = "latents") -> None:
    """:func:`_warn_if_other_model` for the metadata of a latents file or folder, or of a direction."""
    _warn_if_other_model(path, model, what, name=metadata.get("model"), weights_sha256=metadata.get("weights_sha256"))


def _checked_latents(latents: "torch.Tensor", path: Path, metadata: dict[str, str], model: "DCVAE") -> "torch.Tensor":
    """``latents`` as float32 once checked: [N, D] with the model's D, N > 0, all finite."""
    from dcvae_tools.errors import LatentError

    dim = model.latent_dim
    if latents.ndim == 2 and latents.shape[1] == dim and len(latents) == 0:
        raise LatentError(f"{path} holds no latents (0 rows); encode some images into it first")
    if latents.ndim != 2 or latents.shape[1] != dim:
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
    return latents


def _latent_chunks(path: Path, model: "DCVAE") -> tuple[int, list[str] | None, str | None, Iterator["torch.Tensor"]]:
    """(rows, their source files, the working folder the sources are relative to, the latents in pieces): a
    file in one piece, a sharded folder shard by shard (read as they are used, each checked against its sha256
    and the model)."""
    from dcvae_tools.encoding import is_sharded, iter_shards, read_index, source_files

    if not is_sharded(path):
        latents, metadata = _read_latents(path, model)
        return len(latents), _source_files(metadata), metadata.get("working_dir"), iter([latents])
    index = read_index(path)
    meta = _index_metadata(index)
    _recorded_model(path, meta, model)
    chunks = (_checked_latents(z, path, meta, model) for z, _ in iter_shards(path))
    if not index["total_rows"]:
        _checked_latents(_empty(model), path, meta, model)
    return int(index["total_rows"]), source_files(path), meta.get("working_dir"), chunks


def _index_metadata(index: dict[str, Any]) -> dict[str, str]:
    """What a sharded folder's index records about its making, keyed as a latents file's metadata."""
    recorded = {"model": index["model"].get("name"), "weights_sha256": index["model"].get("weights_sha256"),
                "working_dir": index.get("working_dir")}
    return {key: str(value) for key, value in recorded.items() if isinstance(value, str) and value}


def _encoded_originals(sources: Sequence[str] | None, working_dir: str | None) -> list[Path]:
    """The images latents were encoded from, as seen from here and, for relative paths, from the folder the
    encode ran in: decoding must replace neither."""
    originals = [Path(source) for source in sources or []]
    if working_dir:
        originals += [Path(working_dir) / path for path in originals if not path.is_absolute()]
    return originals


def _empty(model: "DCVAE") -> "torch.Tensor":
    import torch

    return torch.empty(0, model.latent_dim)


def _source_files(metadata: dict[str, str]) -> list[str] | None:
    import json

    try:
        files = json.loads(metadata.get("files", "null"))
    except ValueError:
        return None
    return [str(f) for f in files] if isinstance(files, list) else None
