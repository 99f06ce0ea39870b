"""Explicit, checksum-verified download of the public data sets (never run at import).

Sources and checksums (MD5 of the files as served):

- MNIST: the ``ossci-datasets`` S3 mirror used by torchvision, then yann.lecun.com;
  gz MD5s as listed in torchvision's ``datasets/mnist.py``. Mirrors that recompress the
  gz files are accepted when the decompressed bytes have the official MD5s.
- Fashion-MNIST: Zalando's S3 bucket; MD5s from the project's README / torchvision.
- CIFAR-10 / CIFAR-100: the *binary* versions from www.cs.toronto.edu/~kriz (MD5s from
  that page), so that loading needs no unpickling.
- SVHN: ``train_32x32.mat`` / ``test_32x32.mat`` from ufldl.stanford.edu (MD5s as in
  torchvision's ``datasets/svhn.py``); ``extra_32x32.mat`` (1.3 GB) is not fetched.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import shutil
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..io import atomic_path, file_digest
from .errors import DataError


@dataclass(frozen=True)
class Remote:
    """One file to download.

    Attributes:
        filename: name of the file in the data folder.
        urls: mirrors tried in order.
        md5: MD5 (hex) of the file as served.
        raw_md5: optional MD5 of its gunzipped content, accepted instead of ``md5``.
        extract: the file is a tar archive to unpack into the data folder.
        provides: paths (relative to the data folder) that exist once it is in place;
            when all exist the download is skipped.
    """

    filename: str
    urls: tuple[str, ...]
    md5: str
    raw_md5: str | None = None
    extract: bool = False
    provides: tuple[str, ...] = ()


_MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
_FASHION = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
_KRIZ = "https://www.cs.toronto.edu/~kriz/"
_SVHN = "http://ufldl.stanford.edu/housenumbers/"


def _mnist(name: str, md5: str, raw_md5: str) -> Remote:
    return Remote(f"{name}.gz", tuple(m + f"{name}.gz" for m in _MNIST_MIRRORS), md5, raw_md5)


#: Data set name -> files. Tests replace this table with ``file://`` URLs.
RESOURCES: dict[str, tuple[Remote, ...]] = {
    "mnist": (
        _mnist("train-images-idx3-ubyte", "f68b3c2dcbeaaa9fbdd348bbdeb94873",
               "6bbc9ace898e44ae57da46a324031adb"),
        _mnist("train-labels-idx1-ubyte", "d53e105ee54ea40749a09fcbcd1e9432",
               "a25bea736e30d166cdddb491f175f624"),
        _mnist("t10k-images-idx3-ubyte", "9fb629c4189551a2d022fa330f9573f3",
               "2646ac647ad5339dbf082846283269ea"),
        _mnist("t10k-labels-idx1-ubyte", "ec29112dd5afa0611ce80d1b7f02629c",
               "27ae3e4e09519cfbb04c329615203637"),
    ),
    "fashion-mnist": tuple(
        Remote(f, (_FASHION + f,), md5)
        for f, md5 in (
            ("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
            ("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
            ("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
            ("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"),
        )
    ),
    "cifar10": (
        Remote(
            "cifar-10-binary.tar.gz", (_KRIZ + "cifar-10-binary.tar.gz",),
            "c32a1d4ab5d03f1284b67883e8d87530", extract=True,
            provides=tuple(f"cifar-10-batches-bin/{f}" for f in (
                *(f"data_batch_{k}.bin" for k in range(1, 6)), "test_batch.bin")),
        ),
    ),
    "cifar100": (
        Remote(
            "cifar-100-binary.tar.gz", (_KRIZ + "cifar-100-binary.tar.gz",),
            "03b5dce01913d631647c71ecec9e9cb8", extract=True,
            provides=("cifar-100-binary/train.bin", "cifar-100-binary/test.bin"),
        ),
    ),
    "svhn": (
        Remote("train_32x32.mat", (_SVHN + "train_32x32.mat",), "e26dedcc434d2e4c54c9b2d4a06d8373"),
        Remote("test_32x32.mat", (_SVHN + "test_32x32.mat",), "eb5a983be6a315427106f1b164d9cef3"),
    ),
}  # fmt: skip

_CHUNK = 1 << 20


def data_home(name: str | None = None) -> Path:
    """Default data folder: ``$SOFTLIF_DATA`` or ``~/.cache/softlif``, plus ``/name``."""
    base = Path(os.environ.get("SOFTLIF_DATA") or "~/.cache/softlif").expanduser()
    return base / name if name else base


def _md5_gunzipped(path: Path) -> str | None:
    h = hashlib.md5(usedforsecurity=False)
    try:
        with gzip.open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
    except (OSError, EOFError, zlib.error):
        return None
    return h.hexdigest()


def _verified(path: Path, remote: Remote, md5: str | None = None) -> bool:
    if (md5 or file_digest(path, "md5")) == remote.md5:
        return True
    return remote.raw_md5 is not None and _md5_gunzipped(path) == remote.raw_md5


def _fetch(url: str, target: Path, remote: Remote, timeout: float) -> None:
    """Stream ``url`` to a temp file beside ``target``, verify, then rename atomically."""
    with atomic_path(target, suffix=".part") as tmp:
        h = hashlib.md5(usedforsecurity=False)
        with open(tmp, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            while chunk := resp.read(_CHUNK):
                h.update(chunk)
                out.write(chunk)
        if not _verified(tmp, remote, h.hexdigest()):
            raise DataError(
                f"{url}: checksum mismatch for {remote.filename} (MD5 {h.hexdigest()}, expected "
                f"{remote.md5}); the download was discarded"
            )


def _check_member(member: tarfile.TarInfo, archive: Path) -> None:
    name = member.name
    parts = PurePosixPath(name).parts
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":") or ".." in parts:
        raise DataError(f"{archive}: unsafe path {name!r} in archive (absolute or '..')")
    if not (member.isfile() or member.isdir()):
        raise DataError(f"{archive}: refusing link or special file {name!r} in archive")


def safe_extract_tar(archive: str | Path, dest: str | Path) -> list[str]:
    """Extract a tar archive into ``dest``, refusing absolute paths, ``..``, links and devices.

    Members are checked before anything is written, unpacked into a temporary folder
    inside ``dest`` and then moved into place (existing entries of the same name are
    replaced). Returns the top-level names created.
    """
    archive, dest = Path(archive), Path(dest)
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            for m in members:
                _check_member(m, archive)
            tmp = Path(tempfile.mkdtemp(dir=dest, prefix=".extract-"))
            try:
                if hasattr(tarfile, "data_filter"):
                    tar.extractall(tmp, members=members, filter="data")
                else:  # pragma: no cover - Python without extraction filters
                    tar.extractall(tmp, members=members)
                tops = sorted(p.name for p in tmp.iterdir())
                for top in tops:
                    final = dest / top
                    if final.is_dir() and not final.is_symlink():
                        shutil.rmtree(final)
                    elif final.exists() or final.is_symlink():
                        final.unlink()
                    os.replace(tmp / top, final)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
        raise DataError(f"{archive}: cannot extract archive ({type(e).__name__}: {e})") from e
    return tops


def download(
    name: str,
    root: str | Path | None = None,
    *,
    force: bool = False,
    timeout: float = 60.0,
    verbose: bool = True,
) -> Path:
    """Download (and unpack) a public data set into ``root``, verified by MD5.

    Args:
        name: "mnist", "fashion-mnist", "cifar10", "cifar100" or "svhn".
        root: data folder; default :func:`data_home` ``(name)``, i.e.
            ``$SOFTLIF_DATA/name`` or ``~/.cache/softlif/name``.
        force: download again even when verified files are present.
        timeout: seconds per network operation.
        verbose: print one line per file fetched (to stderr).

    Returns:
        The data folder, ready for ``load_split(name, root)``.

    Raises:
        DataError: every mirror failed (e.g. offline: the message says which files to put
            where by hand) or a checksum mismatched (nothing is left behind).
    """
    if name not in RESOURCES:
        hint = " (get ImageNet by hand from image-net.org)" if name == "imagenet" else ""
        raise ValueError(f"cannot download {name!r}{hint}; downloadable: {sorted(RESOURCES)}")
    root = Path(root).expanduser() if root is not None else data_home(name)
    root.mkdir(parents=True, exist_ok=True)
    for remote in RESOURCES[name]:
        target = root / remote.filename
        if not force and remote.provides and all((root / p).exists() for p in remote.provides):
            continue  # already unpacked
        if force or not (target.is_file() and _verified(target, remote)):
            errors: list[str] = []
            mismatch: DataError | None = None
            for url in remote.urls:
                if verbose:
                    print(f"softlif: downloading {url} -> {target}", file=sys.stderr)
                try:
                    _fetch(url, target, remote, timeout)
                    break
                except DataError as e:
                    mismatch = e
                    errors.append(str(e))
                except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as e:
                    errors.append(f"{url}: {e}")
            else:
                if mismatch is not None:
                    raise mismatch
                files = "\n".join(f"  {r.filename}  (MD5 {r.md5})" for r in RESOURCES[name])
                raise DataError(
                    f"{name}: could not download {remote.filename} ("
                    + "; ".join(errors)
                    + f").\nIf this machine is offline, fetch these files elsewhere from "
                    f"{', '.join(remote.urls)} and put them in {root}:\n{files}\n"
                    f"(archives may be unpacked there instead; see softlif.data.expected_files)"
                )
        if remote.extract:
            if verbose:
                print(f"softlif: extracting {target}", file=sys.stderr)
            safe_extract_tar(target, root)
    return root
