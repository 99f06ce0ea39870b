"""SVHN cropped digits (Netzer et al., 2011): ``train_32x32.mat`` / ``test_32x32.mat``.

MATLAB v5 files read with :func:`scipy.io.loadmat`: ``X`` is uint8 (32, 32, 3, N) and
``y`` is (N, 1) with labels 1..10, where 10 stands for the digit 0 (mapped to 0 here).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np

from ._io import check_split, require_dir
from .errors import DataError, missing_files_error
from .limits import check_file_size, check_npy_header
from .split import ArraySplit

SVHN_CLASSES = [str(d) for d in range(10)]
SVHN_FILES = {"train": "train_32x32.mat", "test": "test_32x32.mat"}


# Run in a child interpreter: scipy's MAT reader can crash the process on a corrupt file (a
# changed type byte did), and a crash there must become a DataError here, not kill softlif.
_CHILD = """
import sys
import numpy as np
from scipy.io import loadmat
path, out = sys.argv[1], sys.argv[2]
try:
    mat = loadmat(path, variable_names=("X", "y"))
except NotImplementedError as e:
    print(f"unsupported MATLAB file version ({e}); expected v5", file=sys.stderr); sys.exit(3)
except Exception as e:
    print(f"cannot read MATLAB file ({type(e).__name__}: {e})"[:500], file=sys.stderr)
    sys.exit(3)
missing = [k for k in ("X", "y") if k not in mat]
if missing:
    print(f"expected variables 'X' and 'y', found {sorted(mat)}", file=sys.stderr); sys.exit(3)
for k in ("X", "y"):
    v = mat[k]
    if not isinstance(v, np.ndarray) or v.dtype.hasobject:
        print(f"variable {k!r} is not a numeric array", file=sys.stderr); sys.exit(3)
    np.save(f"{out}/{k}.npy", v, allow_pickle=False)
"""


def _loadmat(path: Path) -> dict:
    """``X`` and ``y`` of a MAT v5 file, read by scipy in a child process (see above)."""
    import subprocess
    import sys
    import tempfile

    try:
        import scipy.io  # noqa: F401 - only to give the install hint here, in the parent
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "reading SVHN .mat files needs scipy: pip install softlif[data] (or pip install scipy)"
        ) from e
    check_file_size(path)
    with tempfile.TemporaryDirectory(prefix="softlif-mat-") as out:
        proc = subprocess.run([sys.executable, "-c", _CHILD, str(path), out],
                              capture_output=True, text=True, check=False)
        if proc.returncode < 0:
            raise DataError(f"{path}: the MAT reader crashed on this file (signal "
                            f"{-proc.returncode}): the file is corrupt; download it again")
        if proc.returncode != 0:
            msg = proc.stderr.strip().splitlines()[-1:] or ["unknown error"]
            raise DataError(f"{path}: {msg[0]}")
        arrays = {}
        for k in ("X", "y"):
            f = Path(out) / f"{k}.npy"
            with open(f, "rb") as fh:
                check_npy_header(fh, f"{path}[{k}]", "the MAT variable")
            arrays[k] = np.load(f, allow_pickle=False)
    return arrays


def read_svhn_mat(path: str | Path) -> ArraySplit:
    """Read one SVHN cropped-digits ``.mat`` file.

    Returns:
        images uint8 (N, 3, H, W) RGB (H = W = 32 for the official files), labels int64
        (N,) in 0..9 (the file's label 10 becomes 0).

    Raises:
        DataError: unreadable file, missing ``X``/``y``, wrong shapes or dtypes, counts
            that differ, or labels outside 1..10.
    """
    path = Path(path)
    mat = _loadmat(path)
    if "X" not in mat or "y" not in mat:
        raise DataError(f"{path}: expected variables 'X' and 'y', found {sorted(mat)}")
    x, y = mat["X"], mat["y"]
    if not isinstance(x, np.ndarray) or x.dtype != np.uint8 or x.ndim != 4 or x.shape[2] != 3:
        raise DataError(
            f"{path}: 'X' must be uint8 of shape (H, W, 3, N), got "
            f"{getattr(x, 'dtype', type(x).__name__)} {getattr(x, 'shape', '')}"
        )
    y = np.asarray(y)
    if y.ndim == 2 and 1 in y.shape:
        y = y.reshape(-1)
    if y.ndim != 1 or y.dtype.kind not in "iuf":
        raise DataError(f"{path}: 'y' must be numeric of shape (N, 1), got {y.dtype} {y.shape}")
    if len(y) != x.shape[3]:
        raise DataError(f"{path}: image count ({x.shape[3]}) does not equal label count ({len(y)})")
    bad = ~np.isin(y, np.arange(1, 11))  # also catches NaN and non-integral floats
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"{path}: label {y[i].item()} at index {i} is out of range 1..10")
    labels = y.astype(np.int64) % 10  # 10 -> 0
    images = np.ascontiguousarray(x.transpose(3, 2, 0, 1))  # (H, W, C, N) -> (N, C, H, W)
    return ArraySplit(images, labels, list(SVHN_CLASSES), str(path))


def load_svhn(root: str | Path, split: Literal["train", "test"] = "train") -> ArraySplit:
    """Load SVHN cropped digits from ``root/train_32x32.mat`` or ``root/test_32x32.mat``.

    Returns:
        images uint8 (N, 3, 32, 32), labels int64 (N,) in 0..9; N = 73257 (train) or
        26032 (test) for the official files (``extra_32x32.mat`` is not used).
    """
    root = require_dir(root, "svhn")
    split = check_split(split)
    path = root / SVHN_FILES[split]
    if not path.is_file():
        raise missing_files_error("svhn", root, [SVHN_FILES[split]], list(SVHN_FILES.values()))
    return read_svhn_mat(path)
