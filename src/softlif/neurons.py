"""Neuron types: one immutable description serves the rate (ANN) and the spiking (SNN) neuron.

A neuron type bundles, with parameters in SI units (seconds, Hz):

* ``current(x)``: input current ``J = gain * x + bias`` (dimensionless; threshold current 1);
* ``rate(j)``: the steady-state firing rate in Hz of the spiking neuron (hard threshold);
* ``soft_rate(j)``: the same curve with its threshold smoothed, so the derivative is bounded
  (Hunsberger & Eliasmith 2015, arXiv 1510.08829, Eq. 3; 2016, arXiv 1611.05141);
* ``step(j, v, ref, dt)``: the spiking dynamics for one time step (a pure function);
* ``noise_std``: the training-noise model, Gaussian in Hz on active units (SPEC section 2).

The ANN output of a unit is ``amplitude * rate``. In the spiking net, spikes have height
``1 / dt`` (so that a filtered spike train averages to the rate in Hz) and are multiplied by
``amplitude`` on their way to the next layer.

Threshold current is 1 and, with ``bias = 1``, a unit fires when ``x > 0``.

>>> lif = LIF(tau_rc=0.02, tau_ref=0.002)
>>> round(float(lif.rate(torch.tensor(2.0))), 3)  # 1 / (0.002 + 0.02 * log(2)) Hz
63.214
>>> float(lif.rate(torch.tensor(0.5)))  # below threshold: silent
0.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

Tensor = torch.Tensor

# Below this u = z / g, log(softplus(u)) == u to float64 precision (error ~ exp(u) / 2 < 5e-14)
# and we use the identity directly: softplus(u) itself underflows to 0 near u = -104 (float32)
# or u = -745 (float64), after which log(softplus(u)) would be -inf.
_LOG_SOFTPLUS_LINEAR_BELOW = -30.0


def _log_softplus(u: Tensor) -> Tensor:
    """log(log(1 + exp(u))), finite for every finite u (no underflow to log(0))."""
    safe = torch.clamp(u, min=_LOG_SOFTPLUS_LINEAR_BELOW)
    return torch.where(u > _LOG_SOFTPLUS_LINEAR_BELOW, torch.log(F.softplus(safe)), u)


def _soft_lif_forward(
    z: Tensor, smoothing: float, tau_rc: float, tau_ref: float
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Soft LIF rate (Hz) for excess current ``z = J - 1``, plus what the derivative needs.

    rho_g(z) = g * log(1 + exp(z / g)) replaces max(z, 0). We work with lp = log(rho_g(z))
    so that nothing under- or overflows: log(1 + 1 / rho) = softplus(-lp) exactly, and it is
    finite for any finite lp (for tiny rho it is ~ -lp, the 1/|z| tail of SPEC section 2).
    """
    u = z / smoothing
    lsp = _log_softplus(u)
    lp = lsp + math.log(smoothing)  # log rho_g(z)
    r = 1.0 / (tau_ref + tau_rc * F.softplus(-lp))
    return r, u, lsp, lp


def _soft_lif_derivative(z: Tensor, smoothing: float, tau_rc: float, tau_ref: float) -> Tensor:
    """d rate / d z in Hz per unit current, bounded for all z.

    dr/dz = r^2 tau_rc * sigmoid(-lp) * (sigmoid(u) / softplus(u)) / g, where the ratio
    sigmoid(u) / softplus(u) = exp(logsigmoid(u) - log(softplus(u))) lies in (0, 1] and is
    evaluated in log space so that it stays finite when both factors underflow.
    """
    r, u, lsp, lp = _soft_lif_forward(z, smoothing, tau_rc, tau_ref)
    ratio = torch.exp(F.logsigmoid(u) - lsp)
    return r * r * tau_rc * torch.sigmoid(-lp) * ratio / smoothing


