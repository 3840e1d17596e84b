"""Column labels drawn in a white strip above a saved grid, so a sweep or a mix reads without a legend."""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageFont

Font = ImageFont.ImageFont | ImageFont.FreeTypeFont

_SMALLEST_SIZE = 7  # below this the default font stops being legible
_ELLIPSIS = "…"


def strength_label(strength: float) -> str:
    """An edit strength as a column heading: signed, as short as the value allows (``-2``, ``+0.5``, ``0``)."""
    return "0" if strength == 0 else f"{strength:+.3g}"


def _font(size: int) -> Font:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ImportError, OSError):  # Pillow < 10.1 or built without FreeType: its fixed bitmap font
        return ImageFont.load_default()


def _width(font: Font, text: str) -> float:
    left, _, right, _ = font.getbbox(text)
    return right - left


def _fitting_font(labels: Sequence[str], cell_width: int, size: int) -> Font:
    """The largest default font from ``size`` down whose widest label fits a cell (else the smallest)."""
    font = _font(size)
    while size > _SMALLEST_SIZE and max(_width(font, label) for label in labels) > cell_width:
        size -= 1
        font = _font(size)
    return font


def _shortened(font: Font, text: str, width: int) -> str:
    """``text``, cut and ended with an ellipsis where it is wider than ``width`` pixels."""
    if _width(font, text) <= width:
        return text
    while text and _width(font, text + _ELLIPSIS) > width:
        text = text[:-1]
    return text + _ELLIPSIS if text else ""


def add_column_labels(
    image: Image.Image, labels: Sequence[str], cell_width: int, pitch: int, first_x: int, scale: int = 1
) -> Image.Image:
    """``image`` with a white strip on top holding ``labels[c]`` centred over column ``c``.

    Column ``c`` spans ``first_x + c * pitch`` to that plus ``cell_width`` pixels (the grid's own
    geometry after enlargement); a label wider than its column is set smaller, then cut with an
    ellipsis, so no label reaches into its neighbour's column. ``scale`` sizes the font with the
    grid's enlargement. The image below the strip is unchanged.
    """
    font = _fitting_font(labels, cell_width, 10 * max(1, scale // 2))
    top, bottom = font.getbbox("Ag-0.9")[1::2]
    margin = max(2, scale)
    height = int(bottom - top) + 2 * margin
    labelled = Image.new(image.mode, (image.width, image.height + height), "white")
    labelled.paste(image, (0, height))
    draw = ImageDraw.Draw(labelled)
    for column, label in enumerate(labels):
        text = _shortened(font, label, cell_width)
        if not text:
            continue
        left = font.getbbox(text)[0]
        x = first_x + column * pitch + (cell_width - _width(font, text)) / 2 - left
        draw.text((x, margin - top), text, fill="black", font=font)
    return labelled
