"""Checks of plain argument values shared by the public API: numbers that must be whole or real, and devices.

Each refuses a value by name instead of letting it truncate silently or fail deep inside torch.
"""

from __future__ import annotations

import math
import numbers
import operator

import torch

from .errors import DCVAEError


def is_real_number(value: object) -> bool:
    """A real number, numpy's included; not a bool (True is not a clamp of 1)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def is_finite_strength(value: object) -> bool:
    """A finite number as an edit strength: numpy's and 0-d tensors too, not a string that float() would parse or
    a bool."""
    try:
        return not isinstance(value, str | bytes | bool) and math.isfinite(float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def at_least_one(value: object, what: str) -> int:
    """``value`` as an int >= 1 (numpy integers too); a float, bool or string is refused, not truncated."""
    return whole_number_at_least(value, what, 1)


def as_whole_number(value: object) -> int | None:
    """``value`` as an int if it is a whole number (numpy integers and 0-d integer tensors too), else None: a
    float, bool or string is not read as one."""
    if isinstance(value, bool):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def whole_number_at_least(value: object, what: str, minimum: int, error: type[DCVAEError] = DCVAEError) -> int:
    """``value`` as an int >= ``minimum`` (numpy integers too); a float, bool or string raises ``error``."""
    number = as_whole_number(value)
    if number is None or number < minimum:
        raise error(f"{what} must be a whole number of at least {minimum}, got {value!r}")
    return number


def check_device(device: str | torch.device, *, cli: bool = False) -> None:
    """Refuse a device this machine cannot use, before anything is downloaded or allocated; ``cli`` words the
    message for the ``--device`` option instead of the ``device=`` argument."""
    shown, fix = (f"--device {device}", "--device cpu") if cli else (f"device={str(device)!r}", "device='cpu'")
    try:
        kind = torch.device(device).type
    except (RuntimeError, ValueError, TypeError):
        raise DCVAEError(f"unknown device {device!r}; use cpu, cuda, cuda:N or mps") from None
    if kind == "meta":  # torch knows it, but it holds no data: nothing could be computed there
        raise DCVAEError(f"{shown}: the meta device holds no data, so nothing can be computed on it; use {fix}")
    if kind == "cuda" and not torch.cuda.is_available():
        raise DCVAEError(f"{shown}: CUDA is not available on this machine; use {fix}")
    if kind == "cuda" and (index := torch.device(device).index) is not None and index >= torch.cuda.device_count():
        count = torch.cuda.device_count()
        raise DCVAEError(f"{shown}: this machine has {count} CUDA device{'s' if count != 1 else ''} "
                         f"(cuda:0{f' to cuda:{count - 1}' if count > 1 else ''}); use one of those or {fix}")
    if kind == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise DCVAEError(f"{shown}: MPS is not available on this machine; use {fix}")
