"""Hardware-quantised LIF: Loihi-style fixed-point neuron dynamics and 8-bit weights.

**The arithmetic** (one step of ``dt`` s, all integers; the source is Intel's bit-accurate
Loihi LIF model in Lava, ``lava.proc.lif.models.PyLifModelBitAcc``, and Davies et al. 2018,
IEEE Micro 38(1)): a 24-bit signed voltage ``v``, a 12-bit decay ``dv`` in [1, 4095] with the
decay ``v <- sign(v) (|v| (4096 - dv) >> 12)`` (rounds toward zero), a threshold
``VTH = vth_mant << 6`` (``vth_mant`` 17-bit unsigned; the 6-bit MSB alignment is Loihi's),
a spike when ``v > VTH`` and a reset to 0. Choices of this model, stated because the chip
leaves them to the user or to microcode:

* ``dv = round(4096 (1 - exp(-dt / tau_rc)))``: the decay factor nearest the float LIF's;
* the input is one integer per step, ``u = floor(J * VTH * dv / 4096 + 1/2)``: the current
  ``J`` in threshold units (1 = threshold, as for every softlif neuron) quantised to the
  voltage LSB, so the voltage's fixed point ``u * 4096 / dv`` is ``J * VTH`` as in the float
  LIF (``tau_rc dv/dt = J - v``). softlif's synapse filters spikes in float before this
  rounding (on Loihi the current ``u`` decays in integers too: not modelled);
* ``v`` is floored at 0 (as softlif's LIF; Loihi's lower limit is configurable) and capped at
  ``2**23 - 1`` (24-bit); ``u`` saturates at +-(2**23 - 1);
* an integer refractory period ``R = tau_ref / dt`` steps (``tau_ref`` a multiple of ``dt``):
  after a spike ``v`` is held at 0 and the input ignored for ``R`` steps (Loihi 1's
  refractory delay; Lava's model has none).

**Its rate curve** is measured from these dynamics, not from a formula: under a constant input
``u`` the neuron charges from 0 and fires after ``k(u)`` steps, so its period is ``R + k(u)``
steps and its rate ``1 / ((R + k(u)) dt)`` Hz, a staircase in ``J``
(:func:`staircase`, every integer ``u`` up to ``VTH + 1``; exact, and equal to the spike count
of the integer simulation: tested). For training the staircase is smoothed twice, by the
methods used for the other types: a piecewise-linear curve through the middle of each tread
(the rate a current fluctuating over one tread sees on average), then the soft threshold of the
soft LIF (the curve at ``J0 + g softplus((J - J0) / g)``, ``J0`` its onset). The hard curve
(the hard-rate ANN and the SNN's prediction) is the exact staircase; its gradient, used only
when fine-tuning with the hard curve, is the smoothed curve's (straight-through).

**8-bit weights**: each weight layer feeding or reading these neurons stores a signed 8-bit
mantissa with one scale per layer (symmetric, ``scale = max|W| / 127``, round to nearest). On
chip the scale is a power-of-two weight exponent together with the threshold mantissa; softlif
keeps it a float. Training sees the quantised weights in the forward pass and updates float
master weights with the gradient at them (straight-through, :func:`fake_quantize`), so the
checkpoint keeps the masters and every forward pass (ANN, hard ANN, conversion) the quantised
weights; :func:`softlif.convert.convert` bakes them into plain layers.
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from .layers import LocallyConnected2d
from .neurons import (
    NeuronBase,
    NoiseModel,
    StateVar,
    _check_noise_model,
    _check_non_negative,
    _check_positive,
    aux_derivative,
    register_neuron,
    soft_onset_value,
)

Tensor = torch.Tensor

DECAY_SHIFT = 12  # decays are 12-bit fractions of 4096 (Loihi)
DECAY_UNITY = 1 << DECAY_SHIFT
VTH_SHIFT = 6  # the threshold mantissa is MSB-aligned by 6 bits (Loihi)
V_MAX = (1 << 23) - 1  # 24-bit signed state


def decay_mantissa(tau: float, dt: float) -> int:
    """The 12-bit decay ``d`` nearest ``1 - exp(-dt / tau)`` (dimensionless; tau, dt in s)."""
    return int(round(DECAY_UNITY * -math.expm1(-dt / tau)))


def input_scale(vth: int, dv: int) -> float:
    """Voltage LSBs per step for a unit current: ``VTH * dv / 4096``."""
    return vth * dv / DECAY_UNITY


def quantize_current(j: Tensor, scale: float) -> Tensor:
    """The integer input per step, ``floor(j * scale + 1/2)`` in float64, saturated (int64)."""
    u = torch.floor(j.to(torch.float64) * scale + 0.5)
    return u.clamp(-V_MAX, V_MAX).to(torch.int64)


def decay(v: Tensor, dv: int) -> Tensor:
    """Loihi's decay of an integer state: ``sign(v) (|v| (4096 - dv) >> 12)`` (int64)."""
    return torch.sign(v) * torch.bitwise_right_shift(v.abs() * (DECAY_UNITY - dv), DECAY_SHIFT)


