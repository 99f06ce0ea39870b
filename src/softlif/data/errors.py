"""The one exception type raised for bad or missing data, and helpers that word its messages."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ..errors import SoftlifError

#: Names that :func:`softlif.data.download` can fetch.
DOWNLOADABLE = ("mnist", "fashion-mnist", "cifar10", "cifar100", "svhn")


class DataError(SoftlifError, ValueError):
    """A data file is missing, truncated, of the wrong format or holds inconsistent contents.

    The message always names the file (or folder) concerned and what is wrong with it.
    """


def missing_files_error(
    dataset: str, root: str | Path, missing: Iterable[str], expected: Iterable[str]
) -> DataError:
    """Build the error for files that are not where a loader looks for them.

    Args:
        dataset: registry name of the data set (e.g. ``"mnist"``).
        root: folder that was searched.
        missing: the files (relative to ``root``) that were not found.
        expected: every file (relative to ``root``) the loader wants, for the message.
    """
    root = Path(root)
    lines = [
        f"{dataset}: cannot find {', '.join(missing)} in {root}.",
        f"Expected under {root}:",
        *(f"  {e}" for e in expected),
    ]
    if dataset in DOWNLOADABLE:
        lines.append(
            f"Put the official files there by hand, or fetch them with "
            f"softlif.data.download({dataset!r}, {str(root)!r})."
        )
    elif dataset == "imagenet":
        lines.append(
            "ILSVRC-2012 cannot be downloaded automatically: obtain it from "
            "https://image-net.org (registration required) and extract it there by hand."
        )
    else:
        lines.append("Put your files there by hand (see softlif.data.expected_files).")
    return DataError("\n".join(lines))
