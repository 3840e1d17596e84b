"""``python -m training ...`` is ``dcvae-train ...`` (also what torchrun launches with ``-m training``)."""

from .cli import main

main()
