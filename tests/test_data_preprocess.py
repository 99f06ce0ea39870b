"""Batched preprocessing: scaling, mean image, random/centre crops, flips, serialisation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from softlif.data import (
    PAPER_SETTINGS,
    ArraySplit,
    Preprocess,
    compute_mean_image,
    paper_preprocess,
)


def random_split(n: int, c: int, hw: int, seed: int = 0) -> ArraySplit:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, c, hw, hw), dtype=np.uint8)
    return ArraySplit(x, np.zeros(n, np.int64), ["a"])


def windows(x: torch.Tensor, k: int) -> list[tuple[int, int, bool, torch.Tensor]]:
    """All k x k windows of one image (C, H, W), unflipped and flipped."""
    out = []
    for i in range(x.shape[1] - k + 1):
        for j in range(x.shape[2] - k + 1):
            w = x[:, i : i + k, j : j + k]
            out += [(i, j, False, w), (i, j, True, w.flip(-1))]
    return out


def match(out: torch.Tensor, img: torch.Tensor, mean: torch.Tensor, k: int):
    """Which (row, col, flipped) window of ``img`` the preprocessed ``out`` is, or None."""
    full = img.float() / 255 - mean
    hits = [(i, j, f) for i, j, f, w in windows(full, k) if torch.allclose(w, out, atol=1e-6)]
    return hits[0] if len(hits) == 1 else None


@pytest.mark.parametrize(
    ("name", "c", "hw", "out_hw", "flip"),
    [
        ("mnist", 1, 28, 28, False),
        ("fashion-mnist", 1, 28, 28, False),
        ("svhn", 3, 32, 28, False),
        ("cifar10", 3, 32, 24, True),
        ("cifar100", 3, 32, 24, True),
    ],
)
def test_paper_settings_shapes(name, c, hw, out_hw, flip):
    split = random_split(16, c, hw)
    pre = paper_preprocess(name, split)
    assert pre.flip is flip and pre.output_shape == (c, out_hw, out_hw)
    batch = torch.from_numpy(split.images)
    tr = pre.train(batch, torch.Generator().manual_seed(1))
    te = pre.test(batch)
    assert tr.shape == te.shape == (16, c, out_hw, out_hw)
    assert tr.dtype == te.dtype == torch.float32 and tr.is_contiguous()
    assert PAPER_SETTINGS["imagenet"] == (224, True)


def test_mean_subtraction_and_scaling():
    split = random_split(50, 3, 8)
    pre = Preprocess(compute_mean_image(split), None, False)
    mean = split.images.astype(np.float64).mean(0) / 255
    np.testing.assert_allclose(pre.mean_image.numpy(), mean, atol=1e-6)
    x = torch.from_numpy(split.images)
    expect = x.double() / 255 - torch.from_numpy(mean)
    torch.testing.assert_close(pre.test(x).double(), expect, atol=1e-6, rtol=0)
    # with no crop and no flip, training is the same deterministic map
    torch.testing.assert_close(pre.train(x, torch.Generator()), pre.test(x))
    assert abs(pre.test(x).double().mean(0)).max() < 1e-6  # train split is centred


def test_centre_crop_at_test():
    split = random_split(3, 3, 32)
    pre = paper_preprocess("cifar10", split)
    x = torch.from_numpy(split.images)
    full = x.float() - pre.mean_image  # CIFAR: the 0-255 scale
    torch.testing.assert_close(pre.test(x), full[:, :, 4:28, 4:28])
    pre256 = Preprocess(torch.zeros(3, 256, 256), 224, True)
    x = torch.randint(0, 256, (2, 3, 256, 256), dtype=torch.uint8)
    torch.testing.assert_close(pre256.test(x), x[:, :, 16:240, 16:240].float() / 255)


@pytest.mark.parametrize("flip", [False, True])
def test_random_crops_are_windows_and_flip_only_when_asked(flip):
    split = random_split(64, 3, 12, seed=3)
    pre = Preprocess(compute_mean_image(split), 9, flip)
    x = torch.from_numpy(split.images)
    out = pre.train(x, torch.Generator().manual_seed(5))
    found = [match(out[n], x[n], pre.mean_image, 9) for n in range(len(x))]
    assert all(f is not None for f in found)
    flips = [f[2] for f in found]
    offsets = {(f[0], f[1]) for f in found}
    assert len(offsets) > 5  # offsets vary between images
    if flip:
        assert 10 < sum(flips) < 54  # about half flipped
    else:
        assert not any(flips)


def test_flip_without_crop():
    split = random_split(40, 1, 6, seed=4)
    pre = Preprocess(torch.zeros(1, 6, 6), None, True)
    x = torch.from_numpy(split.images)
    out = pre.train(x, torch.Generator().manual_seed(0))
    base = x.float() / 255
    flipped = [bool(torch.equal(o, b.flip(-1))) for o, b in zip(out, base, strict=True)]
    same = [bool(torch.equal(o, b)) for o, b in zip(out, base, strict=True)]
    assert all(f != s for f, s in zip(flipped, same, strict=True)) and 5 < sum(flipped) < 35


def test_determinism_with_seeded_generator():
    split = random_split(32, 3, 32)
    pre = paper_preprocess("cifar10", split)
    x = torch.from_numpy(split.images)
    a = pre.train(x, torch.Generator().manual_seed(123))
    b = pre.train(x, torch.Generator().manual_seed(123))
    c = pre.train(x, torch.Generator().manual_seed(124))
    assert torch.equal(a, b) and not torch.equal(a, c)
    g = torch.Generator().manual_seed(7)
    first, second = pre.train(x, g), pre.train(x, g)  # the generator advances
    assert not torch.equal(first, second)
    # test-time output does not depend on any generator: the hand-computed centre crop
    centre = x[:, :, 4:28, 4:28].double() - pre.mean_image[:, 4:28, 4:28].double()
    torch.testing.assert_close(pre.test(x).double(), centre, atol=1e-4, rtol=0)


def test_input_validation():
    pre = Preprocess(torch.zeros(3, 32, 32), 24, True)
    g = torch.Generator()
    with pytest.raises(ValueError, match="uint8 batch"):
        pre.test(torch.zeros(2, 3, 32, 32))
    with pytest.raises(ValueError, match="uint8 batch"):
        pre.test(torch.zeros(3, 32, 32, dtype=torch.uint8))
    with pytest.raises(ValueError, match="mean image"):
        pre.train(torch.zeros(2, 3, 28, 28, dtype=torch.uint8), g)
    with pytest.raises(TypeError, match="torch.Generator"):
        pre.train(torch.zeros(2, 3, 32, 32, dtype=torch.uint8), None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="crop 40 larger"):
        Preprocess(torch.zeros(3, 32, 32), 40, False)
    with pytest.raises(ValueError, match="crop must be"):
        Preprocess(torch.zeros(3, 32, 32), 0, False)
    with pytest.raises(ValueError, match="float tensor"):
        Preprocess(torch.zeros(32, 32), None, False)
    with pytest.raises(ValueError, match="no paper preprocessing"):
        paper_preprocess("mystery", random_split(2, 1, 4))
    with pytest.raises(AttributeError):
        pre.crop = 10  # frozen


def test_to_dict_roundtrip_through_weights_only_load(tmp_path):
    pre = Preprocess(torch.rand(3, 32, 32), 24, True)
    for p in (pre, Preprocess(torch.rand(1, 28, 28), None, False)):
        path = tmp_path / "ckpt.pt"
        torch.save({"preprocess": p.to_dict()}, path)
        back = Preprocess.from_dict(torch.load(path, weights_only=True)["preprocess"])
        assert back.crop == p.crop and back.flip == p.flip
        assert torch.equal(back.mean_image, p.mean_image)
        x = torch.randint(0, 256, (4, *p.input_shape), dtype=torch.uint8)
        assert torch.equal(back.test(x), p.test(x))
    d = pre.to_dict()
    assert {type(v) for v in d.values()} <= {str, int, float, bool, torch.Tensor}
    with pytest.raises(ValueError, match="not a softlif.data.Preprocess"):
        Preprocess.from_dict({"crop": 1})
    with pytest.raises(ValueError, match="bad 'crop'"):
        Preprocess.from_dict({**d, "crop": -3})


def test_compute_mean_image_sources():
    split = random_split(30, 3, 5, seed=9)
    full = compute_mean_image(split)
    assert full.shape == (3, 5, 5) and full.dtype == torch.float32
    torch.testing.assert_close(compute_mean_image(torch.from_numpy(split.images)), full)
    torch.testing.assert_close(compute_mean_image(split.images, batch_size=7), full)
    ds = torch.utils.data.TensorDataset(torch.from_numpy(split.images), torch.zeros(30))
    torch.testing.assert_close(compute_mean_image(ds, batch_size=8), full)
    sub = compute_mean_image(split, limit=3)  # images 0, 14/15, 29
    idx = np.unique(np.linspace(0, 29, 3).round().astype(int))
    expect = torch.from_numpy(split.images[idx].astype(np.float64).mean(0) / 255).float()
    torch.testing.assert_close(sub, expect)
    with pytest.raises(ValueError, match="uint8"):
        compute_mean_image(np.zeros((2, 1, 3, 3), np.float32))


def test_paper_input_scale_per_dataset():
    """SPEC section 4: CIFAR-10/100, SVHN and ImageNet on the 0-255 scale less the mean image
    (no division by 255); MNIST in [0, 1] less the mean."""
    rng = np.random.default_rng(2)
    imgs = rng.integers(0, 256, (6, 3, 32, 32), dtype=np.uint8)
    split = ArraySplit(imgs, np.zeros(6, np.int64), ["a"])
    mean = imgs.astype(np.float64).mean(0)  # 0-255 units, by hand
    for name in ("cifar10", "cifar100", "svhn"):
        pre = paper_preprocess(name, split)
        assert pre.pixel_divisor == 1.0 and pre.input_scale == "0-255"
        np.testing.assert_allclose(pre.mean_image.numpy(), mean, rtol=1e-6)
        out = pre.test(torch.from_numpy(imgs)).double().numpy()
        c = (32 - pre.output_shape[1]) // 2
        crop = slice(c, c + pre.output_shape[1])
        expect = imgs.astype(np.float64)[:, :, crop, crop] - mean[:, crop, crop]
        np.testing.assert_allclose(out, expect, atol=1e-4)
        assert np.abs(out).max() > 50  # raw pixel units, not [0, 1]
    gray = ArraySplit(imgs[:, :1, :28, :28].copy(), np.zeros(6, np.int64), ["a"])
    pre = paper_preprocess("mnist", gray)
    assert pre.pixel_divisor == 255.0 and pre.input_scale == "[0, 1]"
    expect = gray.images / 255.0 - gray.images.astype(np.float64).mean(0) / 255.0
    np.testing.assert_allclose(pre.test(torch.from_numpy(gray.images)).double().numpy(),
                               expect, atol=1e-6)


def test_version1_dict_keeps_the_old_unit_scale(tmp_path):
    """A preprocessing saved before the scale was recorded (v1: no pixel_divisor) loads with
    its old [0, 1] scale and gives bit-identical inputs to what the old code computed."""
    mean = torch.rand(3, 32, 32)
    v1 = {"kind": "softlif.data.Preprocess", "version": 1, "mean_image": mean, "crop": 24,
          "flip": True}
    torch.save({"preprocess": v1}, tmp_path / "old.pt")
    back = Preprocess.from_dict(torch.load(tmp_path / "old.pt", weights_only=True)["preprocess"])
    assert back.pixel_divisor == 255.0 and back.crop == 24 and back.flip
    x = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    old = x[:, :, 4:28, 4:28].to(torch.float32).div(255.0).sub(mean[:, 4:28, 4:28])
    assert torch.equal(back.test(x), old)
    with pytest.raises(ValueError, match="pixel_divisor"):
        Preprocess.from_dict({**back.to_dict(), "pixel_divisor": "255"})
    with pytest.raises(ValueError, match="pixel_divisor"):
        Preprocess(mean, 24, True, 0.0)
    with pytest.raises(ValueError, match="NaN"):
        Preprocess(torch.full((3, 4, 4), float("nan")))


def test_preprocessed_batches_have_nchw_strides_however_the_images_were_indexed():
    """A one-channel batch from numpy's x[:, None] has channel stride 0, one from fancy
    indexing stride 1 (which PyTorch may read as channels-last): the conv kernels round
    differently for the two, so preprocessing returns one layout for both."""
    import numpy as np

    raw = np.random.default_rng(0).integers(0, 256, (6, 28, 28), dtype=np.uint8)[:, None]
    a = torch.from_numpy(raw[:4])
    b = torch.as_tensor(raw[np.arange(4)])
    assert a.stride() != b.stride() and torch.equal(a, b)
    pre = Preprocess(torch.zeros(1, 28, 28), None, False)
    for x in (a, b):
        assert pre.test(x).stride() == (784, 784, 28, 1)
        assert pre.train(x, torch.Generator().manual_seed(0)).stride() == (784, 784, 28, 1)
