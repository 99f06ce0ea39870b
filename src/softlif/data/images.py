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
from .limits import LIMITS

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

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        img = decode_image(self.files[index], self.size, self.mode, fast_decode=self.fast_decode)
        return img, int(self.labels[index])

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
    mode: Literal["RGB", "L"] = "RGB",
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
        mode: "RGB" or "L".
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
    return ImageFileDataset(files, labels, classes, size=size, mode=mode, source=str(sub))
