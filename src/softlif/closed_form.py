"""Closed-form spikes of a LIF neuron driven by a constant current (the first layer).

The first layer sees a constant current ``J`` for the whole presentation of an image, so its
spike times are known in closed form from its state at the image's onset (v0, and ``ref0``
seconds of refractory period still to serve), with threshold 1, reset to 0 (SPEC section 2)::

    first spike  t1 = max(ref0, 0) + tau_rc log((J - v0) / (J - 1))       (J > 1)
    period       P  = tau_ref + tau_rc log(1 + 1 / (J - 1))

The step integrator (:func:`softlif.neurons.lif_step`) assigns a spike at time ``t`` to the
step ``n`` with ``(n - 1) dt <= t < n dt``; so does :func:`schedule_step`, with a multiply-add,
a compare and an add per neuron and step instead of an exp and a log (the step integrator's
cost). The schedule is explicit state (a tuple of tensors) and every function here is pure,
so the simulator compiles the step into one kernel. This
needs ``P >= dt`` (at most one spike per step), which holds whenever ``tau_ref >= dt``.
:func:`schedule_state` gives ``(v, ref)`` at any step in closed form, so images shown back to
back carry the voltage and the refractory remainder across the onset exactly as the step
integrator does. Spike times are computed in float64: against the float64 step integrator the
spikes agree step for step; against float32 they differ only where a spike falls within
float32 rounding of a step boundary (the tests bound how often).
"""

from __future__ import annotations

import math

import torch

Tensor = torch.Tensor


#: (j, v0, r0, first, period, emitted), float64, one value per neuron: the constant current,
#: the voltage and the refractory time left (>= 0) at the onset, the first spike's time and
#: the period (s from the onset; inf if J <= 1), and the spikes emitted so far.
LifSchedule = tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]


def supports_schedule(tau_ref: float, dt: float) -> bool:
    """Whether the closed form reproduces the step integrator: at most one spike per step."""
    return tau_ref >= dt


def lif_schedule(j: Tensor, v: Tensor, ref: Tensor, tau_rc: float, tau_ref: float
                 ) -> LifSchedule:
    """The schedule from the state ``(v, ref)`` at an image's onset and its current ``j``."""
    jd, vd = j.double(), v.double()
    r0 = ref.double().clamp(min=0.0)
    fires = jd > 1.0
    js = torch.where(fires, jd, torch.full_like(jd, 2.0))
    first = r0 + tau_rc * torch.log((js - vd) / (js - 1.0))
    period = tau_ref + tau_rc * torch.log1p(1.0 / (js - 1.0))
    inf = torch.full_like(jd, math.inf)
    return (jd, vd, r0, torch.where(fires, first, inf), torch.where(fires, period, inf),
            torch.zeros_like(jd))


def schedule_step(sched: LifSchedule, t: Tensor | float) -> tuple[Tensor, LifSchedule]:
    """The spikes (bool) of the step ending ``t`` s after the onset (``t = n dt`` for step n),
    and the advanced schedule."""
    j, v0, r0, first, period, emitted = sched
    spiked = first + emitted * period < t  # the next spike's time, without drift
    return spiked, (j, v0, r0, first, period, emitted + spiked)


def schedule_state(sched: LifSchedule, t: float, tau_rc: float, tau_ref: float
                   ) -> tuple[Tensor, Tensor]:
    """``(v, ref)`` at ``t`` s after the onset (after the steps up to ``t``), as the step
    integrator would hold them: v held at 0 while refractory, then charging toward J from 0
    (after a spike) or from v0; v clipped at 0 from below; ref the refractory time left
    (negative once served)."""
    j, v0, r0, first, period, emitted = sched
    spiked = emitted > 0
    last = torch.where(spiked, first + (emitted - 1) * period, torch.zeros_like(j))
    ref = torch.where(spiked, last + tau_ref - t, r0 - t)
    start_v = torch.where(spiked, torch.zeros_like(v0), v0)
    start_t = torch.where(spiked, last + tau_ref, r0)
    charge = (t - start_t).clamp(min=0.0)
    v = j + (start_v - j) * torch.exp(-charge / tau_rc)
    return v.clamp(min=0.0), ref
