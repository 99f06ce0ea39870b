"""ANN inference on preprocessed test images: logits and error rates.

Shared by training (per-epoch test error), evaluation and the command line; it imports
neither training nor simulation.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn
from torch.utils.data import Dataset

from .activations import RateNeuron, set_rate_mode
from .data import ArraySplit, Preprocess
from .data.batches import chunks, iter_batches


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor | ArraySplit | Dataset, pre: Preprocess,
            batch_size: int = 500, mode: str | None = None, workers: int = 0) -> torch.Tensor:
    """Logits of ``model`` (eval mode) on uint8 ``images`` (a tensor (N, C, H, W), an
    :class:`ArraySplit` or a lazy data set, decoded ``batch_size`` at a time by ``workers``
    processes); ``mode`` = "soft"/"hard" switches every RateNeuron temporarily."""
    was = model.training
    dev = next(model.parameters()).device
    modes = {m: m.mode for m in model.modules() if isinstance(m, RateNeuron)}
    model.eval()
    if mode is not None:
        set_rate_mode(model, mode)  # type: ignore[arg-type]
    if isinstance(images, torch.Tensor):
        batches: Iterable[torch.Tensor] = (images[i:i + batch_size]
                                           for i in range(0, len(images), batch_size))
    else:
        batches = (x for x, _ in iter_batches(images, chunks(len(images), batch_size),  # type: ignore[arg-type]
                                              workers=workers))
    try:
        return torch.cat([model(pre.test(x).to(dev)).cpu() for x in batches])
    finally:
        for m, md in modes.items():
            m.mode = md
        model.train(was)


def error_rate(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of wrong argmax predictions: the exact count over the number of images, in
    float64 (no float32 artefacts such as 0.0340000018 for 34 of 1,000)."""
    return int((logits.argmax(1) != labels).sum()) / len(labels)


@torch.no_grad()
def loader_error(model: nn.Module, loader: Iterable, mode: str | None = None,
                 device: torch.device | str | None = None) -> float:
    """Classification error (fraction) of ``model`` (eval mode) over a PyTorch ``DataLoader``
    (or any iterable of ``(inputs, labels)`` batches, inputs already preprocessed); ``mode`` =
    "soft"/"hard" switches every RateNeuron temporarily ("hard" predicts the spiking net)."""
    was = model.training
    dev = torch.device(device) if device is not None else next(model.parameters()).device
    modes = {m: m.mode for m in model.modules() if isinstance(m, RateNeuron)}
    model.eval()
    if mode is not None:
        set_rate_mode(model, mode)  # type: ignore[arg-type]
    wrong = seen = 0
    try:
        for x, y in loader:
            wrong += int((model(x.to(dev)).argmax(1).cpu() != y).sum())
            seen += len(y)
    finally:
        for m, md in modes.items():
            m.mode = md
        model.train(was)
    if not seen:
        raise ValueError("the loader gave no batches")
    return wrong / seen
