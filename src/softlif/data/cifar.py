"""CIFAR-10 and CIFAR-100 (A. Krizhevsky, 2009) in both official on-disk layouts.

Binary ("suitable for C programs") layout: fixed-size records, each label byte(s) then
3072 pixel bytes (1024 red, 1024 green, 1024 blue, each plane row-major 32x32).
CIFAR-10 records have 1 label byte; CIFAR-100 records have 2 (coarse then fine; the fine
label is used). Python layout: pickled dicts (``b"data"``: uint8 (N, 3072) in the same
pixel order, ``b"labels"`` / ``b"fine_labels"``: list of ints), read with the
restricted unpickler of :mod:`softlif.data.safe_pickle`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np

from ._io import check_split, require_dir
from .errors import DataError, missing_files_error
from .safe_pickle import safe_pickle_load
from .split import ArraySplit, check_arrays

CIFAR10_CLASSES = [
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
]  # fmt: skip

CIFAR100_CLASSES = [
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle",
    "bottle", "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle",
    "caterpillar", "cattle", "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch",
    "crab", "crocodile", "cup", "dinosaur", "dolphin", "elephant", "flatfish", "forest", "fox",
    "girl", "hamster", "house", "kangaroo", "keyboard", "lamp", "lawn_mower", "leopard", "lion",
    "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain", "mouse", "mushroom",
    "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
    "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road",
    "rocket", "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake",
    "spider", "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank",
    "telephone", "television", "tiger", "tractor", "train", "trout", "tulip", "turtle",
    "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm",
]  # fmt: skip

_PIXELS = 3 * 32 * 32

# Per data set and layout: folder name, train files, test files, meta file.
_LAYOUTS: dict[str, dict[str, tuple[str, tuple[str, ...], tuple[str, ...], str]]] = {
    "cifar10": {
        "bin": (
            "cifar-10-batches-bin",
            tuple(f"data_batch_{k}.bin" for k in range(1, 6)),
            ("test_batch.bin",),
            "batches.meta.txt",
        ),
        "py": (
            "cifar-10-batches-py",
            tuple(f"data_batch_{k}" for k in range(1, 6)),
            ("test_batch",),
            "batches.meta",
        ),
    },
    "cifar100": {
        "bin": ("cifar-100-binary", ("train.bin",), ("test.bin",), "fine_label_names.txt"),
        "py": ("cifar-100-python", ("train",), ("test",), "meta"),
    },
}


def cifar_expected_files(dataset: str) -> list[str]:
    """Files the CIFAR loader accepts for ``dataset`` ("cifar10" / "cifar100"), per layout."""
    out = []
    for layout, (folder, train, test, meta) in _LAYOUTS[dataset].items():
        files = ", ".join((*train, *test))
        out.append(f"{folder}/{{{files}}}  ({layout} layout; {meta} optional)")
    out[-1] += "  -- either layout will do; binary is preferred"
    return out


def _locate(root: Path, dataset: str, layout: str) -> tuple[str, Path]:
    """Return (layout, folder) of the first complete layout found under ``root``."""
    layouts = ("bin", "py") if layout == "auto" else (layout,)
    for lay in layouts:
        folder, train, test, _ = _LAYOUTS[dataset][lay]
        for cand in (root / folder, root):  # root may be the parent or the folder itself
            if all((cand / f).is_file() for f in (*train, *test)):
                return lay, cand
    # Nothing complete: report what is missing for the (first) preferred layout.
    lay = layouts[0]
    folder, train, test, _ = _LAYOUTS[dataset][lay]
    base = root / folder if (root / folder).is_dir() else root
    missing = [f"{folder}/{f}" for f in (*train, *test) if not (base / f).is_file()]
    raise missing_files_error(dataset, root, missing, cifar_expected_files(dataset))


def _read_binary(path: Path, label_bytes: int) -> tuple[np.ndarray, np.ndarray]:
    """Read one binary batch: images uint8 (N, 3, 32, 32), labels uint8 (N, label_bytes)."""
    rec = label_bytes + _PIXELS
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DataError(f"{path}: cannot read file ({e})") from e
    if len(raw) == 0 or len(raw) % rec:
        raise DataError(
            f"{path}: size {len(raw)} bytes is not a positive multiple of the record size {rec} "
            f"({label_bytes} label byte(s) + {_PIXELS} pixel bytes): truncated, or not a "
            f"{'CIFAR-100' if label_bytes == 2 else 'CIFAR-10'} binary batch"
        )
    arr = np.frombuffer(raw, dtype=np.uint8).reshape(-1, rec)
    images = arr[:, label_bytes:].reshape(-1, 3, 32, 32).copy()
    return images, arr[:, :label_bytes].copy()


def _meta_text(path: Path, n: int) -> list[str] | None:
    if not path.is_file():
        return None
    names = [s.strip() for s in path.read_text(errors="replace").splitlines() if s.strip()]
    if len(names) != n:
        raise DataError(f"{path}: expected {n} class names (one per line), found {len(names)}")
    return names


def _str_keys(obj: Any, path: Path) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise DataError(f"{path}: expected a pickled dict, got {type(obj).__name__}")
    return {k.decode("latin1") if isinstance(k, bytes) else str(k): v for k, v in obj.items()}


def _meta_pickle(path: Path, key: str, n: int) -> list[str] | None:
    if not path.is_file():
        return None
    meta = _str_keys(safe_pickle_load(path), path)
    names = meta.get(key)
    if not isinstance(names, list) or len(names) != n:
        raise DataError(f"{path}: expected key {key!r} holding a list of {n} class names")
    return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in names]


def _read_python(path: Path, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    """Read one pickled batch: images uint8 (N, 3, 32, 32), labels int64 (N,)."""
    d = _str_keys(safe_pickle_load(path), path)
    data, labels = d.get("data"), d.get(label_key)
    if (
        not isinstance(data, np.ndarray)
        or data.dtype != np.uint8
        or data.ndim != 2
        or (data.shape[1] != _PIXELS)
    ):
        what = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DataError(f"{path}: key 'data' must be a uint8 array (N, {_PIXELS}), got {what}")
    if labels is None:
        raise DataError(f"{path}: no {label_key!r} key (keys: {sorted(d)})")
    try:
        lab = np.asarray(labels)
    except Exception as e:  # noqa: BLE001 - report any conversion failure as bad data
        raise DataError(f"{path}: {label_key!r} is not a list of integers ({e})") from e
    if lab.ndim != 1 or lab.dtype.kind not in "iu":
        raise DataError(f"{path}: {label_key!r} must be a flat list of integers")
    if len(lab) != len(data):
        raise DataError(
            f"{path}: image count ({len(data)}) does not equal label count ({len(lab)})"
        )
    return data.reshape(-1, 3, 32, 32), lab.astype(np.int64)


def _load_cifar(
    dataset: str, root: str | Path, split: str, layout: Literal["auto", "bin", "py"]
) -> ArraySplit:
    root = require_dir(root, dataset)
    split = check_split(split)
    if layout not in ("auto", "bin", "py"):
        raise ValueError(f"layout must be 'auto', 'bin' or 'py', got {layout!r}")
    n_classes = 10 if dataset == "cifar10" else 100
    lay, folder = _locate(root, dataset, layout)
    _, train, test, meta = _LAYOUTS[dataset][lay]
    files = train if split == "train" else test
    images, labels = [], []
    for name in files:
        path = folder / name
        if lay == "bin":
            x, lab = _read_binary(path, 1 if dataset == "cifar10" else 2)
            if dataset == "cifar100" and lab[:, 0].max() >= 20:
                raise DataError(
                    f"{path}: coarse label {int(lab[:, 0].max())} out of range [0, 20): "
                    f"not a CIFAR-100 binary file"
                )
            y = lab[:, -1].astype(np.int64)
        else:
            x, y = _read_python(path, "labels" if dataset == "cifar10" else "fine_labels")
        check_arrays(x, y, [""] * n_classes, str(path))
        images.append(x)
        labels.append(y)
    if lay == "bin":
        classes = _meta_text(folder / meta, n_classes)
    else:
        classes = _meta_pickle(
            folder / meta, "label_names" if dataset == "cifar10" else "fine_label_names", n_classes
        )
    if classes is None:
        classes = list(CIFAR10_CLASSES if dataset == "cifar10" else CIFAR100_CLASSES)
    x = images[0] if len(images) == 1 else np.concatenate(images)
    y = labels[0] if len(labels) == 1 else np.concatenate(labels)
    if not (x.flags.writeable and x.flags.c_contiguous):  # unpickled arrays may view bytes
        x = x.copy()
    return ArraySplit(x, y, classes, str(folder))


def load_cifar10(
    root: str | Path,
    split: Literal["train", "test"] = "train",
    *,
    layout: Literal["auto", "bin", "py"] = "auto",
) -> ArraySplit:
    """Load CIFAR-10 from ``root/cifar-10-batches-bin`` or ``root/cifar-10-batches-py``.

    ``root`` may also be the batches folder itself. ``layout="auto"`` prefers the binary
    layout (no unpickling) when both are present.

    Returns:
        images uint8 (N, 3, 32, 32) RGB, labels int64 (N,) in 0..9; N = 50000 (train,
        data batches 1 to 5 in order) or 10000 (test) for the official files.
    """
    return _load_cifar("cifar10", root, split, layout)


def load_cifar100(
    root: str | Path,
    split: Literal["train", "test"] = "train",
    *,
    layout: Literal["auto", "bin", "py"] = "auto",
) -> ArraySplit:
    """Load CIFAR-100 (fine labels) from ``root/cifar-100-binary`` or ``root/cifar-100-python``.

    Returns:
        images uint8 (N, 3, 32, 32) RGB, labels int64 (N,) in 0..99 (the fine labels);
        N = 50000 (train) or 10000 (test) for the official files.
    """
    return _load_cifar("cifar100", root, split, layout)
