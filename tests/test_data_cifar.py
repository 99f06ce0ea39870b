"""CIFAR-10/100 in both official layouts, and the restricted unpickler."""

from __future__ import annotations

import io
import os
import pickle
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from softlif.data import (
    CIFAR100_CLASSES,
    DataError,
    RestrictedUnpickler,
    load_cifar10,
    load_cifar100,
    load_split,
    safe_pickle_load,
)

SHARED = Path(__file__).parents[1].parent / "shared" / "data"
MAKE_CIFAR10 = SHARED / "cifar10-jpeg" / "make_cifar10.py"


# ---------------------------------------------------------------- helpers


def _sbs(s: bytes) -> bytes:
    return b"U" + bytes([len(s)]) + s  # SHORT_BINSTRING, as Python 2 wrote str


def py2_pickle(data: np.ndarray, labels: list[int], label_key: bytes) -> bytes:
    """A dict pickled the way Python 2 cPickle (protocol 2) + numpy 1.x wrote CIFAR files."""
    out = bytearray(b"\x80\x02}q\x00(")
    out += _sbs(b"data")
    out += b"cnumpy.core.multiarray\n_reconstruct\nq\x01cnumpy\nndarray\nq\x02K\x00\x85"
    out += _sbs(b"b") + b"\x87Rq\x03"
    out += b"(K\x01(" + b"".join(b"J" + struct.pack("<i", d) for d in data.shape) + b"t"
    out += b"cnumpy\ndtype\nq\x04" + _sbs(b"u1") + b"K\x00K\x01\x87Rq\x05"
    out += b"(K\x03" + _sbs(b"|") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
    out += b"\x89T" + struct.pack("<I", data.nbytes) + data.tobytes() + b"tb"
    out += _sbs(label_key) + b"](" + b"".join(b"K" + bytes([v]) for v in labels) + b"e"
    out += _sbs(b"batch_label") + _sbs(b"training batch 1 of 1")
    out += b"u."
    return bytes(out)


def tiny_cifar100(root: Path, n_train: int = 7, n_test: int = 3) -> dict[str, np.ndarray]:
    """Write tiny CIFAR-100 files in both layouts under ``root``; return the arrays."""
    rng = np.random.default_rng(3)
    arrays = {}
    (root / "cifar-100-binary").mkdir(parents=True)
    (root / "cifar-100-python").mkdir(parents=True)
    for split, n in (("train", n_train), ("test", n_test)):
        x = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
        fine = rng.integers(0, 100, n).astype(np.uint8)
        fine[0] = 99
        coarse = fine // 5
        arrays[f"x_{split}"], arrays[f"y_{split}"] = x, fine.astype(np.int64)
        rec = np.concatenate([coarse[:, None], fine[:, None], x.reshape(n, -1)], axis=1)
        (root / "cifar-100-binary" / f"{split}.bin").write_bytes(rec.tobytes())
        d = {b"filenames": [b"f%d.png" % i for i in range(n)], b"batch_label": b"x",
             b"fine_labels": fine.tolist(), b"coarse_labels": coarse.tolist(),
             b"data": x.reshape(n, -1)}  # fmt: skip
        (root / "cifar-100-python" / split).write_bytes(pickle.dumps(d, protocol=2))
    names = [c.encode() for c in CIFAR100_CLASSES]
    meta = {b"fine_label_names": names, b"coarse_label_names": [b"c%d" % i for i in range(20)]}
    (root / "cifar-100-python" / "meta").write_bytes(pickle.dumps(meta, protocol=2))
    (root / "cifar-100-binary" / "fine_label_names.txt").write_text(
        "\n".join(CIFAR100_CLASSES) + "\n\n"
    )
    return arrays


def tiny_cifar10_bin(folder: Path, n: int = 2) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(4)
    for name in [f"data_batch_{k}.bin" for k in range(1, 6)] + ["test_batch.bin"]:
        rec = rng.integers(0, 256, (n, 3073), dtype=np.uint8)
        rec[:, 0] %= 10
        (folder / name).write_bytes(rec.tobytes())


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


