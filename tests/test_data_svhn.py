"""SVHN cropped digits from hand-made MATLAB v5 files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from softlif.data import DataError, load_split, load_svhn, read_svhn_mat

sio = pytest.importorskip("scipy.io")


def write_svhn(path: Path, n: int = 5, labels=None, x=None) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(2)
    if x is None:
        x = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)
    y = np.array(labels if labels is not None else [10, 1, 2, 9, 10][:n], dtype=np.uint8)
    sio.savemat(path, {"X": x, "y": y.reshape(-1, 1)})
    return x, y


def test_svhn_layout_and_label_mapping(tmp_path):
    x, y = write_svhn(tmp_path / "train_32x32.mat")
    write_svhn(tmp_path / "test_32x32.mat", n=3)
    tr = load_split("svhn", tmp_path, "train")
    assert tr.images.shape == (5, 3, 32, 32) and tr.images.dtype == np.uint8
    assert tr.labels.dtype == np.int64 and tr.labels.tolist() == [0, 1, 2, 9, 0]
    # X[h, w, c, n] -> images[n, c, h, w]
    assert tr.images[3, 2, 5, 7] == x[5, 7, 2, 3] and tr.images[0, 1, 31, 0] == x[31, 0, 1, 0]
    assert tr.classes == [str(d) for d in range(10)]
    assert len(load_svhn(tmp_path, "test")) == 3


def test_svhn_float_labels_accepted(tmp_path):
    x = np.zeros((32, 32, 3, 2), np.uint8)
    sio.savemat(tmp_path / "a.mat", {"X": x, "y": np.array([[10.0], [3.0]])})
    assert read_svhn_mat(tmp_path / "a.mat").labels.tolist() == [0, 3]


def test_svhn_bad_files(tmp_path):
    p = tmp_path / "train_32x32.mat"
    write_svhn(p, labels=[1, 2, 11, 3, 4])
    with pytest.raises(DataError, match=r"train_32x32.mat: label 11 at index 2 is out of range"):
        load_svhn(tmp_path, "train")
    write_svhn(p, labels=[1, 0, 2, 3, 4])
    with pytest.raises(DataError, match="label 0 at index 1 is out of range 1..10"):
        load_svhn(tmp_path, "train")
    sio.savemat(p, {"X": np.zeros((32, 32, 3, 4), np.uint8), "y": np.ones((3, 1), np.uint8)})
    with pytest.raises(DataError, match=r"image count \(4\) does not equal label count \(3\)"):
        load_svhn(tmp_path, "train")
    sio.savemat(p, {"X": np.zeros((32, 32, 3, 2), np.float64), "y": np.ones((2, 1))})
    with pytest.raises(DataError, match="'X' must be uint8"):
        load_svhn(tmp_path, "train")
    sio.savemat(p, {"X": np.zeros((32, 32, 3, 2), np.uint8)})
    with pytest.raises(DataError, match="expected variables 'X' and 'y'"):
        load_svhn(tmp_path, "train")
    sio.savemat(p, {"X": np.zeros((32, 32, 3, 2), np.uint8), "y": np.array([[1.5], [2.0]])})
    with pytest.raises(DataError, match="out of range"):
        load_svhn(tmp_path, "train")
    write_svhn(p)
    raw = p.read_bytes()
    p.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match="train_32x32.mat: cannot read MATLAB file"):
        load_svhn(tmp_path, "train")
    p.write_bytes(b"not a mat file at all" * 10)
    with pytest.raises(DataError, match="train_32x32.mat"):
        load_svhn(tmp_path, "train")


def test_svhn_missing_file(tmp_path):
    write_svhn(tmp_path / "train_32x32.mat")
    with pytest.raises(
        DataError, match=r"(?s)cannot find test_32x32.mat.*download\('svhn'"
    ) as info:
        load_svhn(tmp_path, "test")
    assert str(tmp_path) in str(info.value)


def test_a_crash_of_the_mat_reader_is_a_data_error(tmp_path, monkeypatch):
    """scipy's MAT reader segfaulted on a file with one changed type byte; it runs in a child
    process, so such a crash becomes a DataError naming the file, and softlif lives on."""
    import softlif.data.svhn as svhn

    path = tmp_path / "train_32x32.mat"
    path.write_bytes(b"MATLAB 5.0 MAT-file" + bytes(200))
    monkeypatch.setattr(svhn, "_CHILD", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)")
    with pytest.raises(DataError, match=r"train_32x32.mat: the MAT reader crashed .*signal 11"):
        svhn.read_svhn_mat(path)
