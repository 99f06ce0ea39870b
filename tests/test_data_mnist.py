"""MNIST / IDX loading: the real files, hand-made IDX files, corruption, embedded subset."""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from softlif.data import (
    DataError,
    embedded_mnist_provenance,
    load_embedded_mnist,
    load_idx_folder,
    load_idx_pair,
    load_mnist,
    load_split,
    read_idx,
)

MNIST_DIR = Path(__file__).parents[1].parent / "shared" / "data" / "mnist"
# a skip on a machine without ../shared, a failure in CI (CI=true), which always has it
needs_mnist = pytest.mark.skipif(
    not MNIST_DIR.is_dir() and os.environ.get("CI") != "true",
    reason=f"real MNIST files not present at {MNIST_DIR}"
)
OFFICIAL_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
_CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D,
          np.float64: 0x0E}  # fmt: skip


def idx_bytes(arr: np.ndarray) -> bytes:
    """Serialise ``arr`` in the IDX format (big-endian)."""
    code = _CODES[arr.dtype.type]
    head = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return head + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def write_mnist(folder: Path, n_train: int = 6, n_test: int = 4, gz: bool = True) -> None:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        files = {
            f"{prefix}-images-idx3-ubyte": rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
            f"{prefix}-labels-idx1-ubyte": (np.arange(n) % 10).astype(np.uint8),
        }
        for name, arr in files.items():
            data = idx_bytes(arr)
            if gz:
                (folder / f"{name}.gz").write_bytes(gzip.compress(data))
            else:
                (folder / name).write_bytes(data)


# ---------------------------------------------------------------- the real files


@needs_mnist
def test_real_mnist_train_and_test():
    train = load_split("mnist", MNIST_DIR, "train")
    test = load_split("mnist", MNIST_DIR, "test")
    assert train.images.shape == (60000, 1, 28, 28) and train.images.dtype == np.uint8
    assert train.labels.shape == (60000,) and train.labels.dtype == np.int64
    assert test.images.shape == (10000, 1, 28, 28) and test.labels.shape == (10000,)
    assert train.labels[:5].tolist() == [5, 0, 4, 1, 9]
    assert test.labels[:5].tolist() == [7, 2, 1, 0, 4]
    assert np.bincount(train.labels).tolist()[:3] == [5923, 6742, 5958]
    assert train.classes == [str(d) for d in range(10)]
    assert train.images.max() == 255 and train.images.min() == 0
    assert train.images.flags.writeable and train.images.flags.c_contiguous


@needs_mnist
def test_real_mnist_bytes_are_official():
    # The decompressed bytes have the official MD5s and read_idx reproduces the payload.
    path = MNIST_DIR / "t10k-labels-idx1-ubyte.gz"
    raw = gzip.decompress(path.read_bytes())
    assert hashlib.md5(raw).hexdigest() == OFFICIAL_MD5["t10k-labels-idx1-ubyte"]
    assert read_idx(path).tobytes() == raw[8:]


@needs_mnist
def test_real_file_corrupted_copies(tmp_path):
    src = MNIST_DIR / "t10k-labels-idx1-ubyte.gz"
    raw = gzip.decompress(src.read_bytes())
    cut = tmp_path / "cut.gz"
    cut.write_bytes(src.read_bytes()[:-100])  # truncated gzip stream
    with pytest.raises(DataError, match="cut.gz.*(gzip|truncated)"):
        read_idx(cut)
    short = tmp_path / "short"
    short.write_bytes(raw[:-10])  # truncated IDX payload
    with pytest.raises(DataError, match=r"short: truncated IDX data.*\(10000,\)"):
        read_idx(short)
    flipped = tmp_path / "flipped"
    flipped.write_bytes(b"\x08\x03" + raw[2:])  # magic bytes damaged
    with pytest.raises(DataError, match="flipped: bad IDX magic number 0x0803"):
        read_idx(flipped)


# ---------------------------------------------------------------- hand-made IDX files


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_roundtrip(tmp_path, dtype, gz):
    arr = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    data = idx_bytes(arr)
    p = tmp_path / "a.idx"
    p.write_bytes(gzip.compress(data) if gz else data)
    out = read_idx(p)
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    np.testing.assert_array_equal(out, arr)
    out[0, 0, 0] = 1  # writable


