"""Users' own data in an .npz file."""

from __future__ import annotations

import numpy as np
import pytest

from softlif.data import DataError, load_npz, load_split


def save(path, **arrays):
    base = {
        "x_train": np.zeros((4, 5, 6), np.uint8),
        "y_train": np.array([0, 1, 2, 1]),
        "x_test": np.zeros((2, 5, 6), np.uint8),
        "y_test": np.array([1, 0]),
    }
    base.update(arrays)
    np.savez(path, **{k: v for k, v in base.items() if v is not None})
    return path


def test_npz_nhw_nhwc_nchw_and_float(tmp_path):
    rng = np.random.default_rng(0)
    nhwc = rng.integers(0, 256, (4, 8, 9, 3), dtype=np.uint8)
    p = save(tmp_path / "d.npz", x_train=nhwc, x_test=nhwc[:2].transpose(0, 3, 1, 2) / 255.0)
    tr = load_split("npz", p, "train")
    te = load_npz(p, "test")
    assert tr.images.shape == (4, 3, 8, 9) and tr.images.dtype == np.uint8
    np.testing.assert_array_equal(tr.images, nhwc.transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(te.images, tr.images[:2])  # float [0, 1] -> uint8 exactly
    assert tr.labels.dtype == np.int64 and tr.classes == ["0", "1", "2"]
    grey = load_npz(save(tmp_path / "g.npz"), "train")
    assert grey.images.shape == (4, 1, 5, 6)


def test_npz_classes_labels_column_and_folder(tmp_path):
    p = save(tmp_path / "d.npz", y_train=np.array([[0], [1], [0], [1]], np.int32),
             classes=np.array(["cat", "dog"]))  # fmt: skip
    s = load_npz(tmp_path, "train")  # a folder holding exactly one .npz
    assert s.classes == ["cat", "dog"] and s.labels.tolist() == [0, 1, 0, 1]
    assert load_npz(p, "train", classes=["a", "b", "c"]).classes == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"x_train": np.zeros((4, 3, 3, 3), np.uint8)}, "cannot tell whether"),
        ({"x_train": np.full((4, 5, 6), 1.5)}, r"must lie in \[0, 1\]"),
        ({"x_train": np.full((4, 5, 6), np.nan, np.float32)}, "NaN"),
        ({"x_train": np.zeros((4, 5, 6), np.int32)}, "must be uint8 or float"),
        ({"x_train": np.zeros((4, 5), np.uint8)}, "images must have shape"),
        ({"x_train": np.zeros((3, 5, 6), np.uint8)}, r"image count \(3\) does not equal"),
        ({"y_train": np.array([0, 1, -1, 1])}, "label -1 at index 2 is out of range"),
        ({"y_train": np.array([0.0, 1.0, 1.0, 1.0])}, "labels must be integers"),
        ({"y_test": None}, r"missing key\(s\) \['y_test'\]"),
        ({"x_train": np.array([object(), 1], dtype=object)}, r"object arrays \(pickles\) are refused"),
    ],
)
def test_npz_bad_content(tmp_path, arrays, message):
    p = save(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DataError, match=message) as info:
        load_npz(p, "train")
    assert "bad.npz" in str(info.value)


def test_npz_layout_override_and_file_errors(tmp_path):
    x = np.arange(4 * 27, dtype=np.uint8).reshape(4, 3, 3, 3)
    p = save(tmp_path / "d.npz", x_train=x)
    np.testing.assert_array_equal(load_npz(p, "train", layout="NCHW").images, x)
    np.testing.assert_array_equal(
        load_npz(p, "train", layout="NHWC").images, x.transpose(0, 3, 1, 2)
    )
    raw = p.read_bytes()
    p.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match="d.npz: not a readable .npz file"):
        load_npz(p, "train")
    with pytest.raises(DataError, match="cannot find .*missing.npz"):
        load_npz(tmp_path / "missing.npz", "train")
    save(tmp_path / "e.npz")
    with pytest.raises(DataError, match="exactly one .npz"):
        load_npz(tmp_path, "train")


def test_npz_headers_checked_before_allocating(tmp_path):
    """An .npy member whose header declares 2**34 elements is refused from its header."""
    import io
    import zipfile

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": "|u1", "fortran_order": False, "shape": (2**34,)})
    p = tmp_path / "bomb.npz"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("x_train.npy", buf.getvalue())
    with pytest.raises(DataError, match=r"x_train.npy.*declares shape \(17179869184,\).*cap"):
        load_npz(p, "train")


def test_npy_passed_as_npz_and_wrong_layout(tmp_path):
    p = tmp_path / "x.npz"
    np.save(tmp_path / "x.npy", np.zeros(3))
    (tmp_path / "x.npy").rename(p)
    with pytest.raises(DataError, match="not a readable .npz file"):
        load_npz(p, "train")
    nchw = np.zeros((4, 1, 28, 28), np.uint8)
    save(tmp_path / "l.npz", x_train=nchw, x_test=nchw[:2])
    with pytest.raises(DataError, match="28 channels.*wrong layout"):
        load_npz(tmp_path / "l.npz", "train", layout="NHWC")


def test_npz_needing_an_unsupported_zip_version_is_a_data_error(tmp_path):
    """Found by the property tests: zipfile raises NotImplementedError for a member that
    declares a zip version it cannot extract."""
    import io

    buf = io.BytesIO()
    np.savez(buf, x_train=np.zeros((2, 1, 5, 5), np.uint8), y_train=np.zeros(2, np.int64),
             x_test=np.zeros((2, 1, 5, 5), np.uint8), y_test=np.zeros(2, np.int64))
    data = bytearray(buf.getvalue())
    central = data.index(b"PK\x01\x02")  # first central-directory entry
    data[central + 6] = 64  # "version needed to extract": 6.4
    path = tmp_path / "v64.npz"
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match="cannot read .npz"):
        load_npz(path, "train")
