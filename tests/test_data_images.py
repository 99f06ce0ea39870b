"""Lazy image data sets: ImageNet layouts and users' image folders (tiny files via Pillow)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from softlif.data import (
    DataError,
    ImageFileDataset,
    decode_image,
    imagenet_classes,
    load_image_folder,
    load_imagenet,
    load_split,
    paper_preprocess,
)

Image = pytest.importorskip("PIL.Image")

WNIDS = ["n01440764", "n01443537", "n01484850"]


def save_image(path: Path, w: int, h: int, color=(200, 30, 60), fmt: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (w, h), color).save(path, format=fmt)


def make_imagenet(root: Path) -> list[str]:
    """Three classes of tiny JPEGs in train/, four flat val JPEGs; returns val file names."""
    sizes = [(40, 30), (20, 50), (64, 64)]
    for k, wnid in enumerate(WNIDS):
        for j in range(k + 1):
            w, h = sizes[(k + j) % 3]
            save_image(root / "train" / wnid / f"{wnid}_{j}.JPEG", w, h, (40 * k, 100, 20 * j))
    names = [f"ILSVRC2012_val_{i:08d}.JPEG" for i in range(1, 5)]
    for i, name in enumerate(names):
        save_image(root / "val" / name, 30 + i, 25, (10, 10 * i, 200))
    return names


VAL_LABELS = [2, 0, 1, 2]  # indices into the sorted wnids


def test_imagenet_train_split(tmp_path):
    make_imagenet(tmp_path)
    ds = load_split("imagenet", tmp_path, "train")
    assert isinstance(ds, ImageFileDataset) and len(ds) == 6
    assert ds.classes == WNIDS and ds.labels.tolist() == [0, 1, 1, 2, 2, 2]
    x, y = ds[3]
    assert x.dtype == torch.uint8 and x.shape == (3, 256, 256) and y == 2
    batch, labels = next(iter(DataLoader(ds, batch_size=6)))
    assert batch.shape == (6, 3, 256, 256) and labels.tolist() == [0, 1, 1, 2, 2, 2]
    pre = paper_preprocess("imagenet", ds)
    assert pre.crop == 224 and pre.flip
    out = pre.train(batch, torch.Generator().manual_seed(0))
    assert out.shape == (6, 3, 224, 224) and out.dtype == torch.float32
    assert pre.test(batch).shape == (6, 3, 224, 224)


@pytest.mark.parametrize(
    "layout", ["pairs", "pairs-wnid", "one-per-line", "devkit", "kaggle-csv", "class-folders"]
)
def test_imagenet_val_layouts(tmp_path, layout):
    names = make_imagenet(tmp_path)
    if layout == "pairs":
        text = "".join(f"{n} {k}\n" for n, k in reversed(list(zip(names, VAL_LABELS, strict=True))))
        (tmp_path / "val.txt").write_text(text)
    elif layout == "pairs-wnid":
        text = "".join(f"val/{n}\t{WNIDS[k]}\n" for n, k in zip(names, VAL_LABELS, strict=True))
        (tmp_path / "val" / "val_labels.txt").write_text(text)
    elif layout == "one-per-line":
        (tmp_path / "val.txt").write_text("".join(f"{k}\n" for k in VAL_LABELS))
    elif layout == "devkit":
        sio = pytest.importorskip("scipy.io")
        data = tmp_path / "ILSVRC2012_devkit_t12" / "data"
        data.mkdir(parents=True)
        # ILSVRC2012_IDs are not in wnid order: 1 -> WNIDS[2], 2 -> WNIDS[0], 3 -> WNIDS[1];
        # a non-leaf synset (num_children > 0) is skipped.
        dt = [("ILSVRC2012_ID", "O"), ("WNID", "O"), ("num_children", "O")]
        syn = np.array(
            [(1, WNIDS[2], 0), (2, WNIDS[0], 0), (3, WNIDS[1], 0), (4, "n00001740", 3)], dtype=dt
        )
        sio.savemat(data / "meta.mat", {"synsets": syn})
        ids = {2: 1, 0: 2, 1: 3}
        (data / "ILSVRC2012_validation_ground_truth.txt").write_text(
            "".join(f"{ids[k]}\n" for k in VAL_LABELS)
        )
    elif layout == "kaggle-csv":
        rows = [
            f"{Path(n).stem},{WNIDS[k]} 1 2 3 4" for n, k in zip(names, VAL_LABELS, strict=True)
        ]
        (tmp_path / "LOC_val_solution.csv").write_text(
            "ImageId,PredictionString\n" + "\n".join(rows)
        )
    else:
        for n, k in zip(names, VAL_LABELS, strict=True):
            (tmp_path / "val" / WNIDS[k]).mkdir(exist_ok=True)
            (tmp_path / "val" / n).rename(tmp_path / "val" / WNIDS[k] / n)
    ds = load_imagenet(tmp_path, "test")
    by_name = {f.name: int(y) for f, y in zip(ds.files, ds.labels, strict=True)}
    assert by_name == dict(zip(names, VAL_LABELS, strict=True))
    assert ds[0][0].shape == (3, 256, 256)


def test_imagenet_classes_without_train(tmp_path):
    names = make_imagenet(tmp_path)
    import shutil

    shutil.rmtree(tmp_path / "train")
    (tmp_path / "LOC_synset_mapping.txt").write_text(
        "".join(f"{w} some words, more words\n" for w in WNIDS)
    )
    (tmp_path / "val.txt").write_text(
        "".join(f"{n} {k}\n" for n, k in zip(names, VAL_LABELS, strict=True))
    )
    assert imagenet_classes(tmp_path) == WNIDS
    assert load_imagenet(tmp_path, "test").labels.tolist() == VAL_LABELS
    with pytest.raises(DataError, match="cannot find train/"):
        load_imagenet(tmp_path, "train")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0\n1\n", r"2 labels \(one per line\) but 4 images"),
        ("ILSVRC2012_val_00000001.JPEG 7\n", r"label 7 out of range \[0, 3\)"),
        ("ILSVRC2012_val_00000001.JPEG 0\n", "no label for image ILSVRC2012_val_00000002.JPEG"),
        ("ILSVRC2012_val_00000001.JPEG n09999999\n", "wnid n09999999 is not one of"),
        ("ILSVRC2012_val_00000001.JPEG cat\n", "neither a wnid nor an integer"),
        ("a 1 2\n", "found lines with"),
    ],
)
def test_imagenet_bad_label_files(tmp_path, text, message):
    make_imagenet(tmp_path)
    (tmp_path / "val.txt").write_text(text)
    with pytest.raises(DataError, match=message) as info:
        load_imagenet(tmp_path, "test")
    assert "val.txt" in str(info.value)


def test_imagenet_missing_pieces(tmp_path):
    make_imagenet(tmp_path)
    with pytest.raises(DataError, match="(?s)a validation label file.*image-net.org"):
        load_imagenet(tmp_path, "test")
    (tmp_path / "ILSVRC2012_validation_ground_truth.txt").write_text("1\n2\n3\n1\n")
    with pytest.raises(DataError, match="need the devkit's meta.mat"):
        load_imagenet(tmp_path, "test")
    with pytest.raises(DataError, match="(?s)imagenet: cannot find.*train/<wnid>"):
        load_imagenet(tmp_path / "nowhere", "train")


def test_decode_resize_and_centre_crop(tmp_path):
    # 512 x 256 (w x h): the central 256 columns are white, the sides black.
    arr = np.zeros((256, 512, 3), np.uint8)
    arr[:, 128:384] = 255
    Image.fromarray(arr).save(tmp_path / "wide.png")
    out = decode_image(tmp_path / "wide.png", 256)
    assert out.shape == (3, 256, 256) and int(out.min()) == 255
    # 100 x 300 (w x h): short side scaled 100 -> 256, height 768, centre crop rows 256..512
    arr = np.zeros((300, 100, 3), np.uint8)
    arr[100:200] = 255
    Image.fromarray(arr).save(tmp_path / "tall.png")
    out = decode_image(tmp_path / "tall.png", 256)
    assert out.shape == (3, 256, 256)
    assert out[:, 8:-8].min() == 255 and out[:, 0].max() < 255 and out[:, -1].max() < 255
    # no size: native size kept; grey mode gives one channel
    assert decode_image(tmp_path / "tall.png").shape == (3, 300, 100)
    assert decode_image(tmp_path / "tall.png", 32, "L").shape == (1, 32, 32)
    # large JPEG with draft decoding still gives the right size and colour
    save_image(tmp_path / "big.jpg", 2000, 1200, (250, 10, 10))
    big = decode_image(tmp_path / "big.jpg", 256)
    assert big.shape == (3, 256, 256) and big[0].float().mean() > 240 and big[1].float().mean() < 20


def test_corrupt_image_is_a_data_error(tmp_path):
    make_imagenet(tmp_path)
    victim = tmp_path / "train" / WNIDS[0] / f"{WNIDS[0]}_0.JPEG"
    victim.write_bytes(victim.read_bytes()[:40])
    ds = load_imagenet(tmp_path, "train")
    with pytest.raises(DataError, match=f"{victim.name}: cannot decode image"):
        ds[0]
    victim.write_bytes(b"this is not an image")
    with pytest.raises(DataError, match="cannot decode image"):
        ds[0]


def test_image_folder(tmp_path):
    for split, n in (("train", 2), ("test", 1)):
        for k, cls in enumerate(["cats", "dogs"]):
            for j in range(n):
                save_image(tmp_path / split / cls / f"{j}.png", 12, 10, (k * 100, j, 5))
    (tmp_path / "train" / "dogs" / "notes.txt").write_text("ignored")
    (tmp_path / "train" / ".hidden").mkdir()
    tr = load_split("folder", tmp_path, "train")
    te = load_image_folder(tmp_path, "test", size=8, mode="L")
    assert tr.classes == ["cats", "dogs"] and tr.labels.tolist() == [0, 0, 1, 1]
    assert tr[0][0].shape == (3, 10, 12) and te[1][0].shape == (1, 8, 8)
    assert te.labels.tolist() == [0, 1]
    (tmp_path / "test" / "birds").mkdir()
    with pytest.raises(DataError, match="not among the known classes"):
        load_image_folder(tmp_path, "test")
    with pytest.raises(DataError, match="(?s)cannot find test/.*train/<class>"):
        load_image_folder(tmp_path / "train", "test")


def test_image_file_dataset_checks(tmp_path):
    with pytest.raises(DataError, match="image count"):
        ImageFileDataset([tmp_path / "a.png"], [0, 1], ["a", "b"])
    with pytest.raises(DataError, match="out of range"):
        ImageFileDataset([tmp_path / "a.png"], [2], ["a", "b"])


def test_symlinks_never_leave_the_root_nor_repeat(tmp_path):
    """A link to / or a link loop used to make the walk explode or list images many times."""
    from softlif.data.images import list_images

    root = tmp_path / "data"
    cls = root / "train" / "cat"
    cls.mkdir(parents=True)
    (cls / "a.png").write_bytes(b"x")
    (cls / "loop").symlink_to(cls)  # a loop
    (cls / "up").symlink_to(root)  # back to the root: inside, but already walked
    (cls / "everything").symlink_to("/")  # out of the root
    outside = tmp_path / "outside.png"
    outside.write_bytes(b"x")
    (cls / "b.png").symlink_to(outside)  # a file outside the root
    (cls / "c.png").symlink_to(cls / "a.png")  # the same file twice
    found = list_images(root / "train")
    assert [p.name for p in found] == ["a.png"]


def test_decode_image_refuses_absurd_sizes(tmp_path):
    from softlif.data import DataError
    from softlif.data.images import decode_image

    Image = pytest.importorskip("PIL.Image")
    path = tmp_path / "x.png"
    Image.new("RGB", (4, 4)).save(path)
    with pytest.raises(DataError, match="image size must be an int in 1..16384"):
        decode_image(path, size=20000)
    with pytest.raises(DataError, match="image size"):
        decode_image(path, size=0)
    assert decode_image(path, size=2).shape == (3, 2, 2)
