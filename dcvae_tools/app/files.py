"""The app's temporary files: one private folder per server, and nothing written anywhere else.

:func:`prepare_environment` must run before gradio is imported: it points gradio's own cache (uploads and the
images it serves, ``GRADIO_TEMP_DIR``) and matplotlib's (``MPLCONFIGDIR``) into the app's folder and turns
gradio's analytics off (the app is
meant to run offline; analytics would try to reach the internet). :class:`TempFiles` writes the downloads
(PNG, GIF, latents as safetensors) there, each under a fresh name. The folder is removed when the process
exits.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
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
    results never share a name (the file name is what the browser saves it as)."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else app_temp_root() / "downloads"
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, name: str) -> Path:
        """A new, empty location ``ROOT/<random>/name``."""
        if Path(name).name != name or name in ("", ".", ".."):
            raise ValueError(f"a download's name must be a plain file name, got {name!r}")
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
        from safetensors.torch import save_file

        target = self.path(name)
        meta = {"format": "pt", **{k: v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()}}
        save_file({k: v.detach().cpu().float().contiguous() for k, v in tensors.items()}, str(target), metadata=meta)
        return target
