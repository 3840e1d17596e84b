"""Latents named on the command line: ``LATENTS.safetensors``, ``LATENTS_DIR`` (a sharded folder), and one row of
either (``:ROW``). One reading for every command that takes them beside images (``interpolate``, ``mix``, ``edit``).

An existing path is always taken literally, so a file whose name holds ':' is never split; a name is split at its
last ':' only when the part before it is a latents file or folder. Rows are ASCII digits (``int`` would read
other scripts' digits, ``str.isdigit`` would pass superscripts that ``int`` then refuses).
"""

import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from ._io import _checked_latents, _index_metadata, _read_latents, _read_latents_missing, _recorded_model

if TYPE_CHECKING:  # for annotations only: the commands import torch and the model lazily
    import torch

    from dcvae_tools.model import DCVAE

_ROW = re.compile(r"[0-9]+")


class LatentsRef(NamedTuple):
    """A latents file or sharded folder and the row picked from it (None: every row)."""

    path: Path
    row: int | None

    def __str__(self) -> str:
        return str(self.path) if self.row is None else f"{self.path}:{self.row}"


def _names_latents(path: Path, with_row: bool = False) -> bool:
    """Whether ``path`` names a latents file or folder. A folder with an ``index.json`` that is not a latents
    index is an image folder, unless a row was asked of it (``with_row``): then the index's problem is told."""
    from dcvae_tools.encoding.index import is_latents_folder, is_sharded, load_index_file

    if not path.is_dir():
        return path.suffix.lower() == ".safetensors"
    if is_latents_folder(path):
        return True
    if with_row and is_sharded(path):
        load_index_file(path, fix="':ROW' picks a row of a folder written by `dcvae encode IMAGES -o DIR`")
    return False


def parse_latents_ref(ref: str | Path) -> LatentsRef | None:
    """The latents ``ref`` names, or None when it names an image or image folder (or nothing).

    Refused here, before any model loads (LatentError): a latents file that does not exist and a row that is not
    a whole number from 0.
    """
    from dcvae_tools.errors import LatentError

    text = str(ref)
    path = Path(text)
    if path.exists():
        return LatentsRef(path, None) if _names_latents(path) else None
    head, sep, tail = text.rpartition(":")
    if sep and head and not re.search(r"[/\\]", tail) and _names_latents(Path(head), with_row=True):
        if not Path(head).exists():
            _read_latents_missing(Path(head))
        if not _ROW.fullmatch(tail):
            raise LatentError(f"{text}: the row after ':' must be a whole number from 0, e.g. {head}:0 (got {tail!r})")
        return LatentsRef(Path(head), int(tail))
    if path.suffix.lower() == ".safetensors":
        _read_latents_missing(path)
    return None


def _out_of_range(path: Path, total: int, row: int) -> str:
    valid = f"0-{total - 1}" if total else "it holds none"
    return f"{path} holds {total} latents: row {row} is out of range ({valid})"


def count_rows(ref: LatentsRef) -> int | None:
    """How many latents ``ref`` gives, read from the file's header or the folder's index (no tensor is loaded);
    None when the file cannot be read that way (reading it later says why). A row out of range is refused
    here, before any model loads."""
    from dcvae_tools.encoding import is_sharded, read_index
    from dcvae_tools.encoding.index import shard_header
    from dcvae_tools.errors import LatentError

    if is_sharded(ref.path):
        total: int | None = int(read_index(ref.path)["total_rows"])
    else:
        header = shard_header(ref.path)
        total = header[1][0] if header is not None and len(header[1]) == 2 else None
    if total == 0:
        raise LatentError(f"{ref.path} holds no latents (0 rows); encode some images into it first")
    if ref.row is None:
        return total
    if total is not None and ref.row >= total:
        raise LatentError(_out_of_range(ref.path, total, ref.row))
    return 1


WholeFileReader = Callable[[Path, "DCVAE"], "torch.Tensor"]


def _read_whole(path: Path, model: "DCVAE") -> "torch.Tensor":
    return _read_latents(path, model)[0]


def read_latents_ref(ref: LatentsRef, model: "DCVAE", read_whole: WholeFileReader = _read_whole) -> "torch.Tensor":
    """The latents [N, D] ``ref`` names, checked against the model (dimension, finite values, the model that
    made them). One row of a sharded folder reads only its shard; ``read_whole`` reads every other file (a
    caller reading many rows of one file passes a caching reader)."""
    from dcvae_tools.encoding import is_sharded, read_index, read_row
    from dcvae_tools.errors import LatentError

    if ref.row is not None and is_sharded(ref.path):
        meta = _index_metadata(read_index(ref.path))
        latent = _checked_latents(read_row(ref.path, ref.row).unsqueeze(0), ref.path, meta, model)
        _recorded_model(ref.path, meta, model)
        return latent
    latents = read_whole(ref.path, model)
    if ref.row is None:
        return latents
    if ref.row >= len(latents):
        raise LatentError(_out_of_range(ref.path, len(latents), ref.row))
    return latents[ref.row : ref.row + 1]
