"""Caps on what a data file may ask softlif to allocate, checked before allocating.

A small file can declare a huge array (an IDX or .npy header, a gzip bomb, a label of
2**31 - 1 that would size a class-name list). Every reader checks the declared size against
these caps first and raises :class:`DataError` naming the file, the field and the cap.

* ``max_bytes``: the largest array or decompressed stream one file may produce (default
  8 GiB; environment variable ``SOFTLIF_MAX_BYTES`` overrides it, in bytes);
* ``max_classes``: the largest number of classes (a label must be below it; 100,000);
* ``max_ndim``: the most dimensions an IDX/.npy array may declare (8);
* ``max_image_side``: the largest side, in pixels, an image may be decoded to (16,384).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from .errors import DataError


def _env_bytes() -> int:
    raw = os.environ.get("SOFTLIF_MAX_BYTES")
    if raw is None:
        return 8 * 2**30
    try:
        value = int(raw)
    except ValueError:
        raise DataError(f"SOFTLIF_MAX_BYTES must be a whole number of bytes, got {raw!r}") from None
    if value < 1:
        raise DataError(f"SOFTLIF_MAX_BYTES must be >= 1, got {value}")
    return value


@dataclass
class Limits:
    """The caps (see the module docstring); change them on :data:`LIMITS`."""

    max_bytes: int = 8 * 2**30
    max_classes: int = 100_000
    max_ndim: int = 8
    max_image_side: int = 16_384


LIMITS = Limits(max_bytes=_env_bytes())


def check_alloc(source: str, what: str, shape: tuple[int, ...], itemsize: int) -> int:
    """Bytes of an array of ``shape`` (Python ints: no overflow) if within the caps, else a
    :class:`DataError` naming ``source`` and ``what``."""
    if len(shape) > LIMITS.max_ndim:
        raise DataError(f"{source}: {what} declares {len(shape)} dimensions (at most "
                        f"{LIMITS.max_ndim}): corrupt or not a data file")
    if any(d < 0 for d in shape):
        raise DataError(f"{source}: {what} declares a negative dimension in {shape}")
    nbytes = math.prod(int(d) for d in shape) * int(itemsize)
    if nbytes > LIMITS.max_bytes:
        raise DataError(f"{source}: {what} declares shape {tuple(shape)} ({nbytes:,} bytes), "
                        f"above the cap of {LIMITS.max_bytes:,} bytes (raise it with "
                        "SOFTLIF_MAX_BYTES if the file is genuine)")
    return nbytes


def check_file_size(path: Path) -> int:
    """Size of ``path`` in bytes if within ``LIMITS.max_bytes``, else a :class:`DataError`
    (also for a file that cannot be read)."""
    try:
        size = path.stat().st_size
    except OSError as e:
        raise DataError(f"{path}: cannot read file ({e})") from e
    if size > LIMITS.max_bytes:
        raise DataError(f"{path}: {size:,} bytes, above the cap of {LIMITS.max_bytes:,} (raise "
                        "it with SOFTLIF_MAX_BYTES if the file is genuine)")
    return size


def check_npy_header(f: IO[bytes], source: str, what: str) -> None:
    """Read a .npy header from the stream ``f`` (not its data) and check the declared dtype
    (no object arrays) and size against the caps, before numpy allocates anything."""
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(f)
    elif version in ((2, 0), (3, 0)):
        shape, _, dtype = np.lib.format.read_array_header_2_0(f)
    else:
        raise DataError(f"{source}: unknown .npy version {version}")
    if dtype.hasobject:
        raise DataError(f"{source}: object arrays (pickles) are refused; store numbers only")
    check_alloc(source, what, tuple(shape), dtype.itemsize)


def default_classes(labels: Any, source: str) -> list[str]:
    """Class names "0" .. str(max label) for integer ``labels`` (arrays), refusing negative
    labels and labels at or above ``LIMITS.max_classes`` before building the list."""
    top = -1
    for y in labels:
        y = np.asarray(y)
        if y.size:
            lo, hi = int(y.min()), int(y.max())
            if lo < 0:
                bad = int(np.flatnonzero(y < 0)[0])
                raise DataError(f"{source}: label {int(y[bad])} at index {bad} is out of range "
                                "(negative; labels must be 0 .. classes-1)")
            top = max(top, hi)
    if top >= LIMITS.max_classes:
        raise DataError(f"{source}: label {top} implies {top + 1:,} classes, above the cap of "
                        f"{LIMITS.max_classes:,}: corrupt labels, or pass the class names")
    return [str(k) for k in range(max(top + 1, 1))]