def _soft_lif_value(z: Tensor, smoothing: float, tau_rc: float, tau_ref: float) -> Tensor:
    return _soft_lif_forward(z, smoothing, tau_rc, tau_ref)[0]


# Kernels used by the autograd function. `use_fused_kernels(True)` swaps in torch.compile'd
# versions, which fuse the ~15 elementwise operations into one pass over memory each way.
_KERNELS = {"value": _soft_lif_value, "derivative": _soft_lif_derivative}


def use_fused_kernels(enabled: bool = True) -> None:
    """Compile the soft-LIF forward and backward into fused kernels (torch.compile).

    Costs a one-off compilation (tens of seconds on CPU) and roughly doubles the speed of the
    activation; numerically it computes the same formulas (to float rounding).
    """
    if enabled:
        _KERNELS["value"] = torch.compile(_soft_lif_value, dynamic=True)
        _KERNELS["derivative"] = torch.compile(_soft_lif_derivative, dynamic=True)
    else:
        _KERNELS["value"] = _soft_lif_value
        _KERNELS["derivative"] = _soft_lif_derivative


class _SoftLIFRate(torch.autograd.Function):
    """Soft LIF rate with an analytic backward (recomputed from z: saves one tensor)."""

    @staticmethod
    def forward(ctx, z: Tensor, smoothing: float, tau_rc: float, tau_ref: float) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(z)
        ctx.params = (smoothing, tau_rc, tau_ref)
        return _KERNELS["value"](z, smoothing, tau_rc, tau_ref)

    @staticmethod
    def backward(ctx, grad_out: Tensor):  # type: ignore[override]
        (z,) = ctx.saved_tensors
        return grad_out * _KERNELS["derivative"](z, *ctx.params), None, None, None


def soft_lif_rate(j: Tensor, tau_rc: float, tau_ref: float, smoothing: float) -> Tensor:
    """Soft LIF rate in Hz for input current ``j`` (threshold 1).

    r(j) = 1 / (tau_ref + tau_rc * log(1 + 1 / rho_g(j - 1))), rho_g(z) = g log(1 + exp(z / g)).
    Value and gradient are finite for every finite float input; as ``smoothing -> 0`` it tends
    to :func:`lif_rate`. ``tau_rc``, ``tau_ref`` in seconds; ``smoothing`` (g) dimensionless.
    """
    return _SoftLIFRate.apply(j - 1.0, smoothing, tau_rc, tau_ref)


def lif_rate(j: Tensor, tau_rc: float, tau_ref: float) -> Tensor:
    """Steady-state LIF rate in Hz: 1 / (tau_ref + tau_rc log(1 + 1 / (j - 1))) for j > 1, else 0.

    Differentiable (the derivative is unbounded just above threshold, as for the real neuron).
    """
    z = j - 1.0
    above = z > 0
    z_safe = torch.where(above, z, torch.ones_like(z))  # keeps the unused branch finite
    r = 1.0 / (tau_ref + tau_rc * torch.log1p(1.0 / z_safe))
    return torch.where(above, r, torch.zeros_like(r))


