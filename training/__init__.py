"""Training code for DC-VAE (datasets, losses, loops); the wheel ships it as ``dcvae_tools.training``."""
