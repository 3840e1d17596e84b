"""Images in and out of the model: files, PIL images and arrays to model tensors and back.

- :mod:`~dcvae_tools.images.files`: finding image files and opening them safely;
- :mod:`~dcvae_tools.images.convert`: the one image <-> model tensor conversion (inference and training);
- :mod:`~dcvae_tools.images.save`: single images, grids and GIFs, written atomically.
"""

from .convert import ImageInput, convert_image, to_pil, to_tensor
from .files import IMAGE_SUFFIXES, MAX_IMAGE_PIXELS, expand_image_paths, load_image
from .save import make_grid, save_gif, save_grid, save_image

__all__ = [
    "IMAGE_SUFFIXES",
    "MAX_IMAGE_PIXELS",
    "ImageInput",
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
