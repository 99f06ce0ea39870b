"""The single entry point, expected-file descriptions and missing-file messages."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from softlif.data import DATASETS, ArraySplit, DataError, expected_files, load_split


def test_expected_files_for_every_name():
    for name in DATASETS:
        files = expected_files(name)
        assert files and all(isinstance(f, str) and f for f in files)
    assert "train-images-idx3-ubyte[.gz]" in expected_files("mnist")
    assert any("cifar-10-batches-bin/" in f for f in expected_files("cifar10"))
    assert any("cifar-100-python/" in f for f in expected_files("cifar100"))
    assert expected_files("svhn") == ["train_32x32.mat", "test_32x32.mat"]
    with pytest.raises(ValueError, match="unknown data set"):
        expected_files("mnist2")


@pytest.mark.parametrize("name", DATASETS)
def test_missing_root_gives_clear_error(tmp_path, name):
    root = tmp_path / "absent"
    with pytest.raises(DataError) as info:
        load_split(name, root, "train")
    msg = str(info.value)
    assert str(root) in msg and "cannot find" in msg
    if name in ("mnist", "fashion-mnist", "cifar10", "cifar100", "svhn"):
        assert f"softlif.data.download({name!r}" in msg
    if name == "imagenet":
        assert "image-net.org" in msg


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist", "cifar10", "cifar100", "svhn"])
def test_empty_folder_lists_expected_files(tmp_path, name):
    with pytest.raises(DataError) as info:
        load_split(name, tmp_path, "test")
    msg = str(info.value)
    assert str(tmp_path) in msg
    first = expected_files(name)[0].split("{")[0].split("[")[0]
    assert first in msg


def test_default_root_is_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SOFTLIF_DATA", str(tmp_path))
    with pytest.raises(DataError, match=str(tmp_path / "svhn")):
        load_split("svhn")
    with pytest.raises(ValueError, match="needs a root"):
        load_split("npz")


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="unknown data set"):
        load_split("cifar-10", tmp_path)
    with pytest.raises(ValueError, match="split must be"):
        load_split("mnist", tmp_path, "val")  # type: ignore[arg-type]


def test_array_split_validation():
    x = np.zeros((2, 1, 4, 4), np.uint8)
    s = ArraySplit(x, np.array([0, 1]), ["a", "b"])
    assert len(s) == 2 and s.num_classes == 2 and s.image_shape == (1, 4, 4)
    imgs, labels = s.to_tensors()
    assert imgs.shape == (2, 1, 4, 4) and labels.tolist() == [0, 1]
    assert len(s.subset(slice(0, 1))) == 1
    with pytest.raises(DataError, match="image count"):
        ArraySplit(x, np.array([0]), ["a"])
    with pytest.raises(DataError, match="uint8"):
        ArraySplit(x.astype(np.float32), np.array([0, 1]), ["a", "b"])
    with pytest.raises(DataError, match="out of range"):
        ArraySplit(x, np.array([0, 2]), ["a", "b"])
    with pytest.raises(DataError, match="int64"):
        ArraySplit(x, np.array([0, 1], np.int32), ["a", "b"])


def test_import_is_light_and_offline():
    # In a fresh interpreter: importing softlif.data opens no URL and loads neither
    # scipy nor Pillow (they are imported only when a loader needs them).
    code = (
        "import sys, urllib.request\n"
        "def boom(*a, **k): raise SystemExit('network used at import time')\n"
        "urllib.request.urlopen = boom\n"
        "import softlif.data\n"
        "assert 'scipy' not in sys.modules and 'PIL' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
