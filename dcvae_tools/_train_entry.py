"""The ``dcvae-train`` console script.

Installed from a wheel (``pip install "dcvae-tools[train]"``) the trainer is the bundled subpackage
``dcvae_tools.training`` (the repository's top-level ``training/``, shipped under that name). In a source checkout
(``pip install -e .``) it is the checkout's own top-level ``training`` package, the one next to ``dcvae_tools/``.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path

_BUNDLED = f"{__package__}.training"


def _checkout_training_main() -> Callable[[], None] | None:
    """``training.cli.main`` of the source checkout this package lives in, or None when there is none.

    A ``training`` package elsewhere on ``sys.path`` (someone else's) is not used.
    """
    try:
        spec = importlib.util.find_spec("training")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    checkout = Path(__file__).resolve().parent.parent / "training"
    if not any(Path(location).resolve() == checkout for location in spec.submodule_search_locations):
        return None
    from training.cli import main

    return main


def _training_main() -> Callable[[], None]:
    try:
        from .training.cli import main
    except ModuleNotFoundError as err:
        if err.name != _BUNDLED:
            raise
    else:
        return main
    main = _checkout_training_main()
    if main is None:
        sys.stderr.write(
            f"error: dcvae-train needs the training code, which is neither installed ({_BUNDLED}) nor in a "
            'source checkout next to this package: run `pip install "dcvae-tools[train]"`, or clone the '
            'repository and run `pip install -e ".[train]"` there\n'
        )
        raise SystemExit(1)
    return main


def main() -> None:
    _training_main()()
