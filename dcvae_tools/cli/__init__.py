"""The ``dcvae`` command line: one Typer app; each command parses, calls the model API and prints.

Layout:

* :mod:`._app`: the app, its ``--version`` callback and :func:`main`, the console-script entry point;
* :mod:`._options`: the options the commands share (``ModelOpt``, ``DeviceOpt``, ...), the checks
  run before any work and :func:`~._options._load`, which loads the model the options name;
* :mod:`._io`: image batches, latents files, staged output folders and saving images;
* :mod:`._output`: all printing (:class:`~._output.Output`); failures become one ``error:`` line
  (see :func:`~._output.session`);
* :mod:`.hub_commands` (``models``, ``download``, ``info``), :mod:`.image_commands` (``encode``,
  ``decode``, ``reconstruct``, ``sample``) and :mod:`.latent_commands` (``interpolate``, ``mix``,
  ``attribute``, ``edit``) and :mod:`.app_commands` (``app``, the editor in the browser): the commands,
  registered on the app when imported here.

torch and the model are imported inside the commands, never at module level, so that ``dcvae --help``
does not pay for them.
"""

# Importing a command module registers its commands on ``app``; ``dcvae --help`` lists them in this order.
from . import hub_commands, image_commands, latent_commands  # noqa: F401

# isort: split
from . import app_commands  # noqa: F401  (last in --help)
from ._app import app, main

__all__ = ["app", "main"]
