"""The app's temporary files: one private folder per server, and nothing written anywhere else.

:func:`prepare_environment` must run before gradio is imported: it points gradio's own cache (uploads and the
images it serves, ``GRADIO_TEMP_DIR``) and matplotlib's (``MPLCONFIGDIR``) into the app's folder and turns
gradio's analytics off (the app is
meant to run offline; analytics would try to reach the internet). :class:`TempFiles` writes the downloads
(PNG, GIF, latents as safetensors) there, each under a fresh name, and deletes those older than a day. The
folder is removed when the process exits.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from PIL import Image

_ROOT: Path | None = None


def app_temp_root() -> Path:
    """This process's private temporary folder (created on first use, removed at exit)."""
    global _ROOT
    if _ROOT is None or not _ROOT.is_dir():
        _ROOT = Path(tempfile.mkdtemp(prefix="dcvae-app-"))
        atexit.register(shutil.rmtree, _ROOT, True)
    return _ROOT


def prepare_environment() -> Path:
    """Set gradio's environment before it is imported: its cache inside :func:`app_temp_root`, analytics off,
    and matplotlib's config and font cache (gradio imports matplotlib) there too rather than in the home folder.

    A ``GRADIO_TEMP_DIR`` or ``MPLCONFIGDIR`` the user set is kept (their choice). Returns the folder gradio
    will write to.
    """
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    if not os.environ.get("MPLCONFIGDIR"):
        os.environ["MPLCONFIGDIR"] = str(app_temp_root() / "matplotlib")
    if not os.environ.get("GRADIO_TEMP_DIR"):
        os.environ["GRADIO_TEMP_DIR"] = str(app_temp_root() / "gradio")
    Path(os.environ["GRADIO_TEMP_DIR"]).mkdir(parents=True, exist_ok=True)
    return Path(os.environ["GRADIO_TEMP_DIR"])


class TempFiles:
    """Writes the app's downloads into a folder of :func:`app_temp_root`, each in a fresh subfolder so two
    results never share a name (the file name is what the browser saves it as).

    Downloads older than ``max_age_s`` (default a day) are deleted as new ones are written (looked for at most
    every ``prune_every_s``), so a page that serves for weeks does not fill the disk.
    """

    def __init__(self, root: Path | None = None, *, max_age_s: float = 86400.0, prune_every_s: float = 600.0
                 ) -> None:
        self.root = Path(root) if root is not None else app_temp_root() / "downloads"
        self.root.mkdir(parents=True, exist_ok=True)
        self.max_age_s = max_age_s
        self.prune_every_s = prune_every_s
        self._last_prune = time.monotonic()

    def prune(self) -> list[Path]:
        """Delete the download folders older than ``max_age_s``; returns those deleted."""
        cutoff = time.time() - self.max_age_s
        removed = []
        for folder in self.root.iterdir():
            try:
                if folder.is_dir() and folder.stat().st_mtime < cutoff:
                    shutil.rmtree(folder, ignore_errors=True)
                    removed.append(folder)
            except FileNotFoundError:  # another request pruned it first
                continue
        self._last_prune = time.monotonic()
        return removed

    def path(self, name: str) -> Path:
        """A new, empty location ``ROOT/<random>/name``."""
        if Path(name).name != name or name in ("", ".", ".."):
            raise ValueError(f"a download's name must be a plain file name, got {name!r}")
        if time.monotonic() - self._last_prune >= self.prune_every_s:
            self.prune()
        folder = self.root / uuid.uuid4().hex[:12]
        folder.mkdir()
        return folder / name

    def png(self, image: Image.Image, name: str) -> Path:
        """Save a PIL image as PNG."""
        target = self.path(name)
        image.save(target, format="PNG")
        return target

    def gif(self, frames: Sequence[Image.Image], name: str, duration_ms: int = 120, upscale: int = 4) -> Path:
        """Save frames as a looping animated GIF, forwards then back, enlarged ``upscale`` times."""
        from dcvae_tools.images.save import save_gif

        return save_gif(list(frames), self.path(name), duration_ms=duration_ms, upscale=upscale, boomerang=True)

    def latents(self, tensors: Mapping[str, torch.Tensor], name: str, metadata: Mapping[str, Any]) -> Path:
        """Save latents as safetensors (the format ``dcvae decode`` reads: tensor ``latents`` [N, D]); metadata
        values that are not strings are stored as JSON."""
        from dcvae_tools.io_utils import safetensors_bytes

        target = self.path(name)
        meta = {"format": "pt", **{k: v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()}}
        cpu = {k: v.detach().cpu().float().contiguous() for k, v in tensors.items()}
        target.write_bytes(safetensors_bytes(cpu, meta))
        return target