def _check_positive(obj: object, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise ValueError(f"{type(obj).__name__}.{name} must be a finite number > 0, got {value!r}")


def _check_non_negative(obj: object, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
            raise ValueError(f"{type(obj).__name__}.{name} must be a finite number >= 0, got {value!r}")


@dataclass(frozen=True)
class LIF:
    """Leaky integrate-and-fire neuron (and its rate / soft-rate curves).

    tau_rc dv/dt = -v + J; spike when v crosses 1; v held at 0 for tau_ref after a spike.

    Defaults are the authors' MNIST/SVHN values (SPEC section 2); see :data:`LIF_CIFAR`.
    """

    tau_rc: float = 0.022  # membrane RC time constant (s)
    tau_ref: float = 0.002  # absolute refractory period (s)
    amplitude: float = 0.063  # ANN output per Hz of rate (output = amplitude * rate)
    gain: float = 1.0  # input gain: J = gain * x + bias (dimensionless)
    bias: float = 1.0  # input bias; 1 = the threshold, so a unit fires when x > 0
    smoothing: float = 0.02  # g of the soft rate function (dimensionless; 0 = hard LIF)
    noise_std: float = 10.0  # training noise on active units (Hz)

    def __post_init__(self) -> None:
        _check_positive(self, "tau_rc", "amplitude", "gain")
        _check_non_negative(self, "tau_ref", "smoothing", "noise_std")

    def current(self, x: Tensor) -> Tensor:
        """Input current J = gain * x + bias (dimensionless, threshold 1)."""
        return self.gain * x + self.bias

    def rate(self, j: Tensor) -> Tensor:
        """Hard steady-state firing rate (Hz) for current ``j``."""
        return lif_rate(j, self.tau_rc, self.tau_ref)

    def soft_rate(self, j: Tensor) -> Tensor:
        """Smoothed rate (Hz); equals :meth:`rate` when ``smoothing == 0``."""
        if self.smoothing == 0:
            return self.rate(j)
        return soft_lif_rate(j, self.tau_rc, self.tau_ref, self.smoothing)

    def max_rate(self) -> float:
        """Upper bound of the rate (Hz): 1 / tau_ref (inf if tau_ref == 0)."""
        return math.inf if self.tau_ref == 0 else 1.0 / self.tau_ref

    def step(
        self, j: Tensor, v: Tensor, ref: Tensor, dt: float
    ) -> tuple[Tensor, Tensor, Tensor]:
        """One step of the reference LIF integrator; returns (spiked 0/1, v, ref).

        ``v`` is the membrane voltage (threshold 1), ``ref`` the refractory time (s) still to
        serve at the start of this step; ``j`` is held constant over the step of ``dt`` s.
        The caller scales spikes by 1 / dt (height 1/dt, so filtered trains average to Hz).
        """
        return lif_step(j, v, ref, dt, self.tau_rc, self.tau_ref)


def lif_step(
    j: Tensor, v: Tensor, ref: Tensor, dt: float, tau_rc: float, tau_ref: float
) -> tuple[Tensor, Tensor, Tensor]:
    """LIF step matching the integrator of the paper's evaluation (SPEC section 2).

    Returns ``(spiked, v, ref)``: ``spiked`` is 1.0 where the neuron fired in this step, else 0.
    """
    # charge: integrate exactly with J constant over the non-refractory part of the step
    dt_eff = torch.clamp(dt - ref, 0.0, dt)
    v = v - (j - v) * torch.expm1(-dt_eff / tau_rc)
    ref = ref - dt
    # fire
    spiked = v > 1.0
    # time since the crossing: solve J + (1 - J) exp(-s / tau_rc) = v for s (0 <= s < dt_eff);
    # the log argument is in (0, 1] whenever spiked (then J > v > 1), and guarded elsewhere.
    frac = torch.where(spiked, (v - 1.0) / (j - 1.0), torch.zeros_like(v))
    since = -tau_rc * torch.log1p(-frac)
    # reset: refractory time counted from the crossing; clip v below at 0
    ref = torch.where(spiked, tau_ref - since, ref)
    v = torch.where(spiked, torch.zeros_like(v), torch.clamp(v, min=0.0))
    return spiked.to(v.dtype), v, ref


@dataclass(frozen=True)
class IF:
    """Integrate-and-fire neuron without leak: the spiking counterpart of ReLU.

    tau dv/dt = J - 1 (threshold current 1, so it fires when x > 0 with bias 1); spike when v
    crosses 1, then v = 0 for a refractory period tau_ref (default 0), counted from the exact
    crossing time. Its rate is rho(J - 1) / (tau + tau_ref * rho(J - 1)): a rectified line when
    tau_ref = 0. At most one spike per step, so rates are capped at 1 / dt.
    """

    tau: float = 0.01  # time (s) to charge from 0 to threshold at unit excess current
    tau_ref: float = 0.0  # absolute refractory period (s)
    amplitude: float = 0.01  # ANN output per Hz (0.01 * rate = x for gain 1, tau 0.01 s)
    gain: float = 1.0  # J = gain * x + bias
    bias: float = 1.0  # 1 = threshold
    smoothing: float = 0.02  # g of the softplus smoothing of max(z, 0)
    noise_std: float = 10.0  # training noise on active units (Hz)

    def __post_init__(self) -> None:
        _check_positive(self, "tau", "amplitude", "gain")
        _check_non_negative(self, "tau_ref", "smoothing", "noise_std")

    def current(self, x: Tensor) -> Tensor:
        """Input current J = gain * x + bias."""
        return self.gain * x + self.bias

    def _rate_of_rho(self, rho: Tensor) -> Tensor:
        return rho / (self.tau + self.tau_ref * rho)

    def rate(self, j: Tensor) -> Tensor:
        """Hard rate in Hz."""
        return self._rate_of_rho(torch.relu(j - 1.0))

    def soft_rate(self, j: Tensor) -> Tensor:
        """Rate in Hz with max(z, 0) replaced by g log(1 + exp(z / g)) (a scaled softplus)."""
        if self.smoothing == 0:
            return self.rate(j)
        g = self.smoothing
        return self._rate_of_rho(g * F.softplus((j - 1.0) / g))

    def max_rate(self) -> float:
        return math.inf if self.tau_ref == 0 else 1.0 / self.tau_ref

    def step(
        self, j: Tensor, v: Tensor, ref: Tensor, dt: float
    ) -> tuple[Tensor, Tensor, Tensor]:
        """One exact step; returns (spiked 0/1, v, ref). See :meth:`LIF.step`."""
        return if_step(j, v, ref, dt, self.tau, self.tau_ref)


def if_step(
    j: Tensor, v: Tensor, ref: Tensor, dt: float, tau: float, tau_ref: float
) -> tuple[Tensor, Tensor, Tensor]:
    """Non-leaky integrate-and-fire step with sub-step spike timing (see :class:`IF`)."""
    # charge
    drive = (j - 1.0) / tau  # dv/dt (1/s)
    dt_eff = torch.clamp(dt - ref, 0.0, dt)
    v = v + drive * dt_eff
    ref = ref - dt
    # fire: at most one spike per step; time since the crossing from the linear ramp
    spiked = v > 1.0
    since = torch.where(spiked, (v - 1.0) / torch.where(spiked, drive, torch.ones_like(v)), 0.0)
    # reset: refractory from the crossing, then integrate whatever is left of the step, so no
    # charge is lost and the spike count follows the rate curve exactly (rates below 1 / dt)
    ref = torch.where(spiked, tau_ref - since, ref)
    v_after = drive * torch.clamp(since - tau_ref, min=0.0)
    v = torch.where(spiked, v_after, torch.clamp(v, min=0.0))
    return spiked.to(v.dtype), v, ref


NeuronType = LIF | IF

# The authors' parameter sets (SPEC section 2).
LIF_MNIST = LIF(tau_rc=0.022, tau_ref=0.002, amplitude=0.063, gain=1.0)
LIF_CIFAR = LIF(tau_rc=0.05, tau_ref=0.001, amplitude=0.063, gain=0.825)


def initial_voltage(
    shape: tuple[int, ...],
    mode: Literal["zero", "uniform"],
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> Tensor:
    """Initial membrane voltages: all 0 (the paper's era) or uniform in [0, 1)."""
    if mode == "zero":
        return torch.zeros(shape, dtype=dtype, device=device)
    if mode == "uniform":
        return torch.rand(shape, generator=generator, dtype=dtype, device="cpu").to(device)
    raise ValueError(f"initial voltage mode must be 'zero' or 'uniform', got {mode!r}")
