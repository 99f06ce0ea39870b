"""Synaptic filters: impulse responses, DC gain, step == filt (SPEC section 3)."""

import math

import pytest
import torch

from softlif.synapses import Synapse

DT = 1e-3


def impulse(steps: int) -> torch.Tensor:
    x = torch.zeros(steps, 1, dtype=torch.float64)
    x[0] = 1.0 / DT
    return x


@pytest.mark.parametrize("tau", [0.002, 0.005, 0.02])
def test_lowpass_impulse_response(tau):
    y = Synapse("lowpass", tau).filt(impulse(400), DT)[:, 0]
    a = math.exp(-DT / tau)
    n = torch.arange(400, dtype=torch.float64)
    torch.testing.assert_close(y, (1 - a) * a**n / DT)  # exact discrete form
    t = n * DT
    cont = Synapse("lowpass", tau).impulse_response(t)
    assert float((y - cont).abs().max()) < 0.6 * DT / tau * (1 / tau)  # O(dt / tau) error
    assert float(y.sum() * DT) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("tau", [0.003, 0.005, 0.02])
def test_alpha_impulse_response(tau):
    y = Synapse("alpha", tau).filt(impulse(600), DT)[:, 0]
    a = math.exp(-DT / tau)
    n = torch.arange(600, dtype=torch.float64)
    torch.testing.assert_close(y, (1 - a) ** 2 * (n + 1) * a**n / DT)
    # y[n] answers within the step, so it samples h at the end of step n: t = (n + 1) dt
    cont = Synapse("alpha", tau).impulse_response((n + 1) * DT)
    peak = 1 / (math.e * tau)  # max of (t / tau^2) exp(-t / tau)
    assert float((y - cont).abs().max()) < 0.2 * (DT / tau) ** 2 * peak
    assert float(y.sum() * DT) == pytest.approx(1.0, abs=1e-6)
    # the continuous form peaks at t = tau, i.e. at the end of step tau / dt - 1
    assert int(y.argmax()) == round(tau / DT) - 1


@pytest.mark.parametrize("syn", [Synapse("lowpass", 0.005), Synapse("alpha", 0.005)])
def test_unit_dc_gain(syn):
    y = syn.filt(torch.full((3000, 2), 3.5, dtype=torch.float64), DT)
    torch.testing.assert_close(y[-1], torch.full((2,), 3.5, dtype=torch.float64))


@pytest.mark.parametrize("syn", [Synapse("none", 0.0), Synapse("alpha", 0.0),
                                 Synapse("lowpass", 0.01), Synapse("alpha", 0.005)])
def test_step_and_filt_agree_exactly(syn):
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(200, 3, 4, generator=gen)
    whole = syn.filt(x, DT)
    state = syn.initial_state(x[0])
    for t in range(200):
        y, state = syn.step(x[t], state, DT)
        assert torch.equal(y, whole[t])
    # filtering in two chunks, carrying the state, equals filtering at once
    state = syn.initial_state(x[0])
    for t in range(120):
        _, state = syn.step(x[t], state, DT)
    assert torch.equal(syn.filt(x[120:], DT, state), whole[120:])


def test_none_passes_through():
    x = torch.randn(10, 5)
    assert torch.equal(Synapse("none", 0.005).filt(x, DT), x)
    assert Synapse("lowpass", 0).order == 0


def test_bad_synapse_arguments():
    with pytest.raises(ValueError, match="kind"):
        Synapse("exp", 0.005)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="tau"):
        Synapse("alpha", -1.0)
