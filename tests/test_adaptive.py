"""Adaptive LIF: its exact steady-state rate against the LIF closed form (no adaptation) and
against its own spiking dynamics; the tabulated and smoothed curves for training; end to end."""

import math

import pytest
import torch
from test_neuron_protocol import train_toy

import softlif as sl
from softlif.adaptive import AdaptiveLIF, adaptive_lif_rate_exact, adaptive_lif_step
from softlif.neurons import lif_rate, neuron_from_dict, neuron_to_dict

CURRENTS = torch.tensor([1.05, 1.2, 1.5, 2.0, 3.0, 5.0, 10.0], dtype=torch.float64)


def _spiking_rate(neuron, j, dt, duration, settle):
    """Mean rate (Hz) of the spiking dynamics after ``settle`` s, float64."""
    v, ref, n = (torch.zeros_like(j) for _ in range(3))
    count = torch.zeros_like(j)
    steps, skip = round(duration / dt), round(settle / dt)
    for t in range(steps):
        s, v, ref, n = adaptive_lif_step(j, v, ref, n, dt, neuron.tau_rc, neuron.tau_ref,
                                         neuron.tau_n, neuron.inc)
        if t >= skip:
            count += s
    return count / (duration - settle)


def test_without_adaptation_it_is_the_lif_closed_form():
    for inc in (0.0, 1e-9):  # the closed form, and the root-finder on a vanishing increment
        r = adaptive_lif_rate_exact(CURRENTS, 0.02, 0.002, 0.1, inc)
        torch.testing.assert_close(r, lif_rate(CURRENTS, 0.02, 0.002), rtol=1e-6, atol=0)
    assert float(adaptive_lif_rate_exact(torch.tensor([0.99]), 0.02, 0.002, 0.1, 0.1)) == 0


@pytest.mark.parametrize("tau_n,inc", [(0.1, 0.05), (0.05, 0.3), (0.02, 0.1)])
def test_exact_rate_matches_the_spiking_neuron(tau_n, inc):
    """Fine steps (0.1 ms): within 0.5% or one spike of the count; the simulator's 1 ms steps:
    within 1% (measured: at most 0.7%). Adaptation lowers the rate below the LIF's."""
    neuron = AdaptiveLIF(tau_rc=0.02, tau_ref=0.002, tau_n=tau_n, inc=inc)
    exact = neuron.exact_rate(CURRENTS)
    assert bool((exact < lif_rate(CURRENTS, 0.02, 0.002)).all())
    fine = _spiking_rate(neuron, CURRENTS, 1e-4, 2.5, 0.5)
    torch.testing.assert_close(fine, exact, rtol=5e-3, atol=0.6)  # 0.5 Hz: one spike in 2 s
    coarse = _spiking_rate(neuron, CURRENTS, 1e-3, 6.0, 1.0)
    torch.testing.assert_close(coarse, exact, rtol=1e-2, atol=0.25)


def test_the_period_solves_its_self_consistency_equation():
    """Independent check of the root: integrate v and n through one period from the periodic
    state (n_p just after a spike) with tiny Euler steps; v reaches 1 at t = T."""
    tau_rc, tau_ref, tau_n, inc, j = 0.02, 0.002, 0.05, 0.3, 2.0
    rate = float(adaptive_lif_rate_exact(torch.tensor([j], dtype=torch.float64), tau_rc,
                                         tau_ref, tau_n, inc))
    period = 1 / rate
    n = inc / (1 - math.exp(-period / tau_n))
    v, t, h = 0.0, 0.0, 1e-7
    while v < 1.0:
        if t >= tau_ref:
            v = max(0.0, v + h * (j - n - v) / tau_rc)
        n -= h * n / tau_n
        t += h
    assert t == pytest.approx(period, rel=1e-4)
    assert n == pytest.approx(inc / (1 - math.exp(-period / tau_n)) - inc, rel=1e-3)


def test_training_curves_follow_the_exact_one():
    neuron = AdaptiveLIF(tau_rc=0.02, tau_ref=0.002, tau_n=0.05, inc=0.3, smoothing=0.02)
    j = torch.tensor([0.5, 1.0, 1.001, 1.3, 2.0, 4.0, 20.0], dtype=torch.float64)
    torch.testing.assert_close(neuron.rate(j.float()).double(), neuron.exact_rate(j),
                               rtol=2e-3, atol=1e-3)
    # the soft curve: above the hard one, close to it away from threshold, smooth gradient
    soft, hard = neuron.soft_rate(j.float()), neuron.rate(j.float())
    assert bool((soft >= hard - 1e-3).all())
    torch.testing.assert_close(soft[4:], hard[4:], rtol=2e-3, atol=0)
    x = torch.tensor([0.95, 1.0, 1.05, 1.5, 3.0], requires_grad=True)
    neuron.soft_rate(x).sum().backward()
    h = 1e-3
    fd = (neuron.soft_rate(x.detach() + h) - neuron.soft_rate(x.detach() - h)) / (2 * h)
    torch.testing.assert_close(x.grad, fd, rtol=2e-2, atol=0.5)
    assert bool(torch.isfinite(x.grad).all())


def test_adaptive_lif_trains_converts_simulates_and_checkpoints():
    neuron = AdaptiveLIF(tau_rc=0.02, tau_ref=0.002, tau_n=0.05, inc=0.2, amplitude=0.01,
                         noise_std=5.0)
    assert neuron_from_dict(neuron_to_dict(neuron)) == neuron
    model, x = train_toy(neuron)
    snn = sl.convert(model.eval(), (8,))
    assert sl.verify(model, snn, x[:16]) < 1e-4
    # 2 s per image, each alone: the adaptation transient is a small part of the count
    res = sl.simulate(snn, x[:32], presentation_time=2.0, batch_size=32, reset=True)
    rates: list[torch.Tensor] = []
    snn.rate_forward(x[:32], mode="hard", rates=rates)
    measured = (res.layer_counts[:, 0] / 2.0 / 32).float()
    torch.testing.assert_close(measured, rates[0].mean(1).float(), rtol=0.1, atol=2.0)
    agree = (snn.rate_forward(x[:32], mode="hard").argmax(1)
             == res.outputs[1000:].mean(0).argmax(1)).float().mean()
    assert agree >= 0.9
