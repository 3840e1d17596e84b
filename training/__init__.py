"""Training code for DC-VAE (datasets, losses, loops); not part of the installed dcvae_tools wheel."""
