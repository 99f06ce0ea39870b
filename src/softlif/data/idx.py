"""IDX files (the MNIST / Fashion-MNIST format), parsed with numpy.

Format (http://yann.lecun.com/exdb/mnist/): two zero bytes, a type code byte
(0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64), a byte
with the number of dimensions d, then d big-endian uint32 sizes, then the data in
big-endian row-major order. Files may be gzipped (detected by content, not by name).
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Literal

import numpy as np

from ._io import check_split, find_first, open_maybe_gzip, require_dir
from .errors import DataError, missing_files_error
from .limits import LIMITS, check_alloc, default_classes
from .split import ArraySplit, check_arrays

_IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

MNIST_CLASSES = [str(d) for d in range(10)]
FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip

#: Base file names per split (each may also be present with a ``.gz`` suffix).
MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file (gzipped or not) into a native-endian numpy array.

    Args:
        path: the file.

    Returns:
        An array with the dims and element type stored in the header (uint8 for
        MNIST images of shape (N, 28, 28) and labels of shape (N,)).

    Raises:
        DataError: wrong magic number, unknown type code, truncated header or data,
            or trailing bytes after the data.
    """
    path = Path(path)
    try:
        with open_maybe_gzip(path) as f:
            head = f.read(4)
            if len(head) < 4:
                raise DataError(f"{path}: truncated IDX file ({len(head)} bytes, header needs 4)")
            code, ndim = head[2], head[3]
            if head[:2] != b"\x00\x00" or code not in _IDX_TYPES or ndim == 0:
                raise DataError(
                    f"{path}: bad IDX magic number 0x{head.hex()} (expected 0x0000TTDD with "
                    f"type TT in {{08,09,0b,0c,0d,0e}} and DD >= 1 dimensions): not an IDX file"
                )
            if ndim > LIMITS.max_ndim:
                raise DataError(f"{path}: IDX header declares {ndim} dimensions (at most "
                                f"{LIMITS.max_ndim}): corrupt or not an IDX file")
            dim_bytes = f.read(4 * ndim)
            header = 4 + 4 * ndim
            if len(dim_bytes) < 4 * ndim:
                raise DataError(f"{path}: truncated IDX header ({4 + len(dim_bytes)} bytes, "
                                f"{ndim} dimensions need {header})")
            dims = tuple(int(d) for d in np.frombuffer(dim_bytes, dtype=">u4"))
            dtype = _IDX_TYPES[code]
            # the declared size is checked before a byte of the data is read (or inflated)
            want = check_alloc(str(path), "the IDX header", dims, dtype.itemsize)
            count = want // dtype.itemsize
            raw = f.read(want)
            if len(raw) < want:
                raise DataError(
                    f"{path}: truncated IDX data: header declares shape {dims} of {dtype.name} "
                    f"({want} bytes) but only {len(raw)} bytes follow"
                )
            if f.read(1):
                raise DataError(f"{path}: unexpected bytes after the IDX data of shape {dims} "
                                "(file corrupt or header wrong)")
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path}: cannot read, or corrupt or truncated gzip data ({e})") from e
    arr = np.frombuffer(raw, dtype=dtype, count=count).reshape(dims)
    return arr.astype(dtype.newbyteorder("="))  # always a writable native-endian copy