# ---------------------------------------------------------------- real CIFAR-10 (JPEG copy)


@pytest.fixture(scope="session")
def cifar10_dir(tmp_path_factory) -> Path:
    """Both official layouts written once per session from ../shared's JPEG copy."""
    if not MAKE_CIFAR10.is_file():  # CI always has ../shared: there its absence fails
        missing = f"CIFAR-10 JPEG copy not present at {MAKE_CIFAR10.parent}"
        if os.environ.get("CI") == "true":
            pytest.fail(missing)
        pytest.skip(missing)
    pytest.importorskip("PIL")
    out = tmp_path_factory.mktemp("cifar10")
    res = subprocess.run(
        [sys.executable, str(MAKE_CIFAR10), str(out), "--format", "both"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    if res.returncode:
        pytest.fail(f"make_cifar10.py failed:\n{res.stderr}")
    return out


def test_cifar10_bin_and_py_layouts_agree(cifar10_dir):
    for split, n in (("train", 50000), ("test", 10000)):
        b = load_cifar10(cifar10_dir, split, layout="bin")
        p = load_split("cifar10", cifar10_dir, split, layout="py")
        assert b.images.shape == (n, 3, 32, 32) and b.images.dtype == np.uint8
        assert b.labels.shape == (n,) and b.labels.dtype == np.int64
        np.testing.assert_array_equal(b.images, p.images)
        np.testing.assert_array_equal(b.labels, p.labels)
        assert b.classes == p.classes == [
            "airplane", "automobile", "bird", "cat", "deer",
            "dog", "frog", "horse", "ship", "truck",
        ]  # fmt: skip
        assert np.bincount(b.labels, minlength=10).tolist() == [n // 10] * 10
        assert p.images.flags.writeable
    # auto prefers the binary layout; the batches folder itself is accepted as root
    auto = load_cifar10(cifar10_dir / "cifar-10-batches-py", "test")
    assert "cifar-10-batches-py" in auto.source and len(auto) == 10000


# ---------------------------------------------------------------- tiny CIFAR-100


def test_cifar100_both_layouts(tmp_path):
    arrays = tiny_cifar100(tmp_path)
    for split in ("train", "test"):
        b = load_cifar100(tmp_path, split, layout="bin")
        p = load_split("cifar100", tmp_path, split, layout="py")
        for s in (b, p):
            np.testing.assert_array_equal(s.images, arrays[f"x_{split}"])
            np.testing.assert_array_equal(s.labels, arrays[f"y_{split}"])
            assert s.classes == CIFAR100_CLASSES and len(s.classes) == 100
    assert load_cifar100(tmp_path, "train").labels[0] == 99  # fine, not coarse


def test_cifar100_python2_pickles(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    rng = np.random.default_rng(5)
    x = rng.integers(0, 256, (4, 3072), dtype=np.uint8)
    for split in ("train", "test"):
        (folder / split).write_bytes(py2_pickle(x, [0, 5, 99, 42], b"fine_labels"))
    s = load_cifar100(tmp_path, "train")
    np.testing.assert_array_equal(s.images.reshape(4, -1), x)
    assert s.labels.tolist() == [0, 5, 99, 42]
    assert s.classes == CIFAR100_CLASSES  # no meta file: built-in names
    s.images[0, 0, 0, 0] = 1  # writable copy, not a view of the pickled bytes


def test_cifar_binary_corruption(tmp_path):
    tiny_cifar100(tmp_path)
    train_bin = tmp_path / "cifar-100-binary" / "train.bin"
    raw = train_bin.read_bytes()
    train_bin.write_bytes(raw[:-5])
    with pytest.raises(DataError, match=r"train.bin: size \d+ bytes is not a positive multiple"):
        load_cifar100(tmp_path, "train")
    bad = bytearray(raw)
    bad[1] = 100  # fine label of image 0
    train_bin.write_bytes(bytes(bad))
    with pytest.raises(DataError, match=r"train.bin: label 100 at index 0 is out of range"):
        load_cifar100(tmp_path, "train", layout="bin")
    bad[1], bad[0] = 3, 25  # coarse label out of range
    train_bin.write_bytes(bytes(bad))
    with pytest.raises(DataError, match="coarse label 25"):
        load_cifar100(tmp_path, "train", layout="bin")
    train_bin.write_bytes(b"")
    with pytest.raises(DataError, match="size 0 bytes"):
        load_cifar100(tmp_path, "train", layout="bin")
    (tmp_path / "cifar-100-binary" / "fine_label_names.txt").write_text("a\nb\n")
    with pytest.raises(DataError, match="expected 100 class names"):
        load_cifar100(tmp_path, "test", layout="bin")


def test_cifar10_binary_wrong_labels_and_missing(tmp_path):
    folder = tmp_path / "cifar-10-batches-bin"
    tiny_cifar10_bin(folder)
    s = load_cifar10(tmp_path, "train")
    assert s.images.shape == (10, 3, 32, 32)
    rec = bytearray((folder / "test_batch.bin").read_bytes())
    rec[3073] = 10
    (folder / "test_batch.bin").write_bytes(bytes(rec))
    with pytest.raises(DataError, match=r"test_batch.bin: label 10 at index 1 is out of range"):
        load_cifar10(tmp_path, "test")
    (folder / "data_batch_3.bin").unlink()
    with pytest.raises(DataError) as info:
        load_cifar10(tmp_path, "train")
    msg = str(info.value)
    assert "cifar-10-batches-bin/data_batch_3.bin" in msg and "download('cifar10'" in msg
    assert "cifar-10-batches-py/" in msg  # says the other layout will do too


def test_cifar_python_corruption(tmp_path):
    tiny_cifar100(tmp_path)
    folder = tmp_path / "cifar-100-python"
    good = (folder / "train").read_bytes()
    (folder / "train").write_bytes(good[: len(good) // 2])
    with pytest.raises(DataError, match="train: not a valid pickle"):
        load_cifar100(tmp_path, "train", layout="py")
    d = {b"data": np.zeros((3, 3072), np.uint8), b"fine_labels": [1, 2]}
    (folder / "train").write_bytes(pickle.dumps(d))
    with pytest.raises(DataError, match=r"image count \(3\) does not equal label count \(2\)"):
        load_cifar100(tmp_path, "train", layout="py")
    d = {b"data": np.zeros((2, 3000), np.uint8), b"fine_labels": [1, 2]}
    (folder / "train").write_bytes(pickle.dumps(d))
    with pytest.raises(DataError, match="key 'data' must be a uint8 array"):
        load_cifar100(tmp_path, "train", layout="py")
    (folder / "train").write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(DataError, match="expected a pickled dict"):
        load_cifar100(tmp_path, "train", layout="py")
    d = {"data": np.zeros((2, 3072), np.uint8), "labels": [1, 2]}  # str keys, wrong label key
    (folder / "train").write_bytes(pickle.dumps(d, protocol=5))
    with pytest.raises(DataError, match="no 'fine_labels' key"):
        load_cifar100(tmp_path, "train", layout="py")


# ---------------------------------------------------------------- restricted unpickler


def test_restricted_unpickler_accepts_numpy_pickles_of_all_protocols():
    arr = np.arange(3072 * 2, dtype=np.uint8).reshape(2, 3072)
    for proto in range(0, pickle.HIGHEST_PROTOCOL + 1):
        obj = {b"data": arr, "labels": [1, 2], "name": "x", "raw": b"\x00\xff", "n": 2**40}
        out = RestrictedUnpickler(io.BytesIO(pickle.dumps(obj, protocol=proto))).load()
        np.testing.assert_array_equal(out[b"data"], arr)
        assert out["labels"] == [1, 2] and out["raw"] == b"\x00\xff" and out["n"] == 2**40


@pytest.mark.parametrize("proto", [0, 2, 4, 5])
def test_malicious_pickle_is_refused_and_not_run(tmp_path, proto):
    marker = tmp_path / "pwned"
    evil = tmp_path / "data_batch_1"
    evil.write_bytes(pickle.dumps({b"data": _Evil(marker)}, protocol=proto))
    with pytest.raises(DataError) as info:
        safe_pickle_load(evil)
    msg = str(info.value)
    assert str(evil) in msg and "forbidden global" in msg
    assert "system" in msg  # names the refused global (posix.system / os.system / nt.system)
    assert not marker.exists()


@pytest.mark.parametrize(
    "global_line",
    [b"builtins\neval", b"numpy\nload", b"numpy.testing._private.utils\nrunstring",
     b"subprocess\nPopen", b"__builtin__\ngetattr", b"copyreg\n_reconstructor"],
)  # fmt: skip
def test_other_globals_are_refused(tmp_path, global_line):
    p = tmp_path / "x"
    p.write_bytes(b"\x80\x02c" + global_line + b"\nq\x00.")
    with pytest.raises(
        DataError, match="forbidden global " + global_line.decode().replace("\n", r"\.")
    ):
        safe_pickle_load(p)


def test_malicious_cifar_batch_via_loader(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    marker = tmp_path / "pwned"
    ok = {b"data": np.zeros((1, 3072), np.uint8), b"labels": [0]}
    for name in ["data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"]:
        (folder / name).write_bytes(pickle.dumps(ok, protocol=2))
    (folder / "data_batch_1").write_bytes(pickle.dumps(_Evil(marker), protocol=2))
    assert len(load_cifar10(tmp_path, "test")) == 1
    with pytest.raises(DataError, match="data_batch_1: refusing to unpickle forbidden global"):
        load_cifar10(tmp_path, "train")
    assert not marker.exists()


def _raw_pickle(body: bytes) -> bytes:
    return b"\x80\x02" + body + b"."


@pytest.mark.parametrize(("body", "match"), [
    # numpy.dtype('u1') rebuilt with a structured-dtype state (fields given): numpy's own
    # __setstate__ crashed the interpreter on such states; the stand-in refuses them
    (b"cnumpy\ndtype\nX\x02\x00\x00\x00u1\x89\x88\x87R"
     b"(K\x03X\x01\x00\x00\x00|NN}K\x08J\xff\xff\xff\xffK\x00tb", "structured or subarray"),
    (b"cnumpy\ndtype\nX\x02\x00\x00\x00O8\x89\x88\x87R", "dtype 'O8' is not one of"),
    # bytes(2**33) and bytearray: allocations on the file's say-so
    (b"c__builtin__\nbytes\n\x8a\x05\x00\x00\x00\x00\x02\x85R", "forbidden global|not allowed"),
    (b"cbuiltins\nbytes\n\x8a\x05\x00\x00\x00\x00\x02\x85R", "bytes\\('int',\\) is not allowed"),
    (b"cbuiltins\nbytearray\n\x8a\x05\x00\x00\x00\x00\x02\x85R", "forbidden global"),
    # an array whose declared shape needs 2**40 bytes but whose data holds 6
    (b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85C\x01b\x87R"
     b"(K\x01\x8a\x06\x00\x00\x00\x00\x00\x01\x85cnumpy\ndtype\nX\x02\x00\x00\x00u1\x89\x88\x87R"
     b"\x89C\x06abcdeftb", "above the cap"),
])
def test_restricted_unpickler_refuses_crashes_and_allocations(tmp_path, body, match):
    path = tmp_path / "data_batch_1"
    path.write_bytes(_raw_pickle(body))
    with pytest.raises(DataError, match=match) as info:
        safe_pickle_load(path)
    assert str(path) in str(info.value)
