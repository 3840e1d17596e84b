"""``python -m dcvae_tools.cli``: the same as the ``dcvae`` command."""

from dcvae_tools.cli import main

main()
