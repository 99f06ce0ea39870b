"""Neuron types: one immutable description serves the rate (ANN) and the spiking (SNN) neuron.

A neuron type bundles, with parameters in SI units (seconds, Hz):

* ``current(x)``: input current ``J = gain * x + bias`` (dimensionless; threshold current 1);
* ``rate(j)``: the steady-state firing rate in Hz of the spiking neuron (hard threshold);
* ``soft_rate(j)``: the same curve with its threshold smoothed, so the derivative is bounded
  (Hunsberger & Eliasmith 2015, arXiv 1510.08829, Eq. 3; 2016, arXiv 1611.05141);
* ``spike_step(j, state, dt)``: the spiking dynamics for one time step (a pure function of
  the explicit state, whose variables the type declares in ``state_vars``);
* the training-noise model on active units (SPEC sections 2, 3): ``noise_model="gaussian"``
  adds N(0, ``noise_std``^2) Hz (the paper's); ``"alpha"`` / ``"lowpass"`` replace the rate by
  the periodic spike train the neuron would fire, filtered by that synapse (``noise_tau`` s)
  and sampled at a uniformly random phase: skewed, and large relative to low rates, like Fig. 2.

The ANN output of a unit is ``amplitude * rate``. In the spiking net, spikes have height
``1 / dt`` (so that a filtered spike train averages to the rate in Hz) and are multiplied by
``amplitude`` on their way to the next layer.

Threshold current is 1 and, with ``bias = 1``, a unit fires when ``x > 0``.

Every neuron type follows one protocol, :class:`NeuronModel`, and the simulator, converter,
checkpoints and energy model call nothing else: a new type is a frozen dataclass (usually a
subclass of :class:`NeuronBase`) registered with :func:`register_neuron`; no softlif source
changes. LIF and IF are two such types.

>>> lif = LIF(tau_rc=0.02, tau_ref=0.002)
>>> round(float(lif.rate(torch.tensor(2.0))), 3)  # 1 / (0.002 + 0.02 * log(2)) Hz
63.04
>>> float(lif.rate(torch.tensor(0.5)))  # below threshold: silent
0.0
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

import torch

from .closed_form import LifSchedule, lif_schedule, schedule_state, schedule_step, supports_schedule

Tensor = torch.Tensor

# Rate curves as (value, derivative) kernel pairs in the excess current z = J - 1.
#
# ``value(z, *params) -> (rate, aux)`` and ``derivative(rate, aux, *params) -> d rate / d z``:
# the backward pass reuses the forward's rate and one auxiliary tensor, so it needs at most
# one transcendental. Each pair is written once with explicit derivatives, so value and
# gradient are finite for every finite float input (autograd through where/clamp would give
# 0 * inf = NaN at the threshold or in the far tail), and torch.compile fuses each into one
# kernel.

# For u = z / g above this, softplus(u) == u in float32 and exp(u) is not evaluated.
_SOFTPLUS_LINEAR_ABOVE = 20.0
# For u below this, log(1 + 1/rho_g) == -(log g + u) to float64 precision (relative error
# ~exp(u) < 1e-13); softplus(u) itself would underflow to 0 near u = -104 (float32), after
# which 1 / rho_g is inf. Below it the derivative's factor sigmoid(u) / rho_g is exactly 1 / g.
_SOFTPLUS_TAIL_BELOW = -30.0
_SOFTPLUS_AT_TAIL = math.log1p(math.exp(_SOFTPLUS_TAIL_BELOW))  # softplus is monotone

# Speed: x86 arithmetic on denormal floats is 10-20x slower, and SIMD log1p / expm1 of x form
# denormal intermediates for |x| < ~2e-13 (measured: 12x slower over a whole tensor). So
# exp(u) is never taken below u = -80 (exp(-80) ~ 1.8e-35 is a normal float32), and below
# u = -23 (exp(u) < 1e-10) softplus(u) = log1p(exp(u)) is taken as exp(u) itself (relative
# error < 5e-11) without calling log1p.
_EXP_FLOOR = -80.0
_LOG1P_LINEAR_BELOW = -23.0


def _softplus(u: Tensor) -> Tensor:
    """log(1 + exp(u)) for every finite u, without denormals (see above)."""
    e = torch.exp(torch.clamp(u, min=_EXP_FLOOR, max=_SOFTPLUS_LINEAR_ABOVE))
    small = u < _LOG1P_LINEAR_BELOW
    sp = torch.where(small, e, torch.log1p(torch.where(small, 0.0, e)))
    return torch.where(u > _SOFTPLUS_LINEAR_ABOVE, u, sp)


def _sigmoid_from_softplus(sp: Tensor) -> Tensor:
    """sigmoid(u) given s = softplus(u) >= 0: 1 - exp(-s).

    Below s = 0.01 a 4-term Taylor series (relative error < s^4 / 120 < 1e-10): torch.compile
    lowers expm1 to exp(x) - 1 on CPU, which cancels to 0 for s < 6e-8 in float32.
    """
    series = sp * (1.0 - sp * (0.5 - sp * (1.0 / 6.0 - sp * (1.0 / 24.0))))
    return torch.where(sp < 0.01, series, 1.0 - torch.exp(-sp))


def soft_lif_value(z: Tensor, g: float, tau_rc: float, tau_ref: float) -> tuple[Tensor, Tensor]:
    """Soft LIF rate (Hz), 1 / (tau_ref + tau_rc log(1 + 1 / rho_g(z))), and softplus(z / g)."""
    u = z / g
    sp = _softplus(u)
    rho = g * sp  # rho_g(z) = g log(1 + exp(z / g)), the smoothed max(z, 0)
    tail = u < _SOFTPLUS_TAIL_BELOW
    # log(1 + 1 / rho): for tiny rho it is -log(rho) ~ -(log g + u), the slowly decaying
    # 1 / |z| tail of the soft curve (SPEC section 2); computed without forming 1 / rho there.
    log_g = math.log(g) if isinstance(g, float) else torch.log(g)  # g may be a 0-d tensor
    t = torch.where(tail, -(log_g + u), torch.log1p(1.0 / torch.where(tail, 1.0, rho)))
    return 1.0 / (tau_ref + tau_rc * t), sp


def soft_lif_derivative(r: Tensor, sp: Tensor, g: float, tau_rc: float, tau_ref: float) -> Tensor:
    """d rate / d z (Hz per unit current) of the soft LIF; bounded by ~tau_rc / (g tau_ref^2).

    dr/dz = r^2 tau_rc sigmoid(z / g) / (rho (1 + rho)); in the tail sigmoid / rho -> 1 / g.
    """
    tail = sp < _SOFTPLUS_AT_TAIL
    rho = g * torch.where(tail, 1.0, sp)
    ratio = torch.where(tail, 1.0 / g, _sigmoid_from_softplus(sp) / (rho * (1.0 + rho)))
    return r * r * tau_rc * ratio


def lif_value(z: Tensor, tau_rc: float, tau_ref: float) -> tuple[Tensor, Tensor]:
    """Hard LIF rate (Hz): 1 / (tau_ref + tau_rc log(1 + 1 / z)) for z > 0, else 0; and z."""
    above = z > 0
    r = 1.0 / (tau_ref + tau_rc * torch.log1p(1.0 / torch.where(above, z, 1.0)))
    return torch.where(above, r, 0.0), z


def lif_derivative(r: Tensor, z: Tensor, tau_rc: float, tau_ref: float) -> Tensor:
    """d rate / d z of the hard LIF: r^2 tau_rc / (z (1 + z)) above threshold (unbounded as
    z -> 0+, as for the real neuron), 0 below."""
    above = z > 0
    zs = torch.where(above, z, 1.0)
    return torch.where(above, r * r * tau_rc / (zs * (1.0 + zs)), 0.0)


def if_value(z: Tensor, g: float, tau: float, tau_ref: float) -> tuple[Tensor, Tensor]:
    """Soft IF rate (Hz): rho / (tau + tau_ref rho) with rho = rho_g(z); and d rho / d z."""
    sp = _softplus(z / g)
    rho = g * sp
    return rho / (tau + tau_ref * rho), _sigmoid_from_softplus(sp)


def if_hard_value(z: Tensor, tau: float, tau_ref: float) -> tuple[Tensor, Tensor]:
    """IF rate (Hz): rho / (tau + tau_ref rho) with rho = max(z, 0); and d rho / d z."""
    rho = torch.relu(z)
    return rho / (tau + tau_ref * rho), (z > 0).to(z.dtype)


def if_derivative(r: Tensor, drho: Tensor, *params) -> Tensor:
    """d rate / d z of the IF curve (soft or hard; params end with tau, tau_ref):
    tau / (tau + tau_ref rho)^2 * d rho / d z, where tau / (tau + tau_ref rho) = 1 - tau_ref r."""
    tau, tau_ref = params[-2], params[-1]
    k = 1.0 - tau_ref * r
    return k * k / tau * drho


def aux_derivative(r: Tensor, aux: Tensor, *params) -> Tensor:
    """The derivative kernel of a value kernel that returns d rate / d z itself as its aux
    (tabulated or measured curves: :mod:`softlif.adaptive`, :mod:`softlif.quantized`)."""
    return aux


def soft_onset_value(curve: Callable[[Tensor], tuple[Tensor, Tensor]], z: Tensor, g: Any,
                     z0: float = 0.0) -> tuple[Tensor, Tensor]:
    """A tabulated or measured rate curve ``curve(z) -> (rate, d rate / d z)`` (float32, in the
    excess current z) with its onset ``z0`` smoothed as the soft LIF's threshold is: the curve
    at ``z0 + g softplus((z - z0) / g)``. Returns the rate and d rate / d z in ``z``'s dtype
    (the aux of :func:`aux_derivative`)."""
    gf = g.float() if isinstance(g, Tensor) else float(g)
    x = (z.float() - z0) / gf
    r, d = curve(z0 + gf * _softplus(x))
    return r.to(z.dtype), (d * torch.sigmoid(x)).to(z.dtype)


class _RateCurve(torch.autograd.Function):
    """Apply a (value, derivative) kernel pair to z with an explicit backward."""

    @staticmethod
    def forward(ctx, z: Tensor, value, derivative, params: tuple) -> Tensor:  # type: ignore[override]
        r, aux = value(z, *params)
        ctx.save_for_backward(r, aux)
        ctx.derivative, ctx.params = derivative, params
        return r

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        r, aux = ctx.saved_tensors
        return grad * ctx.derivative(r, aux, *ctx.params), None, None, None


def soft_lif_rate(j: Tensor, tau_rc: float, tau_ref: float, smoothing: float) -> Tensor:
    """Soft LIF rate in Hz for input current ``j`` (threshold 1).

    r(j) = 1 / (tau_ref + tau_rc * log(1 + 1 / rho_g(j - 1))), rho_g(z) = g log(1 + exp(z / g)).
    Value and gradient are finite for every finite float input; as ``smoothing -> 0`` it tends
    to :func:`lif_rate`. ``tau_rc``, ``tau_ref`` in seconds; ``smoothing`` (g) dimensionless.
    """
    return _RateCurve.apply(j - 1.0, soft_lif_value, soft_lif_derivative,
                            (smoothing, tau_rc, tau_ref))


def lif_rate(j: Tensor, tau_rc: float, tau_ref: float) -> Tensor:
    """Steady-state LIF rate in Hz: 1 / (tau_ref + tau_rc log(1 + 1 / (j - 1))) for j > 1, else 0.

    Differentiable (the derivative is unbounded just above threshold, as for the real neuron).
    """
    return _RateCurve.apply(j - 1.0, lif_value, lif_derivative, (tau_rc, tau_ref))


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


NoiseModel = Literal["gaussian", "alpha", "lowpass"]
NOISE_MODELS = ("gaussian", "alpha", "lowpass")


def _check_noise_model(obj: Any) -> None:
    model = obj.noise_model
    if model not in NOISE_MODELS:
        raise ValueError(f"{type(obj).__name__}.noise_model must be one of "
                         f"{', '.join(NOISE_MODELS)}, got {model!r}")
    if model != "gaussian":
        _check_positive(obj, "noise_tau")


@dataclass(frozen=True)
class StateVar:
    """One state variable of a neuron type's spiking dynamics, one value per neuron.

    name: e.g. ``"v"`` (a membrane voltage, threshold 1) or ``"ref"`` (refractory time, s).
    init: ``"voltage"`` starts at 0 or uniform in [0, 1) as the simulation's ``init`` says
        (at most one per type); ``"zero"`` always starts at 0.
    """

    name: str
    init: Literal["voltage", "zero"] = "zero"


RateKernels = tuple[Callable, Callable, tuple[float, ...]]


@runtime_checkable
class NeuronModel(Protocol):
    """What every neuron type provides (parameters in SI units: seconds, Hz).

    * parameters, as fields of a frozen dataclass: ``amplitude`` (ANN output per Hz),
      ``gain`` and ``bias`` (``J = gain * x + bias``, threshold current 1), ``tau_ref``
      (s, 0 if none), ``smoothing`` (g of the soft curve; 0 = hard), and the training noise
      ``noise_std`` (Hz), ``noise_model`` (``"gaussian"``, ``"alpha"``, ``"lowpass"``) and
      ``noise_tau`` (s);
    * ``rate_kernels(soft) -> (value, derivative, params)``: the steady-state rate curve (Hz)
      in the excess current ``z = J - 1`` as a kernel pair, ``value(z, *params) -> (rate,
      aux)`` and ``derivative(rate, aux, *params) -> d rate / d z``, hard or smoothed;
      training (fused, under autocast too), conversion and energy read every rate from it;
    * ``current``, ``rate``, ``soft_rate``, ``max_rate``, ``has_training_noise``: derived
      from the above by :class:`NeuronBase`;
    * ``state_vars``: the spiking state, declared as data (:class:`StateVar`);
    * ``spike_step(j, state, dt) -> (spikes, state)``: one step of ``dt`` s with the current
      ``j`` held constant; ``state`` is a tuple of tensors in ``state_vars`` order, shaped like
      ``j``; ``spikes`` is 0/1 (at most one spike per step);
    * checkpoints store ``neuron_to_dict`` (the type's registered name and its fields).
    """

    state_vars: ClassVar[tuple[StateVar, ...]]

    # parameters: read-only (fields of a frozen dataclass)
    @property
    def amplitude(self) -> float: ...

    @property
    def gain(self) -> float: ...

    @property
    def bias(self) -> float: ...

    @property
    def tau_ref(self) -> float: ...

    @property
    def smoothing(self) -> float: ...

    @property
    def noise_std(self) -> float: ...

    @property
    def noise_model(self) -> str: ...

    @property
    def noise_tau(self) -> float: ...

    def rate_kernels(self, soft: bool) -> RateKernels: ...

    def current(self, x: Tensor) -> Tensor: ...

    def rate(self, j: Tensor) -> Tensor: ...

    def soft_rate(self, j: Tensor) -> Tensor: ...

    def max_rate(self) -> float: ...

    @property
    def has_training_noise(self) -> bool: ...

    def spike_step(self, j: Tensor, state: tuple[Tensor, ...], dt: float
                   ) -> tuple[Tensor, tuple[Tensor, ...]]: ...


@runtime_checkable
class SchedulableNeuron(Protocol):
    """Optional part of the protocol: closed-form spikes under a constant current (used for
    populations driven by the analog input alone; see :mod:`softlif.closed_form`)."""

    def has_schedule(self, dt: float) -> bool: ...

    def schedule(self, j: Tensor, state: tuple[Tensor, ...], dt: float) -> Any: ...

    def schedule_step(self, sched: Any, t: Tensor | float) -> tuple[Tensor, Any]: ...

    def schedule_state(self, sched: Any, t: float) -> tuple[Tensor, ...]: ...


class NeuronBase:
    """The methods every neuron type derives from its ``rate_kernels`` and parameters."""

    tau_ref: float
    gain: float
    bias: float
    noise_std: float
    noise_model: str
    noise_tau: float
    # each neuron type defines rate_kernels(soft) -> (value, derivative, params)
    rate_kernels: Callable[[bool], RateKernels]

    def current(self, x: Tensor) -> Tensor:
        """Input current J = gain * x + bias (dimensionless, threshold 1)."""
        return self.gain * x + self.bias

    def rate(self, j: Tensor) -> Tensor:
        """Hard steady-state firing rate (Hz) for current ``j`` (that of the spiking neuron)."""
        return _RateCurve.apply(j - 1.0, *self.rate_kernels(False))

    def soft_rate(self, j: Tensor) -> Tensor:
        """Smoothed rate (Hz), finite value and gradient everywhere; the hard rate if g = 0."""
        return _RateCurve.apply(j - 1.0, *self.rate_kernels(True))

    @property
    def has_training_noise(self) -> bool:
        """Whether training adds noise (a Gaussian of ``noise_std`` > 0, or a phase model)."""
        return self.noise_model != "gaussian" or self.noise_std > 0

    def max_rate(self) -> float:
        """Upper bound of the rate (Hz): 1 / tau_ref (inf if tau_ref == 0)."""
        return math.inf if self.tau_ref == 0 else 1.0 / self.tau_ref


#: Registered neuron types by name (what checkpoints and NIR metadata store).
NEURON_TYPES: dict[str, type] = {}


def register_neuron(cls: type) -> type:
    """Class decorator: make a neuron type (a frozen dataclass following
    :class:`NeuronModel`) known to checkpoints, ``neuron_from_dict`` and the command line."""
    if not (dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen):  # type: ignore[attr-defined]
        raise TypeError(f"{cls.__name__} must be a frozen dataclass to be a neuron type")
    missing = [m for m in ("rate_kernels", "spike_step", "state_vars", "current", "rate",
                           "soft_rate", "max_rate", "has_training_noise") if not hasattr(cls, m)]
    names = [v.name for v in getattr(cls, "state_vars", ())]
    if missing or not names or len(set(names)) != len(names) \
            or sum(v.init == "voltage" for v in getattr(cls, "state_vars")) > 1:  # noqa: B009
        raise TypeError(f"{cls.__name__} does not follow the neuron protocol: "
                        f"{'missing ' + ', '.join(missing) if missing else 'state_vars must be '}"
                        f"{'' if missing else 'non-empty, uniquely named, at most one voltage'}")
    NEURON_TYPES[cls.__name__] = cls
    return cls


@register_neuron
@dataclass(frozen=True)
class LIF(NeuronBase):
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
    noise_std: float = 10.0  # training noise on active units (Hz), "gaussian" model
    noise_model: NoiseModel = "gaussian"  # or "alpha"/"lowpass": filtered spikes, random phase
    noise_tau: float = 0.005  # synapse time constant (s) of the "alpha"/"lowpass" models

    def __post_init__(self) -> None:
        _check_positive(self, "tau_rc", "amplitude", "gain")
        _check_non_negative(self, "tau_ref", "smoothing", "noise_std")
        _check_noise_model(self)

    def rate_kernels(self, soft: bool) -> tuple[Callable, Callable, tuple[float, ...]]:
        """(value, derivative, params) of the rate curve in z = J - 1 (for fused training)."""
        if soft and self.smoothing > 0:
            return soft_lif_value, soft_lif_derivative, (self.smoothing, self.tau_rc, self.tau_ref)
        return lif_value, lif_derivative, (self.tau_rc, self.tau_ref)

    state_vars: ClassVar[tuple[StateVar, ...]] = (StateVar("v", "voltage"), StateVar("ref"))

    def spike_step(self, j: Tensor, state: tuple[Tensor, ...], dt: float
                   ) -> tuple[Tensor, tuple[Tensor, ...]]:
        """The protocol's step: ``state = (v, ref)``; see :meth:`step`."""
        s, v, ref = lif_step(j, state[0], state[1], dt, self.tau_rc, self.tau_ref)
        return s, (v, ref)

    # Optional part of the protocol: closed-form spikes under a constant current (the first
    # layer), used by the simulator in place of spike_step where the type offers it.
    def has_schedule(self, dt: float) -> bool:
        """Whether :meth:`schedule` reproduces :meth:`spike_step` at step ``dt`` (s):
        ``tau_ref >= dt`` (at most one spike per step)."""
        return supports_schedule(self.tau_ref, dt)

    def schedule(self, j: Tensor, state: tuple[Tensor, ...], dt: float) -> LifSchedule | None:
        """The closed-form spike schedule from ``state`` at an image's onset for the constant
        current ``j`` (:mod:`softlif.closed_form`); None where it would not reproduce
        :meth:`spike_step` (``tau_ref < dt``)."""
        if not supports_schedule(self.tau_ref, dt):
            return None
        return lif_schedule(j, state[0], state[1], self.tau_rc, self.tau_ref)

    def schedule_step(self, sched: LifSchedule, t: Tensor | float
                      ) -> tuple[Tensor, LifSchedule]:
        """The spikes (bool) of the step ending ``t`` s after the onset; the new schedule."""
        return schedule_step(sched, t)

    def schedule_state(self, sched: LifSchedule, t: float) -> tuple[Tensor, ...]:
        """The state ``(v, ref)`` (float64) at ``t`` s after the onset."""
        return schedule_state(sched, t, self.tau_rc, self.tau_ref)

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


@register_neuron
@dataclass(frozen=True)
class IF(NeuronBase):
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
    noise_std: float = 10.0  # training noise on active units (Hz), "gaussian" model
    noise_model: NoiseModel = "gaussian"  # or "alpha"/"lowpass": filtered spikes, random phase
    noise_tau: float = 0.005  # synapse time constant (s) of the "alpha"/"lowpass" models

    def __post_init__(self) -> None:
        _check_positive(self, "tau", "amplitude", "gain")
        _check_non_negative(self, "tau_ref", "smoothing", "noise_std")
        _check_noise_model(self)

    def rate_kernels(self, soft: bool) -> tuple[Callable, Callable, tuple[float, ...]]:
        """(value, derivative, params) of the rate curve in z = J - 1 (for fused training)."""
        if soft and self.smoothing > 0:
            return if_value, if_derivative, (self.smoothing, self.tau, self.tau_ref)
        return if_hard_value, if_derivative, (self.tau, self.tau_ref)

    state_vars: ClassVar[tuple[StateVar, ...]] = (StateVar("v", "voltage"), StateVar("ref"))

    def spike_step(self, j: Tensor, state: tuple[Tensor, ...], dt: float
                   ) -> tuple[Tensor, tuple[Tensor, ...]]:
        """The protocol's step: ``state = (v, ref)``; see :meth:`step`."""
        s, v, ref = if_step(j, state[0], state[1], dt, self.tau, self.tau_ref)
        return s, (v, ref)

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


#: Any neuron type (the protocol); kept under its old name.
NeuronType = NeuronModel

# The authors' parameter sets (SPEC section 2).
LIF_MNIST = LIF(tau_rc=0.022, tau_ref=0.002, amplitude=0.063, gain=1.0)
LIF_CIFAR = LIF(tau_rc=0.05, tau_ref=0.001, amplitude=0.063, gain=0.825)


def with_params(neuron: NeuronType, **changes: Any) -> NeuronType:
    """A copy of ``neuron`` with some parameters changed (``dataclasses.replace``; checked by
    the type's own ``__post_init__``)."""
    return dataclasses.replace(neuron, **changes)  # type: ignore[type-var]


def neuron_to_dict(neuron: NeuronType) -> dict[str, Any]:
    """Plain-data form of a neuron type (for checkpoints and JSON)."""
    name = type(neuron).__name__
    if NEURON_TYPES.get(name) is not type(neuron):
        raise ValueError(f"neuron type {name} is not registered: decorate it with "
                         "softlif.neurons.register_neuron")
    return {"type": name, **dataclasses.asdict(neuron)}  # type: ignore[call-overload]


def neuron_from_dict(d: dict) -> NeuronType:
    """Inverse of :func:`neuron_to_dict`; rejects unknown types and fields."""
    d = dict(d)
    kind = d.pop("type", None)
    types = NEURON_TYPES
    if kind not in types:
        raise ValueError(f"unknown neuron type {kind!r}; known: {', '.join(types)} (a type of "
                         "your own must be registered with register_neuron before loading)")
    try:
        return types[kind](**d)
    except TypeError as e:
        raise ValueError(f"bad parameters for neuron type {kind}: {e}") from None


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


# Further neuron types register themselves on import (after every name above exists).
from . import adaptive as _adaptive  # noqa: E402, F401
from . import quantized as _quantized  # noqa: E402, F401
