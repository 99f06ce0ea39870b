"""Data sets, their official file formats, downloads and the papers' preprocessing.

Loaders read the official on-disk formats and return an in-memory :class:`ArraySplit`
(uint8 images (N, C, H, W), int64 labels (N,), class names), except ImageNet and image
folders, which are lazy :class:`ImageFileDataset` objects. :func:`load_split` is the single
entry point; :func:`expected_files` says what each data set needs; :func:`download` fetches
the public sets (verified by MD5) on request only; :class:`Preprocess` /
:func:`paper_preprocess` implement the preprocessing of Hunsberger & Eliasmith
(arXiv 1510.08829): scale to [0, 1], mean-image subtraction, random crops and flips.
Bad or missing files raise :class:`DataError` (a ValueError) naming the file.
"""

from .cifar import CIFAR10_CLASSES, CIFAR100_CLASSES, load_cifar10, load_cifar100
from .embedded import embedded_mnist_provenance, load_embedded_mnist
from .errors import DataError
from .fetch import data_home, download, safe_extract_tar
from .idx import load_idx_folder, load_idx_pair, load_mnist, read_idx
from .imagenet import imagenet_classes, load_imagenet
from .images import ImageFileDataset, decode_image, load_image_folder
from .npz import load_npz
from .preprocess import (
    PAPER_PIXEL_DIVISOR,
    PAPER_SETTINGS,
    Preprocess,
    compute_mean_image,
    default_preprocess,
    paper_preprocess,
)
from .registry import DATASETS, expected_files, load_split
from .safe_pickle import RestrictedUnpickler, safe_pickle_load
from .split import ArraySplit
from .svhn import load_svhn, read_svhn_mat

__all__ = [
    "ArraySplit",
    "CIFAR10_CLASSES",
    "CIFAR100_CLASSES",
    "DATASETS",
    "DataError",
    "ImageFileDataset",
    "PAPER_SETTINGS",
    "Preprocess",
    "RestrictedUnpickler",
    "compute_mean_image",
    "data_home",
    "decode_image",
    "download",
    "embedded_mnist_provenance",
    "expected_files",
    "imagenet_classes",
    "load_cifar10",
    "load_cifar100",
    "load_embedded_mnist",
    "load_idx_folder",
    "load_idx_pair",
    "load_image_folder",
    "load_imagenet",
    "load_mnist",
    "load_npz",
    "load_split",
    "load_svhn",
    "paper_preprocess",
    "default_preprocess",
    "PAPER_PIXEL_DIVISOR",
    "read_idx",
    "read_svhn_mat",
    "safe_extract_tar",
    "safe_pickle_load",
]
