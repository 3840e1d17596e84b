"""The ``dcvae-train`` console script: runs the top-level ``training`` package of a source checkout."""

from __future__ import annotations

import sys


def main() -> None:
    try:
        from training.cli import main as training_main
    except ModuleNotFoundError as err:
        if err.name != "training":
            raise
        sys.stderr.write(
            "error: dcvae-train needs the training code, which ships in the source repository, not the wheel: "
            'clone the repository and run `pip install -e ".[train]"` there\n'
        )
        raise SystemExit(1) from None
    training_main()
