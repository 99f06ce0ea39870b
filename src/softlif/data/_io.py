"""Small file helpers shared by the loaders: reading (maybe gzipped) bytes, finding files."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from .errors import DataError

GZIP_MAGIC = b"\x1f\x8b"


def read_bytes(path: Path) -> bytes:
    """Return the contents of ``path``, decompressed if it is gzipped (detected by content).

    Raises:
        DataError: the file cannot be read or its gzip stream is truncated or corrupt.
    """
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DataError(f"{path}: cannot read file ({e})") from e
    if raw[:2] != GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path}: corrupt or truncated gzip data ({e})") from e


def find_first(root: Path, names: Iterable[str]) -> Path | None:
    """Return ``root / name`` for the first name that is an existing file, else None."""
    for name in names:
        p = root / name
        if p.is_file():
            return p
    return None


def require_dir(root: str | Path, dataset: str) -> Path:
    """Return ``root`` as a Path, raising a :class:`DataError` when it is not a folder."""
    from .errors import missing_files_error
    from .registry import expected_files

    root = Path(root).expanduser()
    if not root.is_dir():
        raise missing_files_error(dataset, root, [f"the folder {root}"], expected_files(dataset))
    return root


def check_split(split: str) -> Literal["train", "test"]:
    """Return ``split`` if it is "train" or "test", else raise ValueError."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    return split  # type: ignore[return-value]
