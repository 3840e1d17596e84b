"""The DC-VAE latent editor (`dcvae app`) as a script: what a Hugging Face Space runs.

A gradio Space runs ``python app.py`` from the Space's repository: a copy of this repository (``dcvae_tools/``,
``weights_manifest.json`` and ``docs/examples/`` are what the editor uses), whose README.md carries the Space's
metadata and whose requirements.txt lists the dependencies; docs/app.md says how. Locally, ``python app.py`` is the
same as ``dcvae app``.

Environment: ``DCVAE_APP_MODEL`` picks the first model (default: the package's default model); on a Space
(``SPACE_ID`` is set) visitors cannot load folders of the server by path, and gradio's own ``GRADIO_SERVER_NAME`` /
``GRADIO_SERVER_PORT`` decide where it listens.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# this checkout's dcvae_tools, also where the package is not pip-installed (a Space installs requirements.txt only)
sys.path.insert(0, str(Path(__file__).resolve().parent))

from dcvae_tools.app import launch

if __name__ == "__main__":
    on_space = bool(os.environ.get("SPACE_ID"))
    launch(os.environ.get("DCVAE_APP_MODEL") or None, host=None if on_space else "127.0.0.1",
           allow_local_folders=not on_space)
