"""The in-memory split object returned by every eager loader, and its consistency checks."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from .errors import DataError


def check_arrays(images: np.ndarray, labels: np.ndarray, classes: list[str], source: str) -> None:
    """Raise :class:`DataError` (naming ``source``) unless the arrays form a valid split.

    Valid: ``images`` uint8 of shape (N, C, H, W); ``labels`` int64 of shape (N,) with every
    value in ``[0, len(classes))``; ``classes`` a non-empty list of strings.
    """
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4:
        what = (
            f"{images.dtype} array of shape {images.shape}"
            if isinstance(images, np.ndarray)
            else type(images).__name__
        )
        raise DataError(f"{source}: images must be a uint8 array of shape (N, C, H, W), got {what}")
    if not isinstance(labels, np.ndarray) or labels.dtype != np.int64 or labels.ndim != 1:
        what = (
            f"{labels.dtype} array of shape {labels.shape}"
            if isinstance(labels, np.ndarray)
            else type(labels).__name__
        )
        raise DataError(f"{source}: labels must be an int64 array of shape (N,), got {what}")
    if len(images) != len(labels):
        raise DataError(
            f"{source}: image count ({len(images)}) does not equal label count ({len(labels)})"
        )
    if 0 in images.shape[1:]:
        raise DataError(f"{source}: images of shape {images.shape[1:]} (C, H, W) are empty; "
                        "every image needs at least one channel, row and column")
    if images.shape[1] not in (1, 3, 4):
        raise DataError(f"{source}: images have {images.shape[1]} channels (shape "
                        f"{images.shape}); expected 1, 3 or 4 in NCHW order: wrong layout?")
    if not classes or not all(isinstance(c, str) for c in classes):
        raise DataError(f"{source}: classes must be a non-empty list of str, got {classes!r}")
    if len(labels):
        lo, hi = int(labels.min()), int(labels.max())
        if lo < 0 or hi >= len(classes):
            bad = int(np.flatnonzero((labels < 0) | (labels >= len(classes)))[0])
            raise DataError(
                f"{source}: label {int(labels[bad])} at index {bad} is out of range "
                f"[0, {len(classes)}) for {len(classes)} classes"
            )


@dataclass(eq=False)
class ArraySplit:
    """One split (train or test) of an image-classification data set, held in memory.

    Attributes:
        images: uint8 pixel values in [0, 255], shape (N, C, H, W) (channels first).
        labels: int64 class indices in ``[0, len(classes))``, shape (N,).
        classes: class names; ``classes[k]`` names label ``k``.
        source: where the data came from (a path or a description), used in messages.
    """

    images: np.ndarray
    labels: np.ndarray
    classes: list[str]
    source: str = field(default="<in memory>", compare=False)

    def __post_init__(self) -> None:
        check_arrays(self.images, self.labels, self.classes, self.source)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_classes(self) -> int:
        """Number of classes, ``len(classes)``."""
        return len(self.classes)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """Shape (C, H, W) of one image."""
        c, h, w = self.images.shape[1:]
        return int(c), int(h), int(w)

    def to_tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(images, labels)`` as torch tensors sharing memory with the arrays.

        Shapes: uint8 (N, C, H, W) and int64 (N,).
        """
        return torch.from_numpy(self.images), torch.from_numpy(self.labels)

    def subset(self, index: slice | np.ndarray | list[int]) -> ArraySplit:
        """Return the images and labels selected by ``index`` (copied), same classes."""
        return ArraySplit(
            np.ascontiguousarray(self.images[index]),
            np.ascontiguousarray(self.labels[index]),
            list(self.classes),
            self.source,
        )