def integer_lif_step(u: Tensor, v: Tensor, ref: Tensor, dv: int, vth: int, ref_steps: int
                     ) -> tuple[Tensor, Tensor, Tensor]:
    """One step of the integer LIF (all int64): ``u`` the input, ``v`` the voltage (LSB),
    ``ref`` the refractory steps left. Returns (spiked bool, v, ref)."""
    refractory = ref > 0
    v = torch.clamp(decay(v, dv) + u, 0, V_MAX)
    spiked = (v > vth) & ~refractory
    v = torch.where(refractory | spiked, 0, v)
    ref = torch.where(spiked, ref_steps, torch.clamp(ref - 1, min=0))
    return spiked, v, ref


def _fires(u: int, dv: int, vth: int) -> bool:
    """Whether the constant input ``u`` ever drives ``v`` from 0 above ``VTH`` (Python ints:
    ``v`` rises monotonically, so it fires or reaches a fixed point)."""
    v = 0
    while True:
        new = min((v * (DECAY_UNITY - dv)) >> DECAY_SHIFT, V_MAX - u) + u
        if new > vth:
            return True
        if new == v:
            return False
        v = new


def charge_steps(u: Tensor, dv: int, vth: int) -> Tensor:
    """Steps ``k(u)`` from ``v = 0`` to the first spike under the constant integer input ``u``
    (0 where the neuron never fires: its voltage settles at or below ``VTH``). Firing is
    monotone in ``u``: the smallest firing input is found by bisection, then the integer
    dynamics run for all firing inputs at once until each has fired."""
    lo, hi = 0, vth + 1  # _fires(hi): one step exceeds VTH
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if _fires(mid, dv, vth) else (mid, hi)
    v = torch.zeros_like(u)
    k = torch.zeros_like(u)
    live = u >= hi
    step = 0
    while bool(live.any()):
        step += 1
        v = torch.clamp(decay(v, dv) + u, 0, V_MAX)
        fired = live & (v > vth)
        k = torch.where(fired, step, k)
        live = live & ~fired
    return k


@functools.lru_cache(maxsize=32)
def staircase(dt: float, tau_rc: float, tau_ref: float, vth_mant: int
              ) -> tuple[float, Tensor, Tensor, Tensor]:
    """The measured rate curve: (input scale, rate per integer input u = 0 .. VTH + 1 (Hz,
    float64), knots J and rates (float64) of the smoothed piecewise-linear curve)."""
    dv, vth = decay_mantissa(tau_rc, dt), vth_mant << VTH_SHIFT
    ref_steps = int(round(tau_ref / dt))
    scale = input_scale(vth, dv)
    u = torch.arange(vth + 2, dtype=torch.int64)
    k = charge_steps(u, dv, vth)
    rate = torch.where(k > 0, 1.0 / ((ref_steps + k).to(torch.float64) * dt), 0.0)
    # treads: runs of equal k > 0, in J units [(u_lo - 1/2) / scale, (u_hi + 1/2) / scale)
    firing = torch.nonzero(k > 0).flatten()
    u0 = int(firing[0])
    ks = k[u0:]
    change = torch.nonzero(ks[1:] != ks[:-1]).flatten() + 1
    starts = torch.cat([torch.zeros(1, dtype=torch.int64), change]) + u0
    ends = torch.cat([change, torch.tensor([ks.numel()])]) + u0 - 1
    mids = (starts + ends).to(torch.float64) / (2 * scale)
    knots_j = torch.cat([torch.tensor([(u0 - 0.5) / scale], dtype=torch.float64), mids[:-1],
                         torch.tensor([(float(starts[-1]) - 0.5) / scale])])
    knots_r = torch.cat([torch.zeros(1, dtype=torch.float64), rate[starts]])
    return scale, rate, knots_j, knots_r


def _piecewise(j: Tensor, knots_j: Tensor, knots_r: Tensor) -> tuple[Tensor, Tensor]:
    """The piecewise-linear curve and its slope at ``j`` (0 below the first knot, the last
    rate above the last)."""
    kj, kr = knots_j.to(j.device, j.dtype), knots_r.to(j.device, j.dtype)
    i = (torch.searchsorted(kj, j.contiguous(), right=True) - 1).clamp(0, kj.numel() - 2)
    j0, j1, r0, r1 = kj[i], kj[i + 1], kr[i], kr[i + 1]
    slope = (r1 - r0) / (j1 - j0)
    inside = (j >= kj[0]) & (j < kj[-1])
    r = torch.where(j < kj[0], 0.0, torch.where(inside, r0 + slope * (j - j0), kr[-1]))
    return r, torch.where(inside, slope, 0.0)


