"""One entry point over all loaders: :func:`load_split` and :func:`expected_files`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from torch.utils.data import Dataset

from .split import ArraySplit

#: Names accepted by :func:`load_split`.
DATASETS = (
    "mnist", "fashion-mnist", "cifar10", "cifar100", "svhn", "imagenet", "npz", "idx", "folder",
)  # fmt: skip


def expected_files(name: str) -> list[str]:
    """The files (relative to the ``root`` given to :func:`load_split`) that ``name`` reads.

    Each entry is one line of text; ``[.gz]`` marks an optional gzip suffix, ``<...>``
    a placeholder.
    """
    from .cifar import cifar_expected_files
    from .idx import MNIST_FILES
    from .imagenet import IMAGENET_EXPECTED
    from .npz import NPZ_KEYS
    from .svhn import SVHN_FILES

    if name in ("mnist", "fashion-mnist"):
        return [f"{f}[.gz]" for pair in MNIST_FILES.values() for f in pair]
    if name in ("cifar10", "cifar100"):
        return cifar_expected_files(name)
    if name == "svhn":
        return list(SVHN_FILES.values())
    if name == "imagenet":
        return list(IMAGENET_EXPECTED)
    if name == "npz":
        return [f"<file>.npz with arrays {', '.join(NPZ_KEYS)} (optional: classes)"]
    if name == "idx":
        return [
            "[<prefix>-]train-images-idx3-ubyte[.gz], [<prefix>-]train-labels-idx1-ubyte[.gz]",
            "[<prefix>-]t10k-images-idx3-ubyte[.gz] (or test-...), "
            "[<prefix>-]t10k-labels-idx1-ubyte[.gz] (or test-...)",
        ]
    if name == "folder":
        return ["train/<class>/<image>", "test/<class>/<image>  (or val/<class>/<image>)"]
    raise ValueError(f"unknown data set {name!r}; known: {', '.join(DATASETS)}")


def load_split(
    name: str,
    root: str | Path | None = None,
    split: Literal["train", "test"] = "train",
    **options: Any,
) -> ArraySplit | Dataset:
    """Load one split of a data set from its official on-disk format.

    Args:
        name: one of :data:`DATASETS`:

            - "mnist", "fashion-mnist": IDX files -> ArraySplit (N, 1, 28, 28)
            - "cifar10", "cifar100": binary or python layout -> ArraySplit (N, 3, 32, 32)
              (option ``layout="auto"|"bin"|"py"``)
            - "svhn": ``*_32x32.mat`` -> ArraySplit (N, 3, 32, 32)
            - "imagenet": lazy :class:`ImageFileDataset` of (3, 256, 256) images
              (options ``size``, ``val_labels``, ``fast_decode``)
            - "npz": ``root`` is the .npz file -> ArraySplit (options ``layout``, ``classes``)
            - "idx": a folder with one IDX pair per split -> ArraySplit (option ``classes``)
            - "folder": ``root/{train,test}/<class>/<image>`` -> lazy
              :class:`ImageFileDataset` (options ``size``, ``mode``)
        root: data folder (see :func:`expected_files`). For the downloadable sets it
            defaults to :func:`softlif.data.data_home` ``(name)``, where
            :func:`softlif.data.download` puts them.
        split: "train" or "test" (ImageNet: "test" is the validation set).

    Raises:
        DataError: files missing (the message lists what is expected where) or bad.
    """
    from .cifar import load_cifar10, load_cifar100
    from .fetch import RESOURCES, data_home
    from .idx import load_idx_folder, load_mnist
    from .imagenet import load_imagenet
    from .images import load_image_folder
    from .npz import load_npz
    from .svhn import load_svhn

    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; known: {', '.join(DATASETS)}")
    if root is None:
        if name not in RESOURCES:
            raise ValueError(f"load_split({name!r}, ...) needs a root folder")
        root = data_home(name)
    loaders: dict[str, Any] = {
        "mnist": load_mnist,
        "fashion-mnist": lambda r, s, **o: load_mnist(r, s, fashion=True, **o),
        "cifar10": load_cifar10,
        "cifar100": load_cifar100,
        "svhn": load_svhn,
        "imagenet": load_imagenet,
        "npz": load_npz,
        "idx": load_idx_folder,
        "folder": load_image_folder,
    }
    return loaders[name](root, split, **options)
