"""Labels drawn in white strips above (columns) and left of (rows) a saved grid, so a sweep, a mix or a reconstruction
grid reads without a legend."""

from __future__ import annotations

import math
from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageFont

Font = ImageFont.ImageFont | ImageFont.FreeTypeFont

_SMALLEST_SIZE = 7  # below this the default font stops being legible


def strength_labels(strengths: Sequence[float]) -> list[str]:
    """Edit strengths as column headings: signed and short (``-2``, ``+0.5``, ``0``), with as many digits as it
    takes for different strengths to read differently."""
    for digits in range(3, 17):
        labels = ["0" if s == 0 else f"{s:+.{digits}g}" for s in strengths]
        if len(set(labels)) == len(set(strengths)):
            break
    return labels


def edit_heading(edits: Sequence[tuple[str, float]], beside: str = "original") -> str:
    """The heading of an edit's column in a grid whose first column is headed ``beside``: each direction's name and
    signed strength (``boot +1``) where that is about as short as ``beside``, else the strength alone (as a sweep's
    columns are headed) or, for several directions, their count (``2 edits``). A longer heading would shrink
    every heading's font to fit the column."""
    labels = strength_labels([strength for _, strength in edits])
    full = ", ".join(f"{name} {label}" for (name, _), label in zip(edits, labels, strict=True))
    if len(full) <= len(beside) + 1:
        return full
    return labels[0] if len(edits) == 1 else f"{len(edits)} edits"


def interpolation_labels(steps: int) -> list[str]:
    """Headings for ``steps`` evenly spaced points from A to B: ``A``, each inner t with the same number of
    decimals (enough to tell neighbours apart), ``B``."""
    decimals = max(2, math.ceil(math.log10(steps - 1)))
    return ["A", *(f"{i / (steps - 1):.{decimals}f}" for i in range(1, steps - 1)), "B"]


def _font(size: int) -> Font:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ImportError, OSError):  # Pillow < 10.1 or built without FreeType: its fixed bitmap font
        return ImageFont.load_default()


def _width(font: Font, text: str) -> float:
    left, _, right, _ = font.getbbox(text)
    return right - left


def _ellipsis(font: Font) -> str:
    # Pillow's bitmap font covers latin-1 only
    return "…" if isinstance(font, ImageFont.FreeTypeFont) else "..."


def shortened(font: Font, text: str, width: float) -> str:
    """``text`` as drawn in ``font``, cut and ended with an ellipsis where it is wider than ``width`` pixels
    (empty when not even the ellipsis fits)."""
    if _width(font, text) <= width:
        return text
    mark = _ellipsis(font)
    if _width(font, mark) > width:
        return ""
    low, high = 0, len(text)  # the longest prefix that fits with the mark: a bisection, as labels can be long
    while low < high:
        middle = (low + high + 1) // 2
        if _width(font, text[:middle] + mark) <= width:
            low = middle
        else:
            high = middle - 1
    return text[:low] + mark


def _fitting_font(labels: Sequence[str], cell_width: int) -> Font:
    """The largest default font, from one sized to the cell down, whose widest label fits (else the smallest)."""
    size = max(10, cell_width // 5)
    font = _font(size)
    while size > _SMALLEST_SIZE and max(_width(font, label) for label in labels) > cell_width:
        size -= 1
        font = _font(size)
    return font


def add_column_labels(
    image: Image.Image, labels: Sequence[str], *, cell_width: int, pitch: int, first_x: int
) -> Image.Image:
    """``image`` with a white strip on top holding ``labels[c]`` centred over column ``c``.

    Column ``c`` spans ``first_x + c * pitch`` to that plus ``cell_width`` pixels (the grid's own
    geometry after enlargement). The font grows with the cells; where a label is wider than its
    column, all are set smaller, then that label is cut with an ellipsis, so no label reaches into
    its neighbour's column. The image below the strip is unchanged.
    """
    font = _fitting_font(labels, cell_width)
    top, bottom = font.getbbox("Ag-0.9")[1::2]
    margin = max(2, (bottom - top) // 4)
    height = int(bottom - top + 2 * margin)
    labelled = Image.new(image.mode, (image.width, image.height + height), "white")
    labelled.paste(image, (0, height))
    draw = ImageDraw.Draw(labelled)
    for column, label in enumerate(labels):
        text = shortened(font, label, cell_width)
        if not text:
            continue
        left = font.getbbox(text)[0]
        x = first_x + column * pitch + (cell_width - _width(font, text)) / 2 - left
        draw.text((x, margin - top), text, fill="black", font=font)
    return labelled


def add_row_labels(
    image: Image.Image, labels: Sequence[str], *, cell_height: int, pitch: int, first_y: int
) -> Image.Image:
    """``image`` with a white strip on the left holding ``labels[r]``, right-aligned and centred on row ``r``.

    Row ``r`` spans ``first_y + r * pitch`` to that plus ``cell_height`` pixels. The font is sized to the rows (the
    strip is as wide as the widest label); the image right of the strip is unchanged.
    """
    font = _font(max(_SMALLEST_SIZE + 3, cell_height // 4))
    top, bottom = font.getbbox("Ag-0.9")[1::2]
    margin = max(3, (bottom - top) // 2)
    width = int(max(_width(font, label) for label in labels) + 2 * margin)
    labelled = Image.new(image.mode, (image.width + width, image.height), "white")
    labelled.paste(image, (width, 0))
    draw = ImageDraw.Draw(labelled)
    for row, label in enumerate(labels):
        left = font.getbbox(label)[0]
        x = width - margin - _width(font, label) - left
        y = first_y + row * pitch + (cell_height - (bottom - top)) / 2 - top
        draw.text((x, y), label, fill="black", font=font)
    return labelled