def _hard_value(curve, z: Tensor) -> tuple[Tensor, Tensor]:
    """The exact staircase at J = z + 1; aux: the smoothed curve's slope (straight-through)."""
    scale, rate, knots_j, knots_r = curve
    j = z.to(torch.float64) + 1.0
    u = quantize_current(j, scale).clamp(0, rate.numel() - 1)
    r = rate.to(z.device)[u]
    _, slope = _piecewise(j, knots_j, knots_r)
    return r.to(z.dtype), slope.to(z.dtype)


@functools.lru_cache(maxsize=64)
def _kernels(dt: float, tau_rc: float, tau_ref: float, vth_mant: int, soft: bool
             ) -> tuple[Callable, Callable]:
    """Kernel functions bound to one parameter set's measured curve (the same objects on every
    call, so compiled training kernels are not recompiled)."""
    curve = staircase(dt, tau_rc, tau_ref, vth_mant)
    if not soft:
        return functools.partial(_hard_value, curve), aux_derivative
    # the piecewise-linear curve in the excess current z = J - 1, its onset smoothed as the
    # soft LIF's threshold
    _, _, knots_j, knots_r = curve
    knots_z = (knots_j - 1.0).float()
    smooth = functools.partial(_piecewise, knots_j=knots_z, knots_r=knots_r.float())
    return functools.partial(soft_onset_value, smooth, z0=float(knots_z[0])), aux_derivative


@register_neuron
@dataclass(frozen=True)
class QuantizedLIF(NeuronBase):
    """LIF neuron in Loihi-style fixed point (see the module docstring for the arithmetic).

    It runs at its own chip step ``dt`` (s): simulate with that ``dt``. Its state is the
    voltage in threshold units (``v_int / VTH`` in float32: within a relative 2^-24 of it, so
    rounding ``v * VTH`` recovers ``v_int`` exactly over the 24-bit range) and
    the refractory steps left. ``weight_bits`` (8) is the width of the weights of every layer
    of a net built with this neuron (:func:`quantize_layers`).
    """

    tau_rc: float = 0.022  # membrane time constant (s), rounded to the 12-bit decay dv
    tau_ref: float = 0.002  # refractory period (s), a whole number of steps dt
    dt: float = 0.001  # the chip's time step (s)
    vth_mant: int = 1024  # threshold mantissa, 17-bit unsigned: VTH = vth_mant * 64 LSB
    weight_bits: int = 8  # signed weight width of the layers (per-layer scale)
    amplitude: float = 0.063  # ANN output per Hz of rate
    gain: float = 1.0
    bias: float = 1.0
    smoothing: float = 0.02
    noise_std: float = 10.0
    noise_model: NoiseModel = "gaussian"
    noise_tau: float = 0.005
    state_vars: ClassVar[tuple[StateVar, ...]] = (StateVar("v", "voltage"), StateVar("ref_steps"))

    def __post_init__(self) -> None:
        _check_positive(self, "tau_rc", "dt", "amplitude", "gain")
        _check_non_negative(self, "tau_ref", "smoothing", "noise_std")
        _check_noise_model(self)
        if not (isinstance(self.vth_mant, int) and 1 <= self.vth_mant < 1 << 17):
            raise ValueError(f"QuantizedLIF.vth_mant must be an integer in [1, 131071] (17 "
                             f"bits), got {self.vth_mant!r}")
        if not (isinstance(self.weight_bits, int) and 2 <= self.weight_bits <= 16):
            raise ValueError(f"QuantizedLIF.weight_bits must be an integer in [2, 16], got "
                             f"{self.weight_bits!r}")
        steps = self.tau_ref / self.dt
        if abs(steps - round(steps)) > 1e-6:
            raise ValueError(f"QuantizedLIF.tau_ref ({self.tau_ref} s) must be a whole number "
                             f"of steps dt ({self.dt} s)")
        if not 1 <= self.dv <= DECAY_UNITY - 1:
            raise ValueError(f"QuantizedLIF: tau_rc {self.tau_rc} s at dt {self.dt} s gives the "
                             f"decay {self.dv}/4096, outside the 12-bit range [1, 4095]; pick "
                             "tau_rc between about 0.25 dt and 5000 dt")

    @property
    def dv(self) -> int:
        """The 12-bit voltage decay (of 4096) per step."""
        return decay_mantissa(self.tau_rc, self.dt)

    @property
    def vth(self) -> int:
        """The threshold in voltage LSBs, ``vth_mant << 6``."""
        return self.vth_mant << VTH_SHIFT

    @property
    def ref_steps(self) -> int:
        return int(round(self.tau_ref / self.dt))

    def max_rate(self) -> float:
        """One spike per ``R + 1`` steps (Hz)."""
        return 1.0 / ((self.ref_steps + 1) * self.dt)

    def rate_kernels(self, soft: bool) -> tuple[Callable, Callable, tuple[float, ...]]:
        """(value, derivative, params) in z = J - 1, from the measured staircase."""
        soft = soft and self.smoothing > 0
        value, derivative = _kernels(self.dt, self.tau_rc, self.tau_ref, self.vth_mant, soft)
        return value, derivative, ((self.smoothing,) if soft else ())

    def spike_step(self, j: Tensor, state: tuple[Tensor, ...], dt: float
                   ) -> tuple[Tensor, tuple[Tensor, ...]]:
        """state = (v in threshold units, refractory steps left); integer arithmetic inside."""
        if abs(dt - self.dt) > 1e-9 * self.dt:
            raise ValueError(f"QuantizedLIF runs at its chip step dt = {self.dt} s; simulate "
                             f"with dt = {self.dt} (got {dt})")
        vth = self.vth
        u = quantize_current(j, input_scale(vth, self.dv))
        v = torch.round(state[0].to(torch.float64) * vth).to(torch.int64)
        s, v, ref = integer_lif_step(u, v, state[1].to(torch.int64), self.dv, vth,
                                     self.ref_steps)
        dtype = state[0].dtype
        return s.to(dtype), ((v.to(torch.float64) / vth).to(dtype), ref.to(dtype))


