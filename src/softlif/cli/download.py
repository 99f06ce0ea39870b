"""`softlif download`: fetch a public data set, checksum-verified."""

from __future__ import annotations

import argparse
from typing import Any

from .common import (
    EXIT_OK,
    emit,
)


def cmd_download(args: argparse.Namespace) -> int:
    from ..data import download

    path = download(args.name, args.dir)
    emit(args, {"name": args.name, "path": str(path)}, lambda: f"{args.name}: {path}")
    return EXIT_OK


def register(sub: Any, datasets: list[str]) -> None:
    """Add `download` to the subparsers ``sub``."""
    d = sub.add_parser("download", help="download a public data set (checksum-verified)")
    d.add_argument("name", choices=["mnist", "fashion-mnist", "cifar10", "cifar100", "svhn"])
    d.add_argument("--dir", help="target folder (default ~/.cache/softlif/NAME or $SOFTLIF_DATA)")
    d.add_argument("--json", action="store_true")
    d.set_defaults(func=cmd_download)
