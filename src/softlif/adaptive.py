"""Adaptive LIF: a LIF neuron with spike-frequency adaptation (a neuron type of the protocol).

Dynamics (threshold 1, reset to 0, refractory period ``tau_ref``, v held at or above 0)::

    tau_rc dv/dt = J - n - v          tau_n dn/dt = -n          n += inc at each spike

``n`` is an adaptation current (dimensionless, like ``J``) that each spike raises by ``inc``
and that decays with ``tau_n`` seconds, so a neuron driven by a constant current fires fast at
first and settles to a lower rate.

**Steady-state rate.** Firing periodically with period ``T``, ``n`` just after a spike is
``n_p = inc / (1 - exp(-T / tau_n))`` and ``n_s = n_p exp(-tau_ref / tau_n)`` when charging
starts; from ``v = 0`` the voltage is then ::

    v(t) = J (1 - exp(-t/tau_rc)) - n_s tau_n / (tau_n - tau_rc) (exp(-t/tau_n) - exp(-t/tau_rc))

(held at 0 while ``n > J``), rising monotonically to ``J``. The period solves
``T = tau_ref + t_c(T)`` with ``t_c`` the first time ``v = 1``: no elementary closed form, so
:func:`adaptive_lif_rate_exact` finds it by nested bisection in float64 (the outer function is
monotone, its root unique). Training uses that curve tabulated once per parameter set on a
grid of the excess current ``z = J - 1`` (geometric, 1e-6 to 100, interpolated in ``log z``)
with its derivative, smoothed exactly as the soft LIF is: the soft rate is the curve at
``1 + g softplus(z / g)``.

**Spiking step.** :func:`adaptive_lif_step` holds ``n`` at its mid-step value over the step
and integrates ``v`` exactly with the LIF integrator (``J - n`` constant), then decays ``n`` and
adds ``inc`` for a spike at the end of the step: errors O((dt / tau_n)^2) in the drive and
O(inc dt / tau_n) in the increment's timing (tests bound the rate error against the exact
curve).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import torch

from .neurons import (
    NeuronBase,
    NoiseModel,
    StateVar,
    _check_noise_model,
    _check_non_negative,
    _check_positive,
    aux_derivative,
    lif_step,
    register_neuron,
    soft_onset_value,
)

Tensor = torch.Tensor

_Z_MIN, _Z_MAX, _GRID = 1e-6, 100.0, 2049  # table of the rate in the excess current z


def _kappa(t: Tensor, tau_rc: float, tau_n: float) -> Tensor:
    """Response of v to a unit adaptation current decaying with tau_n, from v = 0:
    tau_n / (tau_n - tau_rc) (exp(-t/tau_n) - exp(-t/tau_rc)) (its limit t/tau e^-t/tau)."""
    if abs(tau_n - tau_rc) < 1e-12 * tau_rc:
        return t / tau_rc * torch.exp(-t / tau_rc)
    return tau_n / (tau_n - tau_rc) * (torch.exp(-t / tau_n) - torch.exp(-t / tau_rc))


def _charge_time(j: Tensor, n_s: Tensor, tau_rc: float, tau_n: float, iters: int = 80) -> Tensor:
    """First time (s) at which v reaches 1 from v = 0 with adaptation ``n_s`` at t = 0 (j > 1,
    float64). While n > J the voltage is held at 0: charging starts when n has decayed to J."""
    wait = torch.where(n_s > j, tau_n * torch.log(n_s / j), torch.zeros_like(j))
    n0 = torch.minimum(n_s, j)

    def v(t: Tensor) -> Tensor:
        return j * -torch.expm1(-t / tau_rc) - n0 * _kappa(t, tau_rc, tau_n)

    lo = torch.zeros_like(j)
    hi = tau_rc * torch.log1p(1.0 / (j - 1.0))  # without adaptation: a lower bound
    for _ in range(200):  # double until v(hi) >= 1 (v rises to J > 1)
        short = v(hi) < 1.0
        if not bool(short.any()):
            break
        lo = torch.where(short, hi, lo)
        hi = torch.where(short, 2.0 * hi, hi)
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        below = v(mid) < 1.0
        lo, hi = torch.where(below, mid, lo), torch.where(below, hi, mid)
    return wait + 0.5 * (lo + hi)


def adaptive_lif_rate_exact(j: Tensor, tau_rc: float, tau_ref: float, tau_n: float,
                            inc: float, iters: int = 80) -> Tensor:
    """Steady-state rate (Hz) of the adaptive LIF for constant currents ``j`` (float64 inside):
    the period T solving T = tau_ref + t_c(T) by bisection (see the module docstring)."""
    jd = j.detach().to(torch.float64)
    fires = jd > 1.0
    jj = torch.where(fires, jd, torch.full_like(jd, 2.0))
    if inc == 0:
        period = tau_ref + tau_rc * torch.log1p(1.0 / (jj - 1.0))
        return torch.where(fires, 1.0 / period, 0.0).to(j.dtype)

    def excess(period: Tensor) -> Tensor:  # tau_ref + t_c(T) - T, decreasing in T
        n_s = inc / -torch.expm1(-period / tau_n) * math.exp(-tau_ref / tau_n)
        return tau_ref + _charge_time(jj, n_s, tau_rc, tau_n) - period

    lo = tau_ref + tau_rc * torch.log1p(1.0 / (jj - 1.0))  # excess(lo) >= 0
    hi = lo + excess(lo) + 1e-12  # excess(hi) < 0 (t_c only shrinks as T grows)
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        pos = excess(mid) > 0
        lo, hi = torch.where(pos, mid, lo), torch.where(pos, hi, mid)
    return torch.where(fires, 1.0 / (0.5 * (lo + hi)), 0.0).to(j.dtype)


@functools.lru_cache(maxsize=32)
def _table(tau_rc: float, tau_ref: float, tau_n: float, inc: float) -> tuple[Tensor, Tensor,
                                                                              Tensor]:
    """(log z grid, rate, d rate / d z) of the exact curve, float32, computed once per
    parameter set (about a second)."""
    log_z = torch.linspace(math.log(_Z_MIN), math.log(_Z_MAX), _GRID, dtype=torch.float64)
    z = torch.exp(log_z)
    rate = adaptive_lif_rate_exact(1.0 + z, tau_rc, tau_ref, tau_n, inc)
    # d rate / d z by central differences on the log grid (h relative)
    h = 1e-4
    up = adaptive_lif_rate_exact(1.0 + z * (1 + h), tau_rc, tau_ref, tau_n, inc)
    down = adaptive_lif_rate_exact(1.0 + z * (1 - h), tau_rc, tau_ref, tau_n, inc)
    slope = (up - down) / (2 * h * z)
    return log_z.float(), rate.float(), slope.float()


def _interp(log_z: Tensor, grid: Tensor, values: Tensor) -> Tensor:
    """Linear interpolation of ``values`` on the uniform ``grid`` at ``log_z`` (clamped)."""
    step = (grid[-1] - grid[0]) / (grid.numel() - 1)
    pos = ((log_z - grid[0]) / step).clamp(0.0, grid.numel() - 1.0)
    i0 = pos.floor().clamp(max=grid.numel() - 2).long()
    w = pos - i0
    v = values.to(log_z.device)
    return v[i0] * (1 - w) + v[i0 + 1] * w


def _table_value(table: tuple[Tensor, Tensor, Tensor], e: Tensor) -> tuple[Tensor, Tensor]:
    """Rate at excess current e >= 0 (0 at e <= 0) and d rate / d e, from the table."""
    grid, rate, slope = table
    log_e = torch.log(torch.clamp(e, min=_Z_MIN))
    on = e > 0
    r = torch.where(on, _interp(log_e, grid.to(e.device), rate), 0.0)
    d = torch.where(on & (e <= _Z_MAX), _interp(log_e, grid.to(e.device), slope), 0.0)
    return r, d


def _hard_value(table, z: Tensor) -> tuple[Tensor, Tensor]:
    r, d = _table_value(table, z.float())
    return r.to(z.dtype), d.to(z.dtype)


@functools.lru_cache(maxsize=64)
def _kernels(tau_rc: float, tau_ref: float, tau_n: float, inc: float, soft: bool
             ) -> tuple[Callable, Callable]:
    """Kernel functions bound to one parameter set's table; the same objects on every call, so
    compiled training kernels are not recompiled per batch."""
    table = _table(tau_rc, tau_ref, tau_n, inc)
    if soft:  # the curve at 1 + g softplus(z / g), as the soft LIF
        return functools.partial(soft_onset_value, functools.partial(_table_value, table)), \
            aux_derivative
    return functools.partial(_hard_value, table), aux_derivative


def adaptive_lif_step(j: Tensor, v: Tensor, ref: Tensor, n: Tensor, dt: float, tau_rc: float,
                      tau_ref: float, tau_n: float, inc: float
                      ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """One step of the adaptive LIF; returns (spiked 0/1, v, ref, n)."""
    n_mid = n * math.exp(-0.5 * dt / tau_n)
    s, v, ref = lif_step(j - n_mid, v, ref, dt, tau_rc, tau_ref)
    return s, v, ref, n * math.exp(-dt / tau_n) + inc * s


@register_neuron
@dataclass(frozen=True)
class AdaptiveLIF(NeuronBase):
    """LIF with spike-frequency adaptation (see the module docstring for the equations).

    With ``inc = 0`` it is the LIF. Rates are read from a table of the exact steady-state
    curve (computed on first use, about a second per parameter set).
    """

    tau_rc: float = 0.02  # membrane RC time constant (s)
    tau_ref: float = 0.002  # absolute refractory period (s)
    tau_n: float = 0.1  # adaptation time constant (s)
    inc: float = 0.05  # adaptation current added at each spike (dimensionless, like J)
    amplitude: float = 0.063  # ANN output per Hz of rate
    gain: float = 1.0
    bias: float = 1.0
    smoothing: float = 0.02
    noise_std: float = 10.0
    noise_model: NoiseModel = "gaussian"
    noise_tau: float = 0.005
    state_vars: ClassVar[tuple[StateVar, ...]] = (
        StateVar("v", "voltage"), StateVar("ref"), StateVar("n"))

    def __post_init__(self) -> None:
        _check_positive(self, "tau_rc", "tau_n", "amplitude", "gain")
        _check_non_negative(self, "tau_ref", "inc", "smoothing", "noise_std")
        _check_noise_model(self)

    def rate_kernels(self, soft: bool) -> tuple[Callable, Callable, tuple[float, ...]]:
        """(value, derivative, params) in z = J - 1, from the tabulated exact curve."""
        soft = soft and self.smoothing > 0
        value, derivative = _kernels(self.tau_rc, self.tau_ref, self.tau_n, self.inc, soft)
        return value, derivative, ((self.smoothing,) if soft else ())

    def spike_step(self, j: Tensor, state: tuple[Tensor, ...], dt: float
                   ) -> tuple[Tensor, tuple[Tensor, ...]]:
        """state = (v, ref, n); see :func:`adaptive_lif_step`."""
        s, v, ref, n = adaptive_lif_step(j, state[0], state[1], state[2], dt, self.tau_rc,
                                         self.tau_ref, self.tau_n, self.inc)
        return s, (v, ref, n)

    def exact_rate(self, j: Tensor) -> Tensor:
        """The steady-state rate (Hz) by root-finding, not from the table (slow; float64)."""
        return adaptive_lif_rate_exact(j, self.tau_rc, self.tau_ref, self.tau_n, self.inc)
