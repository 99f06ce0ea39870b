"""Lazy data sets of image files decoded with Pillow (image folders, ImageNet).

Images are decoded on access, so a data set of any size costs only its file list in memory.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from ._io import check_split, require_dir
from .errors import DataError, missing_files_error
from .limits import LIMITS, check_alloc

IMAGE_EXTENSIONS = (
    ".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".gif", ".tif", ".tiff", ".webp",
)  # fmt: skip


def _pil() -> Any:
    try:
        from PIL import Image
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "decoding image files needs Pillow: pip install softlif[data]  (or: pip install pillow)"
        ) from e
    return Image


def decode_image(
    path: str | Path,
    size: int | None = None,
    mode: Literal["RGB", "L"] = "RGB",
    *,
    fast_decode: bool = True,
) -> torch.Tensor:
    """Decode one image file to a uint8 tensor, optionally resized and centre-cropped.

    Args:
        path: image file (any format Pillow reads).
        size: if given, scale so the short side is ``size`` pixels (bilinear, antialiased),
            then take the central ``size`` x ``size`` square; if None, keep the file's size.
        mode: "RGB" (3 channels) or "L" (1 channel, grey).
        fast_decode: let the JPEG decoder downscale by 1/2, 1/4 or 1/8 while decoding when
            the result still has both sides >= ``size`` (much faster for large photos).

    Returns:
        uint8 tensor (C, size, size), or (C, H, W) when ``size`` is None.

    Raises:
        DataError: the file is missing, not an image or corrupt.
    """
    image_mod = _pil()
    path = Path(path)
    side = LIMITS.max_image_side
    if size is not None and (isinstance(size, bool) or not isinstance(size, int)
                             or not 1 <= size <= side):
        raise DataError(f"image size must be an int in 1..{side} pixels, got {size!r}")
    try:
        with image_mod.open(path) as im:
            w, h = im.size  # from the header: checked before any pixel is decoded
            if not (1 <= w <= side and 1 <= h <= side):
                raise DataError(f"{path}: image of {w} x {h} pixels; each side must be 1.."
                                f"{side} (LIMITS.max_image_side)")
            if size is not None and fast_decode and im.format == "JPEG":
                im.draft(mode, (size, size))
            im = im.convert(mode)
            if size is not None:
                w, h = im.size
                s = size / min(w, h)
                nw, nh = max(size, round(w * s)), max(size, round(h * s))
                if (nw, nh) != (w, h):
                    im = im.resize((nw, nh), getattr(image_mod, "Resampling", image_mod).BILINEAR)
                left, top = (nw - size) // 2, (nh - size) // 2
                im = im.crop((left, top, left + size, top + size))
            arr = np.asarray(im, dtype=np.uint8)
    except FileNotFoundError as e:
        raise DataError(f"{path}: image file not found") from e
    except DataError:
        raise
    except Exception as e:  # noqa: BLE001 - Pillow raises many types for corrupt files
        raise DataError(f"{path}: cannot decode image ({type(e).__name__}: {e})") from e
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return torch.from_numpy(np.array(arr.transpose(2, 0, 1), order="C"))  # writable copy


class ImageFileDataset(Dataset):
    """A lazy, indexable list of labelled image files.

    ``dataset[i]`` returns ``(image, label)`` with image a uint8 tensor (C, size, size)
    (C = 3 for "RGB", 1 for "L") and label an int in ``[0, len(classes))``; a
    :class:`torch.utils.data.DataLoader` batches them to uint8 (B, C, size, size), ready
    for :class:`softlif.data.Preprocess`. With ``size=None`` images keep their own size.

    Attributes:
        files: image paths, in a fixed (sorted) order.
        labels: int64 array (N,).
        classes: class names (for ImageNet, WordNet ids like ``"n01440764"``).
    """

    def __init__(
        self,
        files: Sequence[Path],
        labels: Sequence[int] | np.ndarray,
        classes: list[str],
        *,
        size: int | None = None,
        mode: Literal["RGB", "L"] = "RGB",
        fast_decode: bool = True,
        source: str = "<files>",
    ) -> None:
        labels = np.asarray(labels, dtype=np.int64)
        if len(files) != len(labels):
            raise DataError(
                f"{source}: image count ({len(files)}) does not equal label count ({len(labels)})"
            )
        if len(labels) and (labels.min() < 0 or labels.max() >= len(classes)):
            raise DataError(f"{source}: labels out of range [0, {len(classes)})")
        if mode not in ("RGB", "L"):
            raise ValueError(f"mode must be 'RGB' or 'L', got {mode!r}")
        self.files = [Path(f) for f in files]
        self.labels = labels
        self.classes = list(classes)
        self.size = size
        self.mode = mode
        self.fast_decode = fast_decode
        self.source = source
        self._shape: tuple[int, int, int] | None = None

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        img = decode_image(self.files[index], self.size, self.mode, fast_decode=self.fast_decode)
        if self.size is None and len(self.files) > 1:
            shape = self.image_shape
            if tuple(img.shape) != shape:
                raise DataError(
                    f"{self.files[index]}: image of {tuple(img.shape)} (C, H, W), the data set's "
                    f"first image is {shape}: images of different sizes cannot be batched; "
                    "give a size (--image-size) to resize and centre-crop them"
                )
        return img, int(self.labels[index])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of every image: from ``size`` and ``mode``, or (``size=None``) from the
        first file, decoded once."""
        if self._shape is None:
            if self.size is not None:
                self._shape = (3 if self.mode == "RGB" else 1, self.size, self.size)
            elif not self.files:
                raise DataError(f"{self.source}: no images")
            else:
                first = decode_image(self.files[0], None, self.mode, fast_decode=False)
                self._shape = (int(first.shape[0]), int(first.shape[1]), int(first.shape[2]))
        return self._shape

    def subset(self, index: Sequence[int] | np.ndarray) -> ImageFileDataset:
        """The images at ``index`` (in that order), still lazy."""
        idx = np.asarray(index, dtype=np.int64)
        sub = ImageFileDataset([self.files[i] for i in idx], self.labels[idx], self.classes,
                               size=self.size, mode=self.mode, fast_decode=self.fast_decode,
                               source=self.source)
        sub._shape = self._shape
        return sub

    def load(self, index: Sequence[int] | np.ndarray | None = None, *,
             workers: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """Decode the images at ``index`` (default: all) into uint8 (N, C, H, W) and int64 (N,)
        tensors, refusing (:class:`DataError`, before decoding) more than
        ``LIMITS.max_bytes``; ``workers`` decoding processes (0: this one)."""
        from .batches import iter_batches

        idx = torch.arange(len(self)) if index is None else torch.as_tensor(
            np.asarray(index, dtype=np.int64))
        shape = (len(idx), *self.image_shape)
        check_alloc(self.source, f"{len(idx):,} decoded images", shape, 1)
        x = torch.empty(shape, dtype=torch.uint8)
        y = torch.empty(len(idx), dtype=torch.int64)
        pos = 0
        for xb, yb in iter_batches(self, idx.split(256), workers=workers):
            x[pos:pos + len(xb)], y[pos:pos + len(xb)] = xb, yb
            pos += len(xb)
        return x, y

    @property
    def num_classes(self) -> int:
        """Number of classes, ``len(classes)``."""
        return len(self.classes)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({len(self)} images, {len(self.classes)} classes, "
            f"size={self.size}, mode={self.mode!r}, source={self.source!r})"
        )


def is_image_file(name: str) -> bool:
    """True if ``name`` ends with one of :data:`IMAGE_EXTENSIONS` (case-insensitive)."""
    return name.lower().endswith(IMAGE_EXTENSIONS) and not name.startswith(".")


def list_images(folder: Path, recursive: bool = True, root: Path | None = None) -> list[Path]:
    """All image files under ``folder`` (hidden entries skipped), sorted by path.

    Symbolic links are followed only to targets inside ``root`` (default ``folder``), and
    every file and folder is visited once (by its real path): a link to ``/`` or a link
    loop cannot make the walk explode or list an image twice.
    """
    base = os.path.realpath(root if root is not None else folder)

    def inside(real: str) -> bool:
        return real == base or real.startswith(base + os.sep)

    out: list[Path] = []
    seen_files: set[str] = set()
    seen_dirs: set[str] = set()
    stack = [Path(folder)]
    while stack:
        d = stack.pop()
        real_d = os.path.realpath(d)
        if real_d in seen_dirs or not inside(real_d):
            continue
        seen_dirs.add(real_d)
        try:
            entries = sorted(os.scandir(d), key=lambda e: e.name)
        except OSError as e:
            raise DataError(f"{d}: cannot list folder ({e})") from e
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = Path(entry.path)
            if entry.is_dir(follow_symlinks=True):
                if recursive:
                    stack.append(path)
            elif entry.is_file(follow_symlinks=True) and is_image_file(entry.name):
                real = os.path.realpath(path)
                if inside(real) and real not in seen_files:
                    seen_files.add(real)
                    out.append(path)
    return sorted(out)


def class_subfolders(folder: Path) -> list[str]:
    """Sorted names of the visible sub-folders of ``folder``."""
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def scan_class_folders(
    folder: Path, classes: list[str] | None = None
) -> tuple[list[Path], np.ndarray, list[str]]:
    """Index a class-per-folder tree: ``folder/<class>/**/<image>``.

    Args:
        folder: the tree's root.
        classes: class names fixing the label order; default: the sorted sub-folder names.
            Every sub-folder must then be one of these classes.

    Returns:
        (files, labels int64 (N,), classes), files sorted by class then path.

    Raises:
        DataError: no sub-folders, an unknown class folder, or no images at all.
    """
    names = class_subfolders(folder)
    if not names:
        raise DataError(f"{folder}: expected one sub-folder per class, found none")
    if classes is None:
        classes = names
    index = {c: k for k, c in enumerate(classes)}
    unknown = [n for n in names if n not in index]
    if unknown:
        raise DataError(f"{folder}: class folder(s) {unknown[:5]} not among the known classes")
    files: list[Path] = []
    labels: list[int] = []
    for name in names:
        found = list_images(folder / name, root=folder)
        files.extend(found)
        labels.extend([index[name]] * len(found))
    if not files:
        raise DataError(
            f"{folder}: no image files (extensions {', '.join(IMAGE_EXTENSIONS)}) in its "
            f"class folders"
        )
    return files, np.asarray(labels, dtype=np.int64), list(classes)


def load_image_folder(
    root: str | Path,
    split: Literal["train", "test"] = "train",
    *,
    size: int | None = None,
    mode: Literal["RGB", "L", "auto"] = "auto",
) -> ImageFileDataset:
    """Lazy data set of your own images in a class-per-folder tree.

    Layout: ``root/train/<class>/<image>`` and ``root/test/<class>/<image>`` (``val`` is
    accepted for ``test``); class names are the sorted folder names of the train split,
    and the test split uses the same classes.

    Args:
        root: the folder holding ``train/`` and ``test/``.
        split: "train" or "test".
        size: resize short side + centre-crop to ``size`` x ``size``; None keeps the
            images' own size (then all must have the same size for batching).
        mode: "RGB", "L" (grey), or "auto" (the default): "L" when the first training image
            (in sorted order) is grey, else "RGB", for both splits.
    """
    root = require_dir(root, "folder")
    split = check_split(split)
    sub = root / split
    if split == "test" and not sub.is_dir() and (root / "val").is_dir():
        sub = root / "val"
    if not sub.is_dir():
        from .registry import expected_files

        raise missing_files_error("folder", root, [f"{split}/"], expected_files("folder"))
    classes = class_subfolders(root / "train") if (root / "train").is_dir() else None
    files, labels, classes = scan_class_folders(sub, classes)
    if mode == "auto":
        mode = _file_mode(files[0] if split == "train" else _first_image(root / "train",
                                                                           classes))
    return ImageFileDataset(files, labels, classes, size=size, mode=mode, source=str(sub))


def _first_image(folder: Path, classes: list[str]) -> Path:
    """The first image of ``folder``'s class tree in :func:`scan_class_folders` order."""
    for c in classes:
        found = list_images(folder / c, root=folder) if (folder / c).is_dir() else []
        if found:
            return found[0]
    raise DataError(f"{folder}: no images in its class folders")


def _file_mode(path: Path) -> Literal["RGB", "L"]:
    """"L" for a grey image file (read from its header), else "RGB"."""
    try:
        with _pil().open(path) as im:
            grey = im.mode in ("1", "L", "LA", "I", "I;16", "F")
    except Exception as e:  # noqa: BLE001 - Pillow raises many types for corrupt files
        raise DataError(f"{path}: cannot read image header ({type(e).__name__}: {e})") from e
    return "L" if grey else "RGB"