def load_idx_pair(
    images_path: str | Path,
    labels_path: str | Path,
    classes: list[str] | None = None,
) -> ArraySplit:
    """Load an IDX image file and its IDX label file into an :class:`ArraySplit`.

    Args:
        images_path: IDX file of uint8 images, shape (N, H, W) (grey scale).
        labels_path: IDX file of integer labels, shape (N,).
        classes: class names; default ``["0", "1", ..., str(max_label)]``.

    Returns:
        images uint8 (N, 1, H, W), labels int64 (N,).

    Raises:
        DataError: a file is malformed, images are not uint8 (N, H, W), labels are not
            integers of shape (N,), counts differ or a label is out of range.
    """
    images_path, labels_path = Path(images_path), Path(labels_path)
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.dtype != np.uint8 or images.ndim != 3:
        raise DataError(
            f"{images_path}: expected uint8 images of shape (N, H, W), "
            f"got {images.dtype} of shape {images.shape}"
        )
    if labels.dtype.kind not in "iu" or labels.ndim != 1:
        raise DataError(
            f"{labels_path}: expected integer labels of shape (N,), "
            f"got {labels.dtype} of shape {labels.shape}"
        )
    if len(images) != len(labels):
        raise DataError(
            f"{images_path} holds {len(images)} images but {labels_path} holds "
            f"{len(labels)} labels: image count != label count"
        )
    labels = labels.astype(np.int64)
    if classes is None:
        classes = default_classes([labels], str(labels_path))
    images = images[:, None, :, :]
    check_arrays(images, labels, classes, str(labels_path))
    return ArraySplit(images, labels, list(classes), str(images_path.parent))


def _find_pair(root: Path, split: str, dataset: str) -> tuple[Path, Path]:
    names = MNIST_FILES[split]
    found = [find_first(root, (n, n + ".gz")) for n in names]
    missing = [f"{n}[.gz]" for n, p in zip(names, found, strict=True) if p is None]
    if missing:
        from .registry import expected_files

        raise missing_files_error(dataset, root, missing, expected_files(dataset))
    return found[0], found[1]  # type: ignore[return-value]


def load_mnist(
    root: str | Path,
    split: Literal["train", "test"] = "train",
    *,
    fashion: bool = False,
) -> ArraySplit:
    """Load MNIST (or Fashion-MNIST) from the four official IDX files in ``root``.

    Files (gzipped or not): ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``.

    Returns:
        images uint8 (N, 1, 28, 28), labels int64 (N,) in 0..9; N = 60000 (train) or
        10000 (test) for the official files.
    """
    dataset = "fashion-mnist" if fashion else "mnist"
    root = require_dir(root, dataset)
    split = check_split(split)
    img_path, lab_path = _find_pair(root, split, dataset)
    classes = FASHION_MNIST_CLASSES if fashion else MNIST_CLASSES
    out = load_idx_pair(img_path, lab_path, classes)
    if out.images.shape[1:] != (1, 28, 28):
        raise DataError(f"{img_path}: {dataset} images must be 28x28, got {out.images.shape[2:]}")
    out.source = str(root)
    return out


def load_idx_folder(
    root: str | Path,
    split: Literal["train", "test"] = "train",
    classes: list[str] | None = None,
) -> ArraySplit:
    """Load a user's IDX pair from ``root`` named like MNIST's (a name prefix is allowed).

    Looks for ``*train-images-idx3-ubyte[.gz]`` + ``*train-labels-idx1-ubyte[.gz]``
    (split "train") or ``*t10k-...`` / ``*test-...`` (split "test"), e.g. EMNIST's
    ``emnist-digits-train-images-idx3-ubyte.gz``. Exactly one match each is required.
    """
    root = require_dir(root, "idx")
    split = check_split(split)
    prefixes = ("train",) if split == "train" else ("t10k", "test")
    found: list[Path] = []
    for kind, dims in (("images", 3), ("labels", 1)):
        hits = sorted(
            {
                p
                for pre in prefixes
                for suffix in ("", ".gz")
                for p in root.glob(f"*{pre}-{kind}-idx{dims}-ubyte{suffix}")
                if p.is_file()
            }
        )
        if len(hits) != 1:
            from .registry import expected_files

            if not hits:
                raise missing_files_error(
                    "idx", root, [f"a {split} {kind} IDX file"], expected_files("idx")
                )
            raise DataError(
                f"{root}: ambiguous {split} {kind} files {[h.name for h in hits]}; keep one pair "
                f"per folder or call softlif.data.load_idx_pair with explicit paths"
            )
        found.append(hits[0])
    return load_idx_pair(found[0], found[1], classes)
