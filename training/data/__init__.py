"""Training data: data files (:mod:`.formats`), datasets (:mod:`.datasets`) and the loader (:mod:`.loader`).

``make_dataset`` is the single entry point the trainer and the metrics use.
"""

from .datasets import (
    DATASET_NAMES,
    IMAGE_EXTENSIONS,
    ArrayImageDataset,
    ImageFolderDataset,
    canonical_dataset_name,
    check_dataset_name,
    make_dataset,
    natural_content_size,
    torchvision_dataset,
)
from .formats import (
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_DIR,
    MNIST5K_TEST_PER_CLASS,
    load_fashion_mnist,
    load_mnist5k,
    read_idx,
)
from .loader import InfiniteLoader, infinite_loader

__all__ = [
    "DATASET_NAMES",
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_DIR",
    "IMAGE_EXTENSIONS",
    "MNIST5K_TEST_PER_CLASS",
    "ArrayImageDataset",
    "ImageFolderDataset",
    "InfiniteLoader",
    "canonical_dataset_name",
    "check_dataset_name",
    "infinite_loader",
    "load_fashion_mnist",
    "load_mnist5k",
    "make_dataset",
    "natural_content_size",
    "read_idx",
    "torchvision_dataset",
]
