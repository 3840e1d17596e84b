"""Images in and out of the model: files, PIL images and arrays to model tensors and back.

- :mod:`~dcvae_tools.images.files`: finding image files and opening them safely;
- :mod:`~dcvae_tools.images.convert`: the one image <-> model tensor conversion (inference and training);
- :mod:`~dcvae_tools.images.save`: single images, grids and GIFs, written atomically;
- :mod:`~dcvae_tools.images.labels`: the column headings a grid can carry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

# Names load on first use, so the command line can check an output's suffix without importing torch.
_EXPORTS = {
    "FOLDER_SUFFIXES": ".files",
    "IMAGE_SUFFIXES": ".files",
    "MAX_IMAGE_PIXELS": ".files",
    "expand_image_paths": ".files",
    "load_image": ".files",
    "ImageInput": ".convert",
    "ImageRangeWarning": ".convert",
    "convert_image": ".convert",
    "to_pil": ".convert",
    "to_tensor": ".convert",
    "make_grid": ".save",
    "save_gif": ".save",
    "save_grid": ".save",
    "save_image": ".save",
}

if TYPE_CHECKING:
    from .convert import ImageInput, ImageRangeWarning, convert_image, to_pil, to_tensor
    from .files import FOLDER_SUFFIXES, IMAGE_SUFFIXES, MAX_IMAGE_PIXELS, expand_image_paths, load_image
    from .save import make_grid, save_gif, save_grid, save_image


# submodules the package imported eagerly before its names became lazy: ``package.files`` keeps working
_SUBMODULES = ("files", "convert", "save")


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, _SUBMODULES)

__all__ = [
    "FOLDER_SUFFIXES",
    "IMAGE_SUFFIXES",
    "MAX_IMAGE_PIXELS",
    "ImageInput",
    "ImageRangeWarning",
    "convert_image",
    "expand_image_paths",
    "load_image",
    "make_grid",
    "save_gif",
    "save_grid",
    "save_image",
    "to_pil",
    "to_tensor",
]
