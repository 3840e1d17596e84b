"""Parsers of the text specs the command line takes for latents: index ranges (``--dims 0-63,70``) and strength
sweeps (``--sweep -2:2:5``). Free of torch, so the command line reads them before it loads torch."""

from __future__ import annotations

import math
import re

from .errors import LatentError

ATTRIBUTE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
"""What an attribute may be called: letters, digits, ``_``, ``-`` and ``.`` (no ``:`` or ``=``, which the command
line's ``FILE:NAME`` and ``NAME=STRENGTH`` forms use), not starting with ``-`` or ``.``."""


def check_attribute_name(name: object) -> str:
    """``name`` if it is a valid attribute name (see :data:`ATTRIBUTE_NAME`), else :class:`LatentError`."""
    if not isinstance(name, str) or not ATTRIBUTE_NAME.fullmatch(name):
        raise LatentError(
            f"attribute name {name!r}: use letters, digits, '_', '-' and '.' (no ':' or '='), e.g. 'long_sleeves'"
        )
    return name


FLOAT32_MAX = 3.4028234663852886e38
"""The largest float32, ``torch.finfo(torch.float32).max``, written out so that option checks need no torch."""

INDEX_EXAMPLE = "0-15,40"
"""The index syntax shown in messages (in range for every released model's 64 dimensions)."""


INDEX_RANGE = re.compile(r"([0-9]+)\s*(?:-\s*([0-9]+))?")
"""One part of an index spec: ``N`` or ``LOW-HIGH``, whole numbers written in ASCII digits."""


def index_ranges(spec: str) -> list[tuple[int, int, str]]:
    """The ranges ``"0-63,70"`` names, as (low, high, text) with both ends inclusive, not expanded: the syntax
    check (the command line runs it before it knows the model's latent size)."""
    ranges: list[tuple[int, int, str]] = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        match = INDEX_RANGE.fullmatch(part)
        if match is None:  # negative numbers included: "3--5" has no reading to suggest
            raise LatentError(f"cannot read {part!r} in {spec!r}: write indices like {INDEX_EXAMPLE!r}")
        lo = int(match[1])
        hi = lo if match[2] is None else int(match[2])
        if hi < lo:
            raise LatentError(f"{part!r} in {spec!r} runs backwards: write it as '{hi}-{lo}'")
        ranges.append((lo, hi, part))
    if not ranges:
        raise LatentError(f"{spec!r} names no indices: write indices like {INDEX_EXAMPLE!r}")
    return ranges


def parse_index_ranges(spec: str, dim: int | None = None) -> list[int]:
    """Parse ``"0-63,70,80-81"`` into a sorted list of unique indices (ranges inclusive).

    With ``dim``, an index outside ``0 .. dim - 1`` is refused before any range is expanded, so a typo
    like ``0-999999999999`` is an error, not a giant list.
    """
    ranges = index_ranges(spec)
    for lo, hi, part in ranges:
        if dim is not None and not (lo >= 0 and hi < dim):
            raise LatentError(
                f"latent dimension(s) {part} out of range: this model's latents have {dim} (0-{dim - 1})"
            )
    return sorted({i for lo, hi, _ in ranges for i in range(lo, hi + 1)})


MAX_SWEEP_COUNT = 64
"""The most strengths one ``--sweep`` may ask for: each is a decoded column of every strip."""


def parse_sweep(spec: str) -> list[float]:
    """Parse ``"START:STOP:COUNT"`` (e.g. ``"-2:2:5"``) into COUNT evenly spaced strengths.

    START and STOP must be finite numbers and COUNT a whole number from 1 to :data:`MAX_SWEEP_COUNT`.
    """
    parts = spec.split(":")
    try:
        if len(parts) != 3:
            raise ValueError
        start, stop, count = float(parts[0]), float(parts[1]), int(parts[2])
    except ValueError:
        raise LatentError(f"cannot read sweep {spec!r}: write START:STOP:COUNT, e.g. -2:2:5") from None
    if count < 1:
        raise LatentError(
            f"sweep {spec!r}: COUNT must be at least 1 (the number of strengths), e.g. {parts[0]}:{parts[1]}:5"
        )
    if not (math.isfinite(start) and math.isfinite(stop)):
        raise LatentError(f"sweep {spec!r}: START and STOP must be finite strengths, e.g. -2:2:5")
    if max(abs(start), abs(stop)) > FLOAT32_MAX:  # latents are float32; also keeps STOP - START finite below
        raise LatentError(
            f"sweep {spec!r}: START and STOP must lie within +-{FLOAT32_MAX:.4g} (float32), e.g. -2:2:5"
        )
    if count > MAX_SWEEP_COUNT:
        raise LatentError(
            f"sweep {spec!r} asks for {count} strengths; at most {MAX_SWEEP_COUNT} fit in a strip "
            f"(e.g. {parts[0]}:{parts[1]}:9)"
        )
    if count == 1:
        return [start]
    # endpoints as given, the rest rounded to 12 digits of the span (+ 0.0 turns -0.0 into 0.0): -0.1:0.2:4 gives
    # -0.1, 0, 0.1, 0.2, not 1.39e-17 and 0.10000000000000003
    span = abs(stop - start)
    if span == 0:
        return [start] * count
    digits = 12 - math.floor(math.log10(span))
    inner = [round(start + (stop - start) * i / (count - 1), digits) + 0.0 for i in range(1, count - 1)]
    return [start, *inner, stop]
