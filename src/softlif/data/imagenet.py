"""ImageNet ILSVRC-2012 classification (Russakovsky et al., 2015), read lazily.

Train: ``root/train/<wnid>/*.JPEG`` (the 1000 class folders from the official tars).
Val (used as the "test" split, since the ILSVRC test labels are not public), one of:

1. ``root/val/<wnid>/*.JPEG`` - class folders (as made by the common ``valprep.sh``);
2. ``root/val/*.JPEG`` flat, plus a label file in ``root`` (or ``root/val``):

   - ``val.txt`` / ``val_labels.txt``: lines ``ILSVRC2012_val_00000001.JPEG 65`` (file
     name and label) or one label per line for the images in sorted file-name order. A
     label is a WordNet id (``n01751748``) or a 0-based index into the sorted wnids (the
     Caffe ``val.txt`` convention);
   - ``ILSVRC2012_validation_ground_truth.txt`` from the official devkit: one
     ILSVRC2012_ID (1..1000) per line in file-name order, translated to wnids with the
     devkit's ``data/meta.mat`` (``root/ILSVRC2012_devkit_t12/data/meta.mat`` or beside
     the label file; needs scipy);
   - ``LOC_val_solution.csv`` (Kaggle layout): ``ImageId,PredictionString`` rows whose
     first prediction token is the wnid.

Classes are the sorted wnids of ``root/train``; without a train folder they come from a
synset list (``LOC_synset_mapping.txt``, ``synset_words.txt`` or ``synsets.txt``: first
token per line, in file order), else from the devkit ``meta.mat``, else from ``val/``
class folders. Images are decoded with Pillow, the short side scaled to 256 and the
central 256x256 square kept (the paper then takes 224x224 crops, see
:func:`softlif.data.paper_preprocess`).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Literal

import numpy as np

from ._io import check_split, require_dir
from .errors import DataError, missing_files_error
from .images import ImageFileDataset, class_subfolders, list_images, scan_class_folders

_WNID = re.compile(r"^n\d{8}$")
_LABEL_FILES = (
    "val.txt",
    "val_labels.txt",
    "LOC_val_solution.csv",
    "ILSVRC2012_validation_ground_truth.txt",
    "ILSVRC2012_devkit_t12/data/ILSVRC2012_validation_ground_truth.txt",
)
_SYNSET_FILES = ("LOC_synset_mapping.txt", "synset_words.txt", "synsets.txt")
_DEVKIT_META = "ILSVRC2012_devkit_t12/data/meta.mat"

IMAGENET_EXPECTED = [
    "train/<wnid>/*.JPEG  (1000 class folders, e.g. train/n01440764/n01440764_10026.JPEG)",
    "val/<wnid>/*.JPEG  or  val/*.JPEG flat plus a label file, one of: " + ", ".join(_LABEL_FILES),
    "optional: LOC_synset_mapping.txt | synset_words.txt | synsets.txt (class list), "
    + _DEVKIT_META,
]


def _read_meta_mat(path: Path) -> dict[int, str]:
    """ILSVRC2012_ID -> wnid for the 1000 leaf synsets of the devkit's ``meta.mat``."""
    try:
        from scipy.io import loadmat
    except ImportError as e:  # pragma: no cover
        raise ImportError("the devkit meta.mat needs scipy: pip install softlif[data]") from e
    try:
        synsets = loadmat(path, squeeze_me=True)["synsets"]
        out = {}
        for s in np.atleast_1d(synsets):
            if int(s["num_children"]) == 0:
                out[int(s["ILSVRC2012_ID"])] = str(s["WNID"])
    except Exception as e:  # noqa: BLE001
        raise DataError(
            f"{path}: not an ILSVRC-2012 devkit meta.mat ({type(e).__name__}: {e})"
        ) from e
    if not out:
        raise DataError(f"{path}: no leaf synsets found")
    return out


def _find_meta(root: Path, near: Path | None = None) -> Path | None:
    cands = [root / _DEVKIT_META, root / "meta.mat"]
    if near is not None:
        cands.insert(0, near.parent / "meta.mat")
    return next((p for p in cands if p.is_file()), None)


def imagenet_classes(root: str | Path) -> list[str]:
    """The class list (WordNet ids) of an ILSVRC-2012 folder, in label order.

    Raises:
        DataError: no source of class names found under ``root``.
    """
    root = Path(root)
    if (root / "train").is_dir():
        names = class_subfolders(root / "train")
        if names:
            return names
    for name in _SYNSET_FILES:
        p = root / name
        if p.is_file():
            wnids = [ln.split()[0] for ln in p.read_text().splitlines() if ln.strip()]
            bad = [w for w in wnids if not _WNID.match(w)]
            if bad:
                raise DataError(f"{p}: line(s) not starting with a wnid, e.g. {bad[0]!r}")
            return wnids
    meta = _find_meta(root)
    if meta is not None:
        return sorted(_read_meta_mat(meta).values())
    if (root / "val").is_dir() and class_subfolders(root / "val"):
        return class_subfolders(root / "val")
    raise missing_files_error(
        "imagenet", root, ["train/<wnid>/ folders or a synset list"], IMAGENET_EXPECTED
    )