# --- 8-bit weights ---------------------------------------------------------------------------

def quantize_weight(w: Tensor, bits: int) -> Tensor:
    """``w`` rounded to a signed ``bits``-bit mantissa times one scale ``max|w| / (2^(bits-1)
    - 1)`` (symmetric, round to nearest); unchanged if all zero."""
    levels = (1 << (bits - 1)) - 1
    scale = w.detach().abs().max() / levels
    if not bool(scale > 0):
        return w
    return torch.clamp(torch.round(w / scale), -levels, levels) * scale


def fake_quantize(w: Tensor, bits: int) -> Tensor:
    """The quantised weight in the forward pass, the identity's gradient in the backward pass
    (straight-through), so float master weights learn from the quantised net's loss."""
    return w + (quantize_weight(w.detach(), bits) - w).detach()


class _QuantizedWeight:
    """Mixin: the layer's forward pass uses its weight quantised to ``weight_bits``."""

    weight_bits: int

    def effective_weight(self) -> Tensor:
        return fake_quantize(self.weight, self.weight_bits)  # type: ignore[attr-defined]


class QuantConv2d(_QuantizedWeight, nn.Conv2d):
    def forward(self, x: Tensor) -> Tensor:
        return self._conv_forward(x, self.effective_weight(), self.bias)


class QuantLinear(_QuantizedWeight, nn.Linear):
    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.effective_weight(), self.bias)


class QuantLocallyConnected2d(_QuantizedWeight, LocallyConnected2d):
    pass  # LocallyConnected2d.forward calls effective_weight()


_QUANT_CLASS: dict[type, type] = {nn.Conv2d: QuantConv2d, nn.Linear: QuantLinear,
                                  LocallyConnected2d: QuantLocallyConnected2d}


def quantize_layers(model: nn.Module, bits: int) -> nn.Module:
    """Make every Conv2d / Linear / LocallyConnected2d of ``model`` use ``bits``-bit weights in
    its forward pass (in place: the modules change class, parameters and state-dict keys stay);
    returns ``model``."""
    for m in model.modules():
        cls = _QUANT_CLASS.get(type(m))
        if cls is not None:
            m.__class__ = cls
            m.weight_bits = bits  # type: ignore[assignment]
    return model


def bake_quantized(model: nn.Module) -> nn.Module:
    """``model`` itself if it has no quantised layers; else a copy whose quantised layers are
    plain ones holding the quantised weights (what conversion and NIR export read)."""
    if not any(isinstance(m, _QuantizedWeight) for m in model.modules()):
        return model
    model = copy.deepcopy(model)
    plain = {v: k for k, v in _QUANT_CLASS.items()}
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, _QuantizedWeight):
                weight: Tensor = m.weight  # type: ignore[attr-defined,assignment]
                weight.copy_(quantize_weight(weight, m.weight_bits))
                m.__class__ = plain[type(m)]
                del m.weight_bits
    return model
