"""Small file helpers shared by the loaders: reading (maybe gzipped) bytes, finding files."""

from __future__ import annotations

import contextlib
import gzip
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO, Literal

GZIP_MAGIC = b"\x1f\x8b"


@contextlib.contextmanager
def open_maybe_gzip(path: Path) -> Iterator[BinaryIO]:
    """A binary stream of ``path``'s contents, inflated on the fly if it is gzipped (detected
    by content), so a reader can check a declared size before inflating any more of it."""
    with open(path, "rb") as raw:
        gz = raw.read(2) == GZIP_MAGIC
        raw.seek(0)
        if not gz:
            yield raw
            return
        with gzip.GzipFile(fileobj=raw) as f:
            yield f  # type: ignore[misc]


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