def _parse_label_file(path: Path, files: list[Path], classes: list[str], root: Path) -> np.ndarray:
    """Labels int64 (N,) for the flat val ``files`` (sorted by name) from ``path``."""
    index = {c: k for k, c in enumerate(classes)}
    devkit = path.name == "ILSVRC2012_validation_ground_truth.txt"
    id_to_wnid: dict[int, str] = {}
    if devkit:
        meta = _find_meta(root, path)
        if meta is None:
            raise DataError(
                f"{path}: devkit labels are ILSVRC2012_IDs and need the devkit's meta.mat "
                f"(put it at {root / _DEVKIT_META})"
            )
        id_to_wnid = _read_meta_mat(meta)

    def convert(token: str, where: str) -> int:
        if _WNID.match(token):
            if token not in index:
                raise DataError(f"{where}: wnid {token} is not one of the {len(classes)} classes")
            return index[token]
        try:
            k = int(token)
        except ValueError:
            raise DataError(f"{where}: label {token!r} is neither a wnid nor an integer") from None
        if devkit:
            if k not in id_to_wnid:
                raise DataError(f"{where}: ILSVRC2012_ID {k} not in the devkit meta.mat")
            return convert(id_to_wnid[k], where)
        if not 0 <= k < len(classes):
            raise DataError(f"{where}: label {k} out of range [0, {len(classes)})")
        return k

    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read label file ({e})") from e
    by_name: dict[str, int] = {}
    if path.suffix == ".csv":
        rows = list(csv.reader(text.splitlines()))
        for i, row in enumerate(rows[1:], start=2):
            if len(row) < 2 or not row[1].split():
                raise DataError(f"{path}:{i}: expected 'ImageId,PredictionString'")
            by_name[row[0]] = convert(row[1].split()[0], f"{path}:{i}")
    else:
        lines = [(i, ln.split()) for i, ln in enumerate(text.splitlines(), 1) if ln.strip()]
        widths = {len(tok) for _, tok in lines}
        if widths == {1}:
            if len(lines) != len(files):
                raise DataError(
                    f"{path}: {len(lines)} labels (one per line) but {len(files)} images in "
                    f"{files[0].parent if files else 'val/'}: image count != label count"
                )
            return np.asarray([convert(t[0], f"{path}:{i}") for i, t in lines], dtype=np.int64)
        if widths != {2}:
            raise DataError(
                f"{path}: expected lines 'filename label' or one label per line, found lines "
                f"with {sorted(widths)} fields"
            )
        for i, (name, tok) in lines:
            by_name[Path(name).name] = convert(tok, f"{path}:{i}")
    labels = []
    for f in files:
        key = f.name if f.name in by_name else f.stem  # the csv lists ids without extension
        if key not in by_name:
            raise DataError(f"{path}: no label for image {f.name}")
        labels.append(by_name[key])
    return np.asarray(labels, dtype=np.int64)


def load_imagenet(
    root: str | Path,
    split: Literal["train", "test"] = "train",
    *,
    size: int = 256,
    val_labels: str | Path | None = None,
    fast_decode: bool = True,
) -> ImageFileDataset:
    """Lazy ILSVRC-2012 data set (see the module docstring for the accepted layouts).

    Args:
        root: folder holding ``train/`` and/or ``val/``.
        split: "train" (``train/``) or "test" (the validation images, ``val/``).
        size: output side in pixels (short side resized to it, then centre-cropped).
        val_labels: explicit label file for a flat ``val/`` (overrides the search).
        fast_decode: allow JPEG draft-mode downscaling while decoding (see
            :func:`softlif.data.images.decode_image`).

    Returns:
        :class:`ImageFileDataset` giving (uint8 (3, size, size), label) pairs.
    """
    root = require_dir(root, "imagenet")
    split = check_split(split)
    sub = root / ("train" if split == "train" else "val")
    if not sub.is_dir():
        raise missing_files_error("imagenet", root, [f"{sub.name}/"], IMAGENET_EXPECTED)
    classes = imagenet_classes(root)
    if split == "train" or class_subfolders(sub):
        files, labels, classes = scan_class_folders(sub, classes)
    else:
        files = list_images(sub, recursive=False)
        if not files:
            raise DataError(f"{sub}: no image files")
        if val_labels is not None:
            label_path = Path(val_labels)
        else:
            cands = [root / n for n in _LABEL_FILES] + [sub / n for n in _LABEL_FILES]
            found = next((p for p in cands if p.is_file()), None)
            if found is None:
                raise missing_files_error(
                    "imagenet", root, ["a validation label file"], IMAGENET_EXPECTED
                )
            label_path = found
        labels = _parse_label_file(label_path, files, classes, root)
    return ImageFileDataset(
        files, labels, classes, size=size, mode="RGB", fast_decode=fast_decode, source=str(sub)
    )
