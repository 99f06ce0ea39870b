"""Synaptic filters: none, lowpass(tau) and alpha(tau), ZOH-discretised with unit DC gain.

A :class:`Synapse` is an immutable description (SPEC section 3); the caller owns the state,
which is a tuple of tensors (one per first-order stage). ``step`` advances one time step,
``filt`` filters a whole ``[T, ...]`` array; both use the same update.

* lowpass(tau): ``y[n] = a y[n-1] + (1 - a) x[n]``, ``a = exp(-dt / tau)``; impulse response
  ``(1 / tau) exp(-t / tau)`` in continuous time.
* alpha(tau): two lowpass stages in cascade (transfer ``1 / (tau s + 1)^2``), impulse response
  ``(t / tau^2) exp(-t / tau)``. The paper's default is tau = 5 ms.
* ``tau == 0`` (or kind ``"none"``) passes the input through unchanged.

>>> syn = Synapse("lowpass", 0.005)
>>> y = syn.filt(torch.ones(2000, 1), dt=0.001)  # step response settles at the DC gain, 1
>>> round(float(y[-1, 0]), 6)
1.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

Tensor = torch.Tensor
SynapseKind = Literal["none", "lowpass", "alpha"]
SynapseState = tuple[Tensor, ...]


@dataclass(frozen=True)
class Synapse:
    """A linear synaptic filter with unit DC gain.

    kind: ``"none"``, ``"lowpass"`` or ``"alpha"``; tau: time constant in seconds (0 = none).
    """

    kind: SynapseKind = "alpha"
    tau: float = 0.005  # time constant (s)

    def __post_init__(self) -> None:
        if self.kind not in ("none", "lowpass", "alpha"):
            raise ValueError(
                f"synapse kind must be 'none', 'lowpass' or 'alpha', got {self.kind!r}"
            )
        if not (isinstance(self.tau, (int, float)) and math.isfinite(self.tau) and self.tau >= 0):
            raise ValueError(f"synapse tau must be a finite number of seconds >= 0, got {self.tau!r}")

    @property
    def order(self) -> int:
        """Number of first-order lowpass stages (0 = pass-through)."""
        if self.kind == "none" or self.tau == 0:
            return 0
        return 1 if self.kind == "lowpass" else 2

    def decay(self, dt: float) -> float:
        """Per-step decay a = exp(-dt / tau) of each stage (dt in seconds)."""
        return math.exp(-dt / self.tau) if self.order else 0.0

    def initial_state(self, like: Tensor) -> SynapseState:
        """Zero state, one tensor per stage, shaped like one time step of the input."""
        return tuple(torch.zeros_like(like) for _ in range(self.order))

    def step(self, x: Tensor, state: SynapseState, dt: float) -> tuple[Tensor, SynapseState]:
        """Filter one time step ``x`` (any shape); returns ``(y, new_state)``."""
        return synapse_step(x, state, self.decay(dt))

    def filt(self, x: Tensor, dt: float, state: SynapseState | None = None) -> Tensor:
        """Filter ``x`` of shape ``[T, ...]`` along its first (time) axis, from ``state``
        (zero if None). Identical to calling :meth:`step` T times."""
        if state is None:
            state = self.initial_state(x[0])
        a = self.decay(dt)
        out = torch.empty_like(x)
        for t in range(x.shape[0]):
            out[t], state = synapse_step(x[t], state, a)
        return out

    def impulse_response(self, t: Tensor) -> Tensor:
        """Continuous-time impulse response h(t) in 1/s at times ``t`` (s); the discrete filter
        approximates it to O(dt / tau)."""
        if self.order == 0:
            raise ValueError("a pass-through synapse has a Dirac impulse response")
        tau = self.tau
        if self.order == 1:
            return torch.exp(-t / tau) / tau
        return t / tau**2 * torch.exp(-t / tau)


def periodic_train(phase: Tensor, rate: Tensor, tau: float, order: int) -> Tensor:
    """The filtered periodic spike train (Hz) of ``rate`` Hz at ``phase`` in [0, 1) of the
    inter-spike interval after a spike: what a synapse of ``order`` lowpass stages (1 lowpass,
    2 alpha) of time constant ``tau`` s passes on from a neuron firing steadily. Closed form
    of the sum of impulse responses over all past spikes; averaged over the phase it is
    exactly ``rate``, and its spread is the paper's Fig. 2. Rates are floored at 1e-6 Hz.

    With P = 1 / rate, t = phase * P and q = exp(-P / tau):
    lowpass ``exp(-t/tau) / (tau (1 - q))``; alpha
    ``exp(-t/tau) / tau^2 * (t / (1 - q) + P q / (1 - q)^2)``.
    """
    if order not in (1, 2) or not tau > 0:
        raise ValueError(f"periodic_train needs a lowpass or alpha synapse with tau > 0, "
                         f"got order {order}, tau {tau}")
    a = 1.0 / (torch.clamp(rate, min=1e-6) * tau)  # period in units of tau
    one_minus_q = -torch.expm1(-a)
    decay = torch.exp(-phase * a)
    if order == 1:
        return decay / (tau * one_minus_q)
    q = 1.0 - one_minus_q
    return decay / tau * (phase * a / one_minus_q + a * q / one_minus_q**2)


# A silent input lets a filter's state decay geometrically into denormal floats after a few
# hundred steps, and x86 arithmetic on denormals is 10-100x slower: a mostly silent layer
# slowed whole simulations several-fold. States below this magnitude are set to 0 (currents
# are O(1), so this changes nothing measurable).
_FLUSH_BELOW = 1e-30


def synapse_step(x: Tensor, state: SynapseState, a: float) -> tuple[Tensor, SynapseState]:
    """Advance a cascade of identical lowpass stages with decay ``a`` by one step.

    Each stage: y = a * y + (1 - a) * x, fed by the previous stage's new output; magnitudes
    below 1e-30 are flushed to 0 (see ``_FLUSH_BELOW``).
    """
    new_state = []
    for y in state:
        x = a * y + (1.0 - a) * x
        x = torch.where(x.abs() < _FLUSH_BELOW, 0.0, x)
        new_state.append(x)
    return x, tuple(new_state)