@pytest.mark.parametrize("gz", [False, True])
def test_load_mnist_tiny(tmp_path, gz):
    write_mnist(tmp_path, gz=gz)
    tr = load_mnist(tmp_path, "train")
    te = load_split("mnist", tmp_path, "test")
    assert tr.images.shape == (6, 1, 28, 28) and te.images.shape == (4, 1, 28, 28)
    assert tr.labels.tolist() == [0, 1, 2, 3, 4, 5]
    fm = load_split("fashion-mnist", tmp_path, "train")
    assert fm.classes[0] == "T-shirt/top" and len(fm.classes) == 10


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "truncated IDX file"),
        (b"\x00\x00\x08", "truncated IDX file"),
        (b"\x00\x00\x08\x03\x00\x00\x00\x02", "truncated IDX header"),
        (b"\x00\x00\x07\x01\x00\x00\x00\x01\x05", "bad IDX magic"),
        (b"\x00\x00\x08\x00", "bad IDX magic"),
        (b"PK\x03\x04\x00\x00\x00\x00", "bad IDX magic"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x02\x01\x02\x03", "unexpected bytes after the IDX data"),
        (b"\x00\x00\x0b\x01\x00\x00\x00\x02\x01\x02\x03", "truncated IDX data"),
        (b"\x1f\x8b\x08\x00garbage", "gzip"),
    ],
)
def test_read_idx_rejects_bad_bytes(tmp_path, data, message):
    p = tmp_path / "bad-file"
    p.write_bytes(data)
    with pytest.raises(DataError, match=message) as info:
        read_idx(p)
    assert "bad-file" in str(info.value)


def test_idx_pair_errors(tmp_path):
    imgs = np.zeros((3, 28, 28), np.uint8)
    (tmp_path / "i").write_bytes(idx_bytes(imgs))
    (tmp_path / "l2").write_bytes(idx_bytes(np.zeros(2, np.uint8)))
    with pytest.raises(DataError, match="3 images .* 2 labels"):
        load_idx_pair(tmp_path / "i", tmp_path / "l2")
    (tmp_path / "l").write_bytes(idx_bytes(np.array([0, 1, 12], np.uint8)))
    with pytest.raises(DataError, match=r"label 12 at index 2 is out of range \[0, 10\)"):
        load_idx_pair(tmp_path / "i", tmp_path / "l", [str(k) for k in range(10)])
    (tmp_path / "lf").write_bytes(idx_bytes(np.zeros(3, np.float32)))
    with pytest.raises(DataError, match="lf: expected integer labels"):
        load_idx_pair(tmp_path / "i", tmp_path / "lf")
    (tmp_path / "if").write_bytes(idx_bytes(np.zeros((3, 28, 28), np.float32)))
    with pytest.raises(DataError, match="if: expected uint8 images"):
        load_idx_pair(tmp_path / "if", tmp_path / "l")
    # default classes from the largest label
    s = load_idx_pair(tmp_path / "i", tmp_path / "l")
    assert s.classes == [str(k) for k in range(13)] and s.images.shape == (3, 1, 28, 28)


def test_load_mnist_rejects_wrong_content(tmp_path):
    write_mnist(tmp_path, gz=False)
    lab = tmp_path / "train-labels-idx1-ubyte"
    lab.write_bytes(idx_bytes(np.array([0, 1, 2, 3, 4, 10], np.uint8)))
    with pytest.raises(DataError, match="label 10 at index 5 is out of range"):
        load_mnist(tmp_path, "train")
    lab.write_bytes(idx_bytes(np.arange(5, dtype=np.uint8)))
    with pytest.raises(DataError, match="image count != label count"):
        load_mnist(tmp_path, "train")
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(idx_bytes(np.zeros((4, 32, 32), np.uint8)))
    with pytest.raises(DataError, match="must be 28x28"):
        load_mnist(tmp_path, "test")


def test_missing_mnist_files_message(tmp_path):
    write_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError) as info:
        load_mnist(tmp_path, "test")
    msg = str(info.value)
    assert "t10k-labels-idx1-ubyte[.gz]" in msg and str(tmp_path) in msg
    assert "softlif.data.download('mnist'" in msg
    assert "train-images-idx3-ubyte[.gz]" in msg  # lists every expected file


