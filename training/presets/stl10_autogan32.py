"""STL-10 resized to 32x32 as AutoGAN does (paper: sampling FID 41.9), same recipe as CIFAR-10."""

from .cifar10_autogan32 import PRESET as _CIFAR

PRESET = _CIFAR.override(
    preset="stl10-autogan32",
    description="DC-VAE on STL-10 (unlabeled+train, resized to 32x32), AutoGAN backbone",
    dataset="stl10",
)
