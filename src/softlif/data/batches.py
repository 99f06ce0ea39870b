"""Batches of uint8 images and labels from any split: in-memory arrays or lazy image files.

One iterator for training, evaluation and decoding, so a lazy data set (image folders,
ImageNet) costs one batch of decoded images in memory (times the loader's prefetch), never the
whole split.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .errors import DataError
from .split import ArraySplit


def split_labels(split: ArraySplit | Dataset) -> torch.Tensor:
    """int64 labels (N,) of an :class:`ArraySplit` or a lazy data set with a ``labels`` array
    (:class:`softlif.data.ImageFileDataset`), without decoding any image."""
    labels = getattr(split, "labels", None)
    if labels is None:
        raise TypeError(f"{type(split).__name__} has no labels array")
    return torch.as_tensor(np.asarray(labels), dtype=torch.int64)


def iter_batches(
    split: ArraySplit | Dataset,
    batches: Iterable[Sequence[int] | torch.Tensor],
    *,
    workers: int = 0,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(uint8 images (B, C, H, W), int64 labels (B,)) for each index batch in ``batches``.

    An :class:`ArraySplit` is indexed in memory; a lazy data set is decoded by a
    :class:`~torch.utils.data.DataLoader` with ``workers`` processes (0: this one). A bad
    file raises :class:`DataError` with the worker's one-line message.
    """
    if isinstance(split, ArraySplit):
        x, y = torch.from_numpy(split.images), torch.from_numpy(split.labels)
        for idx in batches:
            idx = torch.as_tensor(idx, dtype=torch.int64)
            yield x[idx], y[idx]
        return
    index_lists = [torch.as_tensor(b, dtype=torch.int64).tolist() for b in batches]
    # a private generator: the loader's seed draw must not consume the global RNG (dropout)
    loader: Any = DataLoader(split, batch_sampler=index_lists, num_workers=workers,
                             generator=torch.Generator().manual_seed(0))
    it = iter(loader)
    while True:
        try:
            xb, yb = next(it)
        except StopIteration:
            return
        except DataError as e:  # from a worker: the message carries its whole traceback
            raise DataError(_last_line(str(e))) from None
        yield xb, torch.as_tensor(yb, dtype=torch.int64)


def chunks(n: int, size: int) -> list[torch.Tensor]:
    """Indices 0 .. n-1 in consecutive batches of ``size`` (the last may be shorter)."""
    return [torch.arange(s, min(s + size, n)) for s in range(0, n, size)]


def _last_line(msg: str) -> str:
    """The original error's message from a DataLoader worker's wrapped traceback."""
    lines = [ln for ln in msg.strip().splitlines() if ln.strip()]
    last = lines[-1] if lines else msg
    for prefix in ("softlif.data.errors.DataError: ", "DataError: "):
        if last.startswith(prefix):
            return last[len(prefix):]
    return last
