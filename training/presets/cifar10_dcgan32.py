"""Supplementary Table 1: DC-VAE with the weaker DCGAN backbone on CIFAR-10."""

from ..options import TrainingOptions
from .cifar10_autogan32 import PRESET as _CIFAR

PRESET: TrainingOptions = _CIFAR.override(
    preset="cifar10-dcgan32",
    description="DC-VAE on CIFAR-10, DCGAN backbone (supplementary Table 1: sampling FID 78.06)",
    architecture="dcgan32",
    architecture_args={"ngf": 64, "ndf": 64},
)
