"""Training presets, one module per preset, each defining ``PRESET: TrainingOptions``.

The module file name with underscores turned into hyphens is the preset's name
(``cifar10_autogan32.py`` -> ``cifar10-autogan32``).
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from ..options import OptionsError, TrainingOptions


@cache
def all_presets() -> dict[str, TrainingOptions]:
    presets = {}
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        preset = module.PRESET
        presets[preset.preset] = preset
    return dict(sorted(presets.items()))


def get_preset(name: str) -> TrainingOptions:
    """A fresh copy of the named preset's options."""
    presets = all_presets()
    if name not in presets:
        raise OptionsError(f"unknown preset {name!r}; available: {', '.join(presets)}")
    return presets[name].override()


def get_schedule(name: str):
    """The ``SCHEDULE`` (training.progressive.ProgressiveSchedule) of a progressive preset, else None."""
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        if module.PRESET.preset == name:
            return getattr(module, "SCHEDULE", None)
    raise OptionsError(f"unknown preset {name!r}; available: {', '.join(all_presets())}")