def test_idx_folder_with_prefix(tmp_path):
    rng = np.random.default_rng(1)
    for part, n in (("train", 5), ("test", 3)):
        x = rng.integers(0, 256, (n, 8, 9), dtype=np.uint8)
        (tmp_path / f"emnist-x-{part}-images-idx3-ubyte.gz").write_bytes(
            gzip.compress(idx_bytes(x))
        )
        y = np.arange(n, dtype=np.uint8)
        (tmp_path / f"emnist-x-{part}-labels-idx1-ubyte").write_bytes(idx_bytes(y))
    tr = load_split("idx", tmp_path, "train", classes=list("abcde"))
    te = load_idx_folder(tmp_path, "test")
    assert tr.images.shape == (5, 1, 8, 9) and tr.classes == list("abcde")
    assert te.images.shape == (3, 1, 8, 9)
    shutil.copy(tmp_path / "emnist-x-test-labels-idx1-ubyte", tmp_path / "t10k-labels-idx1-ubyte")
    with pytest.raises(DataError, match="ambiguous test labels"):
        load_idx_folder(tmp_path, "test")
    with pytest.raises(DataError, match="cannot find"):
        load_idx_folder(tmp_path / "emnist-x-train-labels-idx1-ubyte", "train")


# ---------------------------------------------------------------- embedded subset


def test_embedded_subset_shapes_and_provenance():
    train, test = load_embedded_mnist()
    assert train.images.shape == (10000, 1, 28, 28) and train.images.dtype == np.uint8
    assert test.images.shape == (2000, 1, 28, 28)
    assert train.labels.dtype == np.int64 and train.labels[:5].tolist() == [5, 0, 4, 1, 9]
    assert test.labels[:5].tolist() == [7, 2, 1, 0, 4]
    assert set(np.unique(train.labels)) == set(range(10))
    text = embedded_mnist_provenance()
    assert "6bbc9ace898e44ae57da46a324031adb" in text and "CC BY-SA 3.0" in text
    pkg = Path(__import__("softlif.data").data.__file__).parent / "mnist_subset.npz"
    assert pkg.stat().st_size <= 3_000_000


@needs_mnist
def test_embedded_subset_equals_official_files():
    train, test = load_embedded_mnist()
    off_te = load_mnist(MNIST_DIR, "test")
    np.testing.assert_array_equal(test.images, off_te.images[:2000])
    np.testing.assert_array_equal(test.labels, off_te.labels[:2000])
    off_tr = load_mnist(MNIST_DIR, "train")
    np.testing.assert_array_equal(train.images, off_tr.images[:10000])
    np.testing.assert_array_equal(train.labels, off_tr.labels[:10000])


def _idx(code: int, dims: tuple[int, ...], payload: bytes = b"") -> bytes:
    return bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims) + payload


def test_gzip_bomb_is_stopped_at_the_declared_size(tmp_path, monkeypatch):
    """The header is read first; the data are inflated only up to the declared size, so a
    small gzip file that inflates to far more is refused without inflating it all."""
    from softlif.data import limits

    monkeypatch.setattr(limits.LIMITS, "max_bytes", 10**6)
    bomb = tmp_path / "bomb-idx1-ubyte.gz"
    with gzip.open(bomb, "wb") as f:
        f.write(_idx(8, (100,)))
        for _ in range(64):  # 64 MiB of zeros after 100 declared bytes
            f.write(bytes(2**20))
    assert bomb.stat().st_size < 200_000
    with pytest.raises(DataError, match="unexpected bytes after the IDX data"):
        read_idx(bomb)
    big = tmp_path / "big-idx1-ubyte.gz"
    with gzip.open(big, "wb") as f:
        f.write(_idx(8, (2**31,)))
    with pytest.raises(DataError, match=r"declares shape \(2147483648,\).*above the cap"):
        read_idx(big)


@pytest.mark.parametrize(("data", "match"), [
    (_idx(8, (2**32 - 1,) * 3), "above the cap"),  # the product overflows int64 in numpy
    (bytes([0, 0, 8, 65]) + bytes(4 * 65), "65 dimensions"),
])
def test_idx_headers_checked_before_allocating(tmp_path, data, match):
    p = tmp_path / "x-idx3-ubyte"
    p.write_bytes(data)
    with pytest.raises(DataError, match=match):
        read_idx(p)


def test_idx_zero_size_images_and_huge_labels_refused(tmp_path):
    imgs, labs = tmp_path / "i-idx3-ubyte", tmp_path / "l-idx1-ubyte"
    imgs.write_bytes(_idx(8, (32, 0, 28)))
    labs.write_bytes(_idx(8, (32,), bytes(32)))
    with pytest.raises(DataError, match=r"images of shape \(1, 0, 28\).*are empty"):
        load_idx_pair(imgs, labs)
    imgs.write_bytes(_idx(8, (2, 2, 2), bytes(8)))
    labs.write_bytes(_idx(0x0C, (2,), struct.pack(">2i", 0, 2**31 - 1)))
    with pytest.raises(DataError, match="implies 2,147,483,648 classes, above the cap"):
        load_idx_pair(imgs, labs)
