"""Rate-neuron activations for training the ANN (``nn.Module`` wrappers of a neuron type).

``RateNeuron(LIF(...))`` computes ``amplitude * soft_rate(gain * x + bias)`` and, in training
mode only, adds Gaussian rate noise (Hz) to active units (Hunsberger & Eliasmith 2015, sec. 2.3;
SPEC section 2). The converter replaces each ``RateNeuron`` by the spiking neuron of the same
type and parameters.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import torch
from torch import nn

from .neurons import NeuronType

RateMode = Literal["soft", "hard"]


class RateNeuron(nn.Module):
    """Rate activation of a neuron type: ``amplitude * rate(gain * x + bias)``.

    ``mode="soft"`` uses the smoothed rate (for training), ``"hard"`` the spiking neuron's true
    rate curve (which predicts the SNN). Training noise: ``rate += N(0, noise_std^2)`` (Hz) where
    the unit is above threshold (``J > 1``), then clipped at 0; on only in ``.train()``; no
    gradient flows through the noise. Pass ``generator`` for repeatable noise.
    """

    def __init__(
        self,
        neuron: NeuronType,
        mode: RateMode = "soft",
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if mode not in ("soft", "hard"):
            raise ValueError(f"RateNeuron mode must be 'soft' or 'hard', got {mode!r}")
        self.neuron = neuron
        self.mode: RateMode = mode
        self.generator = generator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = self.neuron
        j = n.current(x)
        rate = n.soft_rate(j) if self.mode == "soft" else n.rate(j)  # Hz
        if self.training and n.noise_std > 0:
            with torch.no_grad():
                noise = torch.randn(
                    rate.shape, generator=self.generator, dtype=rate.dtype, device=rate.device
                )
                noise.mul_(n.noise_std).mul_(j > 1.0)
            # the noise is a constant offset for autograd; clipping at 0 zeroes the gradient
            # of units pushed below 0 (the soft-rate derivative is finite, so no 0 * inf)
            rate = torch.clamp(rate + noise, min=0.0)
        return n.amplitude * rate

    def extra_repr(self) -> str:
        return f"{self.neuron}, mode={self.mode!r}"


def set_rate_mode(model: nn.Module, mode: RateMode) -> None:
    """Switch every :class:`RateNeuron` in ``model`` to ``"soft"`` or ``"hard"`` in place."""
    for m in model.modules():
        if isinstance(m, RateNeuron):
            m.mode = mode


def set_smoothing(model: nn.Module, smoothing: float) -> None:
    """Set the soft-rate smoothing g of every :class:`RateNeuron` (for annealing g -> 0)."""
    for m in model.modules():
        if isinstance(m, RateNeuron):
            m.neuron = dataclasses.replace(m.neuron, smoothing=float(smoothing))


def set_noise(model: nn.Module, noise_std: float) -> None:
    """Set the training noise (Hz) of every :class:`RateNeuron`."""
    for m in model.modules():
        if isinstance(m, RateNeuron):
            m.neuron = dataclasses.replace(m.neuron, noise_std=float(noise_std))
