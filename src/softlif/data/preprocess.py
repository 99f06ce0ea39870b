"""Batched preprocessing as in Hunsberger & Eliasmith (arXiv 1510.08829, 1611.05141).

Every image is put on its data set's input scale and the training split's mean image (on the
same scale) is subtracted. The scale is the authors' (SPEC section 4): CIFAR-10/100, SVHN and
ImageNet as raw pixels on the 0-255 scale (their data providers did not divide by 255), MNIST
and Fashion-MNIST in [0, 1]. The soft-LIF gain and bias (J = x + 1) and the paper's per-layer
rates assume these scales: a CIFAR net fed [0, 1] inputs sees first-layer currents 255 times
smaller. For
training, random crops (SVHN 28 of 32, CIFAR 24 of 32, ImageNet 224 of 256) and random
horizontal flips (CIFAR and ImageNet only) are applied; at test time the central crop is
used. Everything runs on whole uint8 batches as tensor indexing (on the batch's device);
randomness comes only from an explicit :class:`torch.Generator`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset

from .split import ArraySplit

#: Per data set: (crop side in pixels or None, horizontal flips) as used in the papers.
PAPER_SETTINGS: dict[str, tuple[int | None, bool]] = {
    "mnist": (None, False),
    "fashion-mnist": (None, False),
    "svhn": (28, False),
    "cifar10": (24, True),
    "cifar100": (24, True),
    "imagenet": (224, True),
}

#: Per data set: the number the authors divided raw 0-255 pixels by (SPEC section 4). 1 keeps
#: the 0-255 scale (CIFAR-10/100, ImageNet; SVHN, whose .mat bytes the authors' provider did
#: not rescale); 255 gives [0, 1] (MNIST, read by the authors from a file already in [0, 1]).
PAPER_PIXEL_DIVISOR: dict[str, float] = {
    "mnist": 255.0,
    "fashion-mnist": 255.0,
    "svhn": 1.0,
    "cifar10": 1.0,
    "cifar100": 1.0,
    "imagenet": 1.0,
}

_KIND = "softlif.data.Preprocess"
#: what a random training crop has the mean image subtracted by (:class:`Preprocess`)
TRAIN_MEANS = ("aligned", "centre")


@dataclass(frozen=True, eq=False)
class Preprocess:
    """Scale the pixels, subtract the mean image, crop and (in training) flip.

    Attributes:
        mean_image: float32 (C, H, W), the mean training image on the input scale (in units
            of ``pixel / pixel_divisor``) at the full (uncropped) size H x W of the images.
        crop: side of the square crop in pixels, or None for no cropping.
        flip: whether :meth:`train` flips each image horizontally with probability 1/2.
        pixel_divisor: raw 0-255 pixels are divided by this: 255 gives [0, 1] inputs (MNIST,
            and every checkpoint written before the scale was recorded), 1 keeps the 0-255
            scale (the authors' CIFAR, SVHN and ImageNet; :data:`PAPER_PIXEL_DIVISOR`).
        train_mean: what a random training crop has subtracted: "aligned" (the mean image's
            pixels under the crop) or "centre" (the mean image's centre crop, wherever the
            crop lies: the authors' cuda-convnet data provider). Test crops are central, where
            both agree.

    Output of :meth:`train` / :meth:`test`: float32 (N, C, crop, crop) (or (N, C, H, W)
    without crop) on the input batch's device, ``x / pixel_divisor - mean_image`` cropped.
    """

    mean_image: torch.Tensor
    crop: int | None = None
    flip: bool = False
    pixel_divisor: float = 255.0
    train_mean: str = "aligned"

    def __post_init__(self) -> None:
        m = self.mean_image
        if not isinstance(m, torch.Tensor) or m.ndim != 3 or not m.is_floating_point():
            raise ValueError(f"mean_image must be a float tensor (C, H, W), got {m!r:.80}")
        if m.numel() == 0:
            raise ValueError(f"mean_image is empty: shape {tuple(m.shape)}")
        if not bool(torch.isfinite(m).all()):
            raise ValueError("mean_image holds NaN or infinite values")
        object.__setattr__(self, "mean_image", m.detach().to(torch.float32))
        d = self.pixel_divisor
        if isinstance(d, bool) or not isinstance(d, (int, float)) or not (0 < d < float("inf")):
            raise ValueError(f"pixel_divisor must be a positive finite number, got {d!r}")
        object.__setattr__(self, "pixel_divisor", float(d))
        if self.crop is not None:
            if isinstance(self.crop, bool) or not isinstance(self.crop, int) or self.crop < 1:
                raise ValueError(f"crop must be a positive int or None, got {self.crop!r}")
            if self.crop > min(m.shape[1:]):
                raise ValueError(f"crop {self.crop} larger than the images {tuple(m.shape[1:])}")
        if not isinstance(self.flip, bool):
            raise ValueError(f"flip must be a bool, got {self.flip!r}")
        if self.train_mean not in TRAIN_MEANS:
            raise ValueError(f"train_mean must be one of {', '.join(TRAIN_MEANS)}, got "
                             f"{self.train_mean!r}")

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """Shape (C, H, W) of one input image."""
        c, h, w = self.mean_image.shape
        return int(c), int(h), int(w)

    @property
    def output_shape(self) -> tuple[int, int, int]:
        """Shape (C, h, w) of one preprocessed image."""
        c, h, w = self.input_shape
        return (c, self.crop, self.crop) if self.crop is not None else (c, h, w)

    def _check(self, batch: torch.Tensor) -> None:
        if not isinstance(batch, torch.Tensor) or batch.dtype != torch.uint8 or batch.ndim != 4:
            what = getattr(batch, "dtype", type(batch).__name__)
            shape = tuple(getattr(batch, "shape", ()))
            raise ValueError(f"expected a uint8 batch (N, C, H, W), got {what} {shape}")
        if tuple(batch.shape[1:]) != self.input_shape:
            raise ValueError(
                f"batch images have shape {tuple(batch.shape[1:])}, the mean image "
                f"{self.input_shape}"
            )

    @property
    def input_scale(self) -> str:
        """The input scale in words, for reports: "0-255" or "[0, 1]" (or "0-255/d")."""
        if self.pixel_divisor == 1.0:
            return "0-255"
        if self.pixel_divisor == 255.0:
            return "[0, 1]"
        return f"0-255/{self.pixel_divisor:g}"

    def _normalise(self, x: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
        x = x.to(torch.float32)
        if self.pixel_divisor != 1.0:
            x = x.div_(self.pixel_divisor)
        return x.sub_(mean)

    def test(self, batch: torch.Tensor) -> torch.Tensor:
        """Deterministic test-time preprocessing: scale, subtract mean, central crop.

        Args:
            batch: uint8 (N, C, H, W).

        Returns:
            float32 (N, *output_shape) on ``batch.device``.
        """
        self._check(batch)
        mean = self.mean_image.to(batch.device)
        if self.crop is not None:
            _, h, w = self.input_shape
            top, left = (h - self.crop) // 2, (w - self.crop) // 2
            rows, cols = slice(top, top + self.crop), slice(left, left + self.crop)
            batch, mean = batch[:, :, rows, cols], mean[:, rows, cols]
        return _standard_strides(self._normalise(batch, mean))

    def train(self, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Training preprocessing: scale, subtract mean, random crop, random flip.

        Each image gets its own crop offset (uniform over all positions) and, if
        ``flip``, a horizontal flip with probability 1/2. Draws, in this order: N row
        offsets, N column offsets, N flip coins, all from ``generator`` (on its device),
        so equal generator states give equal outputs.

        Args:
            batch: uint8 (N, C, H, W).
            generator: the only source of randomness.

        Returns:
            float32 (N, *output_shape) on ``batch.device``.
        """
        if not isinstance(generator, torch.Generator):
            raise TypeError("train() needs an explicit torch.Generator for its randomness")
        self._check(batch)
        n = batch.shape[0]
        _, h, w = self.input_shape
        ch, cw = (self.crop, self.crop) if self.crop is not None else (h, w)
        gdev = generator.device
        if self.crop is not None:
            top = torch.randint(0, h - ch + 1, (n,), generator=generator, device=gdev)
            left = torch.randint(0, w - cw + 1, (n,), generator=generator, device=gdev)
        else:
            top = left = torch.zeros(n, dtype=torch.long, device=gdev)
        flips = (
            torch.randint(0, 2, (n,), generator=generator, device=gdev).bool()
            if self.flip
            else None
        )
        mean = self.mean_image.to(batch.device)
        if self.crop is None and flips is None:
            return _standard_strides(self._normalise(batch, mean))
        dev = batch.device
        rows = top.to(dev)[:, None] + torch.arange(ch, device=dev)  # (N, ch)
        cols = left.to(dev)[:, None] + torch.arange(cw, device=dev)  # (N, cw)
        if flips is not None:
            cols = torch.where(flips.to(dev)[:, None], cols.flip(1), cols)
        # One gather over the flattened pixel axis: index (N, C, ch*cw) into (N, C, H*W).
        c = batch.shape[1]
        lin = (rows[:, :, None] * w + cols[:, None, :]).reshape(n, 1, ch * cw).expand(n, c, -1)
        x = batch.reshape(n, c, h * w).gather(2, lin)
        if self.train_mean == "centre":  # the same centre crop for every image, unflipped
            top0, left0 = (h - ch) // 2, (w - cw) // 2
            m = mean[:, top0:top0 + ch, left0:left0 + cw].reshape(1, c, ch * cw)
        else:
            m = mean.reshape(1, c, h * w).expand(n, c, h * w).gather(2, lin)
        return _standard_strides(self._normalise(x, m).reshape(n, c, ch, cw))

    def to_dict(self) -> dict[str, Any]:
        """A plain dict (tensor, numbers, bool, str) for ``torch.save``; ``crop`` 0 means None.

        Loadable with ``torch.load(..., weights_only=True)``; invert with :meth:`from_dict`.
        Version 2 records ``pixel_divisor``; version-1 dicts (written before it existed) were
        all on the [0, 1] scale and load with ``pixel_divisor = 255``. Version 3 records
        ``train_mean`` (earlier ones load as "aligned").
        """
        return {
            "kind": _KIND,
            "version": 3,
            "train_mean": self.train_mean,
            "mean_image": self.mean_image.detach().cpu().clone(),
            "crop": 0 if self.crop is None else int(self.crop),
            "flip": bool(self.flip),
            "pixel_divisor": float(self.pixel_divisor),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Preprocess:
        """Rebuild from :meth:`to_dict` output. Raises ValueError on a malformed dict."""
        if not isinstance(d, dict) or d.get("kind") != _KIND or d.get("version") not in (1, 2, 3):
            raise ValueError(f"not a {_KIND} v1-v3 dict: {d!r:.200}")
        crop, flip, mean = d.get("crop"), d.get("flip"), d.get("mean_image")
        if not isinstance(crop, int) or isinstance(crop, bool) or crop < 0:
            raise ValueError(f"bad 'crop' entry {crop!r}")
        if not isinstance(flip, bool) or not isinstance(mean, torch.Tensor):
            raise ValueError("bad 'flip' or 'mean_image' entry")
        divisor = 255.0 if d["version"] == 1 else d.get("pixel_divisor")
        if isinstance(divisor, bool) or not isinstance(divisor, (int, float)):
            raise ValueError(f"bad 'pixel_divisor' entry {divisor!r}")
        train_mean = d.get("train_mean", "aligned")
        if train_mean not in TRAIN_MEANS:
            raise ValueError(f"bad 'train_mean' entry {train_mean!r:.40}")
        return cls(mean, None if crop == 0 else crop, flip, float(divisor), train_mean)


def _standard_strides(t: torch.Tensor) -> torch.Tensor:
    """``t`` with NCHW (C-order) strides, size-1 dimensions included. A one-channel batch
    whose channel stride is 1 (numpy fancy indexing) or 0 (``x[:, None]``) is "contiguous" to
    PyTorch yet may be read as channels-last, and the conv kernels then round differently:
    one layout for every batch keeps results independent of how the images were indexed."""
    want, acc = [], 1
    for size in reversed(t.shape):
        want.append(acc)
        acc *= size
    if t.stride() == tuple(reversed(want)):
        return t
    return t.clone(memory_format=torch.contiguous_format)


def compute_mean_image(
    source: ArraySplit | np.ndarray | torch.Tensor | Dataset,
    *,
    limit: int | None = None,
    batch_size: int = 1000,
    num_workers: int = 0,
    pixel_divisor: float = 255.0,
) -> torch.Tensor:
    """Mean image of a training split, float32 (C, H, W) in units of ``pixel / pixel_divisor``
    ([0, 1] by default; 0-255 with ``pixel_divisor=1``).

    Args:
        source: uint8 images (N, C, H, W) as an :class:`ArraySplit`, array or tensor, or a
            data set whose items are ``(uint8 image (C, H, W), label)`` (e.g. ImageNet).
        limit: use at most this many images, evenly spaced over the split (a data set
            sorted by class is still sampled across classes); None = all.
        batch_size: images summed per step (bounds the memory use).
        num_workers: DataLoader workers when ``source`` is a data set.
    """
    if isinstance(source, ArraySplit):
        source = source.images
    if isinstance(source, (np.ndarray, torch.Tensor)):
        x = torch.as_tensor(source)
        if x.dtype != torch.uint8 or x.ndim != 4:
            raise ValueError(f"expected uint8 images (N, C, H, W), got {x.dtype} {tuple(x.shape)}")
        n = len(x)
        idx = _spaced(n, limit)
        total = torch.zeros(x.shape[1:], dtype=torch.float64)
        for s in range(0, len(idx), batch_size):
            total += x[idx[s : s + batch_size]].to(torch.float64).sum(0)
        count = len(idx)
    else:
        n = len(source)  # type: ignore[arg-type]
        sub = Subset(source, _spaced(n, limit).tolist())
        loader = DataLoader(sub, batch_size=batch_size, num_workers=num_workers)
        acc: torch.Tensor | None = None
        count = 0
        for xb, _ in loader:
            s = xb.to(torch.float64).sum(0)
            acc = s if acc is None else acc + s
            count += len(xb)
        total = acc if acc is not None else torch.zeros(())
    if not count:
        raise ValueError("cannot compute the mean image of an empty split")
    return (total / (float(pixel_divisor) * count)).to(torch.float32)


def _spaced(n: int, limit: int | None) -> torch.Tensor:
    if limit is None or limit >= n:
        return torch.arange(n)
    idx = np.linspace(0, n - 1, max(limit, 1)).round().astype(np.int64)
    return torch.from_numpy(np.unique(idx))


def default_preprocess(
    train_split: ArraySplit | np.ndarray | torch.Tensor | Dataset,
    *,
    crop: int | None = None,
    flip: bool = False,
    pixel_divisor: float = 255.0,
    mean_limit: int | None = None,
) -> Preprocess:
    """Preprocessing for a user's own data (npz, IDX, image folders): the training split's
    mean image subtracted, pixels divided by ``pixel_divisor`` (255: [0, 1], the default; 1:
    the 0-255 scale the authors used for CIFAR and ImageNet), optional random ``crop``
    (centre crop at test time) and horizontal ``flip`` in training."""
    mean = compute_mean_image(train_split, limit=mean_limit, pixel_divisor=pixel_divisor)
    return Preprocess(mean, crop, flip, pixel_divisor)


def paper_preprocess(
    dataset_name: str,
    train_split: ArraySplit | np.ndarray | torch.Tensor | Dataset,
    *,
    mean_limit: int | None = None,
) -> Preprocess:
    """The papers' preprocessing for ``dataset_name``, mean image from ``train_split``.

    MNIST / Fashion-MNIST: [0, 1] scale, no crop, no flip; SVHN: 0-255 scale, 28x28 random
    crops, no flip; CIFAR-10/100: 0-255 scale, 24x24 random crops + flips; ImageNet: 0-255
    scale, 224x224 crops (of the 256x256 images) + flips. Mean-image subtraction for all (for
    SVHN the authors' mean was over train + test; this one is over ``train_split`` only);
    centre crop at test time. Scales: :data:`PAPER_PIXEL_DIVISOR`.

    Args:
        dataset_name: one of :data:`PAPER_SETTINGS`.
        train_split: the training images (see :func:`compute_mean_image`).
        mean_limit: evenly spaced subsample for the mean (useful for ImageNet).
    """
    if dataset_name not in PAPER_SETTINGS:
        raise ValueError(
            f"no paper preprocessing for {dataset_name!r}; known: {sorted(PAPER_SETTINGS)} "
            f"(build a Preprocess(mean_image, crop, flip) yourself for other data)"
        )
    crop, flip = PAPER_SETTINGS[dataset_name]
    divisor = PAPER_PIXEL_DIVISOR[dataset_name]
    mean = compute_mean_image(train_split, limit=mean_limit, pixel_divisor=divisor)
    return Preprocess(mean, crop, flip, divisor)
