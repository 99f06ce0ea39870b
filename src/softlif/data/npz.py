"""Users' own data as one ``.npz`` file with ``x_train, y_train, x_test, y_test``."""

from __future__ import annotations

import tokenize
import zipfile
import zlib
from pathlib import Path
from typing import Literal

import numpy as np

from ._io import check_split
from .errors import DataError, missing_files_error
from .limits import check_npy_header, default_classes
from .split import ArraySplit, check_arrays

NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


def images_to_nchw_uint8(
    x: np.ndarray, source: str, layout: Literal["auto", "NCHW", "NHWC"] = "auto"
) -> np.ndarray:
    """Convert an image array to uint8 (N, C, H, W).

    Accepted: (N, H, W) (grey), (N, C, H, W) or (N, H, W, C) with C in {1, 3, 4}; dtype
    uint8 (taken as is) or float in [0, 1] (scaled by 255 and rounded). With
    ``layout="auto"`` a 4-D array is NCHW if only axis 1 looks like channels, NHWC if only
    axis 3 does; if both do (e.g. (N, 3, 3, 3)) pass ``layout`` explicitly.

    Raises:
        DataError: other dtypes or ranks, NaN or floats outside [0, 1], ambiguous layout.
    """
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4:
        chan = (1, 3, 4)
        if layout == "auto":
            first, last = x.shape[1] in chan, x.shape[3] in chan
            if first == last:
                raise DataError(
                    f"{source}: cannot tell whether images of shape {x.shape} are NCHW or NHWC; "
                    f"pass layout='NCHW' or layout='NHWC'"
                )
            layout = "NCHW" if first else "NHWC"
        if layout == "NHWC":
            x = x.transpose(0, 3, 1, 2)
        elif layout != "NCHW":
            raise ValueError(f"layout must be 'auto', 'NCHW' or 'NHWC', got {layout!r}")
    else:
        raise DataError(
            f"{source}: images must have shape (N, H, W), (N, C, H, W) or (N, H, W, C), "
            f"got {x.shape}"
        )
    if x.dtype == np.uint8:
        return np.ascontiguousarray(x)
    if x.dtype.kind == "f":
        lo, hi = (float(x.min()), float(x.max())) if x.size else (0.0, 0.0)
        if not (np.isfinite(lo) and np.isfinite(hi)) or lo < 0.0 or hi > 1.0:
            raise DataError(
                f"{source}: float images must lie in [0, 1] (no NaN/inf), found range [{lo}, {hi}]"
            )
        return np.ascontiguousarray(np.rint(x * 255.0).astype(np.uint8))
    raise DataError(f"{source}: images must be uint8 or float in [0, 1], got {x.dtype}")


def _labels(y: np.ndarray, source: str) -> np.ndarray:
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise DataError(f"{source}: labels must be integers of shape (N,), got {y.dtype} {y.shape}")
    return y.astype(np.int64)


def _check_npz_headers(path: Path) -> None:
    """Read each array's .npy header (not its data) and check the declared shape and dtype
    against the caps before numpy allocates anything."""
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                with zf.open(info) as f:
                    check_npy_header(f, f"{path}[{info.filename}]", "the .npy header")
    except DataError:
        raise
    except (ValueError, OSError, zipfile.BadZipFile, EOFError, zlib.error, KeyError,
            TypeError, tokenize.TokenError, SyntaxError, NotImplementedError,
            RuntimeError) as e:  # unsupported zip features (version, encryption) included
        raise DataError(f"{path}: cannot read .npz ({type(e).__name__}: {e})"[:400]) from None


def load_npz(
    path: str | Path,
    split: Literal["train", "test"] = "train",
    *,
    layout: Literal["auto", "NCHW", "NHWC"] = "auto",
    classes: list[str] | None = None,
) -> ArraySplit:
    """Load one split of a ``.npz`` holding ``x_train, y_train, x_test, y_test``.

    Images: see :func:`images_to_nchw_uint8` (NHW, NCHW or NHWC; uint8 or float in
    [0, 1]). Labels: integers, shape (N,) or (N, 1), values in ``[0, num_classes)``.
    Classes: ``classes`` if given, else the file's optional ``classes`` array of strings,
    else ``"0" .. str(max label over both splits)``. Loaded with ``allow_pickle=False``.

    Args:
        path: the ``.npz`` file, or a folder holding exactly one.

    Returns:
        images uint8 (N, C, H, W), labels int64 (N,).
    """
    split = check_split(split)
    path = Path(path).expanduser()
    if path.is_dir():
        found = sorted(path.glob("*.npz"))
        if not found:
            raise missing_files_error(
                "npz", path, ["*.npz"], [f"a .npz file with keys {', '.join(NPZ_KEYS)}"]
            )
        if len(found) > 1:
            raise DataError(
                f"{path}: expected exactly one .npz file in this folder, found "
                f"{[f.name for f in found]}; pass the file's path"
            )
        path = found[0]
    if not path.is_file():
        raise missing_files_error(
            "npz", path.parent, [str(path)], [f"a .npz file with keys {', '.join(NPZ_KEYS)}"]
        )
    if not zipfile.is_zipfile(path):
        raise DataError(f"{path}: not a readable .npz file (a zip archive of .npy arrays; this "
                        "one is truncated or of another format); save one with numpy.savez("
                        "path, x_train=..., y_train=..., x_test=..., y_test=...)")
    _check_npz_headers(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in NPZ_KEYS if k not in z.files]
            if missing:
                raise DataError(f"{path}: missing key(s) {missing}; has {sorted(z.files)}")
            arrays = {k: z[k] for k in NPZ_KEYS}
            if classes is None and "classes" in z.files:
                classes = [str(c) for c in z["classes"].reshape(-1)]
    except DataError:
        raise
    except (ValueError, OSError, zipfile.BadZipFile, EOFError, zlib.error, AttributeError,
            KeyError, TypeError, tokenize.TokenError, SyntaxError, NotImplementedError,
            RuntimeError) as e:
        raise DataError(f"{path}: cannot read .npz ({type(e).__name__}: {e})") from e
    src = f"{path}[{split}]"
    y_tr, y_te = _labels(arrays["y_train"], src), _labels(arrays["y_test"], src)
    if classes is None:
        classes = default_classes([y_tr, y_te], src)
    x = images_to_nchw_uint8(arrays[f"x_{split}"], f"{path}[x_{split}]", layout)
    y = y_tr if split == "train" else y_te
    check_arrays(x, y, list(classes), src)
    return ArraySplit(x, y, list(classes), str(path))
