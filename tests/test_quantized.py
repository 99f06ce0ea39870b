"""Hardware-quantised LIF: the integer dynamics against a plain-Python transcription of the
documented arithmetic, the measured staircase against its own spiking neuron, the smoothed
training curve, 8-bit weights, and end to end."""

import math

import pytest
import torch
from test_neuron_protocol import train_toy

import softlif as sl
from softlif.neurons import LIF, neuron_from_dict, neuron_to_dict
from softlif.quantized import QuantizedLIF, fake_quantize, quantize_weight


def _reference_run(j: list[float], v0: list[int], steps: int, tau_rc: float, tau_ref: float,
                   dt: float, vth_mant: int) -> tuple[list[list[int]], list[list[int]]]:
    """The module docstring's arithmetic in Python integers, one neuron at a time: spikes and
    voltages (LSB) per step."""
    dv = round(4096 * (1 - math.exp(-dt / tau_rc)))
    vth = vth_mant * 64
    rsteps = round(tau_ref / dt)
    lim = 2**23 - 1
    spikes, volts = [], []
    for jj, v in zip(j, v0, strict=True):
        u = max(-lim, min(lim, math.floor(jj * vth * dv / 4096 + 0.5)))
        ref, s_row, v_row = 0, [], []
        for _ in range(steps):
            if ref > 0:
                ref -= 1
                v, s = 0, 0
            else:
                mag = (abs(v) * (4096 - dv)) >> 12
                v = max(0, min(lim, (mag if v >= 0 else -mag) + u))
                s = int(v > vth)
                if s:
                    v, ref = 0, rsteps
            s_row.append(s)
            v_row.append(v)
        spikes.append(s_row)
        volts.append(v_row)
    return spikes, volts


@pytest.mark.parametrize("tau_rc,tau_ref,vth_mant", [(0.022, 0.002, 1024), (0.05, 0.001, 300),
                                                      (0.01, 0.0, 77)])
def test_spike_step_is_bit_exact_against_the_integer_arithmetic(tau_rc, tau_ref, vth_mant):
    neuron = QuantizedLIF(tau_rc=tau_rc, tau_ref=tau_ref, vth_mant=vth_mant)
    g = torch.Generator().manual_seed(1)
    j = torch.cat([torch.rand(60, generator=g) * 4 - 0.5, torch.tensor([1.0, 1.0001, 50.0])])
    v0 = torch.rand(j.shape, generator=g)  # a uniform initial voltage, threshold units
    vth = vth_mant * 64
    v0_int = torch.round(v0.double() * vth).long().tolist()
    ref_spikes, ref_volts = _reference_run(j.double().tolist(), v0_int, 300, tau_rc, tau_ref,
                                           0.001, vth_mant)
    state = (v0, torch.zeros_like(j))
    for t in range(300):
        s, state = neuron.spike_step(j, state, 0.001)
        assert s.tolist() == [row[t] for row in ref_spikes]
        v_int = torch.round(state[0].double() * vth).long()
        assert v_int.tolist() == [row[t] for row in ref_volts]
        # the float32 state recovers the integer voltage by rounding, far from ambiguity
        assert float((state[0].double() * vth - v_int.double()).abs().max()) < 0.01


def test_rate_curve_is_the_spike_count_of_its_own_dynamics():
    """The staircase is measured from the dynamics: a neuron held at a constant current fires
    periodically at exactly that rate (counted over whole periods after the first spike)."""
    neuron = QuantizedLIF()
    j = torch.cat([torch.linspace(0.9, 1.2, 61), torch.linspace(1.2, 12.0, 120)])
    state = (torch.zeros_like(j), torch.zeros_like(j))
    times: list[list[int]] = [[] for _ in range(j.numel())]
    for t in range(1500):
        s, state = neuron.spike_step(j, state, neuron.dt)
        for i in torch.nonzero(s).flatten().tolist():
            times[i].append(t)
    expect = neuron.rate(j)
    for i, ts in enumerate(times):
        if len(ts) < 3:
            assert float(expect[i]) < 1000 / 750, (float(j[i]), ts)  # at most ~1 spike seen
            continue
        measured = (len(ts) - 2) / ((ts[-1] - ts[1]) * neuron.dt)
        assert measured == pytest.approx(float(expect[i]), rel=1e-5), float(j[i])


def test_the_staircase_follows_the_float_lif_and_the_soft_curve_follows_the_staircase():
    neuron = QuantizedLIF(smoothing=0.02)
    lif = LIF(tau_rc=0.022, tau_ref=0.002)
    j = torch.linspace(1.05, 8.0, 400)
    hard = neuron.rate(j)
    assert bool((hard[1:] >= hard[:-1]).all())  # monotone
    # whole-step periods: the rate is 1 / (k dt) for integers k >= R + 1
    periods = 1.0 / (hard.double() * neuron.dt)
    torch.testing.assert_close(periods, periods.round(), rtol=1e-6, atol=0)
    assert float(hard.max()) <= neuron.max_rate() == pytest.approx(1000 / 3)
    # the float LIF's period rounded up to whole steps, up to 5% of a step (the 12-bit decay
    # and the truncating shifts charge a little slower; measured: at most 1.02 steps longer)
    extra = periods - 1.0 / (lif.rate(j).double() * neuron.dt)
    assert float(extra.min()) >= -0.05 and float(extra.max()) <= 1.05
    # above the soft threshold (J - 1 > 5 g) the soft curve stays within a jump (to the tread
    # above or below) of the staircase; its gradient is the finite difference of its value
    soft = neuron.soft_rate(j)
    rate_at = 1.0 / neuron.dt / torch.stack([periods - 1, periods + 1])
    jump = (rate_at - hard.double()).abs().max(0).values
    off = (soft.double() - hard.double()).abs() - jump
    assert bool((off[j > 1.1] <= 1e-3).all())
    # the gradient integrates to the value (the piecewise-linear curve has kinks at its knots,
    # dense near threshold, so compare integrals rather than finite differences)
    for a, b in ((0.8, 1.05), (1.05, 1.5), (1.5, 6.0)):
        x = torch.linspace(a, b, 20001, dtype=torch.float32, requires_grad=True)
        neuron.soft_rate(x).sum().backward()
        grad = x.grad.double()
        integral = float(((grad[1:] + grad[:-1]) / 2).sum()) * (b - a) / 20000
        rise = float(neuron.soft_rate(torch.tensor([b])) - neuron.soft_rate(torch.tensor([a])))
        assert integral == pytest.approx(rise, rel=2e-3, abs=1e-2)
        assert bool((grad >= 0).all()) and bool(torch.isfinite(grad).all())
    assert float(neuron.rate(torch.tensor([0.99]))) == 0.0


def test_weights_take_at_most_255_levels_with_a_straight_through_gradient():
    w = torch.randn(64, 32) * 0.1
    q = quantize_weight(w, 8)
    scale = float(w.abs().max()) / 127
    mant = q / scale
    torch.testing.assert_close(mant, mant.round(), rtol=0, atol=1e-4)
    assert int(mant.round().abs().max()) == 127 and len(torch.unique(mant.round())) <= 255
    assert float((q - w).abs().max()) <= scale / 2 + 1e-7
    wp = w.clone().requires_grad_(True)
    out = fake_quantize(wp, 8)
    assert torch.equal(out.detach(), q)
    (out * torch.arange(32.0)).sum().backward()
    assert torch.equal(wp.grad, torch.arange(32.0).expand(64, 32))
    assert torch.equal(quantize_weight(torch.zeros(3), 8), torch.zeros(3))


def test_bad_parameters_and_a_wrong_step_are_refused():
    with pytest.raises(ValueError, match="whole number of steps"):
        QuantizedLIF(tau_ref=0.0015)
    with pytest.raises(ValueError, match="vth_mant"):
        QuantizedLIF(vth_mant=1 << 17)
    with pytest.raises(ValueError, match="12-bit"):
        QuantizedLIF(tau_rc=1e-5)
    with pytest.raises(ValueError, match="dt = 0.001"):
        QuantizedLIF().spike_step(torch.ones(2), (torch.zeros(2), torch.zeros(2)), 0.0005)


def test_quantized_lif_trains_with_8_bit_weights_converts_simulates_and_checkpoints():
    neuron = QuantizedLIF(tau_rc=0.02, tau_ref=0.002, amplitude=0.01, noise_std=5.0)
    assert neuron_from_dict(neuron_to_dict(neuron)) == neuron
    model, x = train_toy(neuron, weight_bits=8)
    # the forward pass uses 8-bit weights; the parameters are the float masters
    assert len(torch.unique(model[0].weight.detach())) > 255
    snn = sl.convert(model.eval(), (8,))
    for stage in snn.stages:
        w = next(stage.linear.parameters())
        assert len(torch.unique(w)) <= 255
    assert sl.verify(model, snn, x[:16]) < 1e-4
    res = sl.simulate(snn, x[:64], presentation_time=0.5, batch_size=64, reset=True)
    rates: list[torch.Tensor] = []
    snn.rate_forward(x[:64], mode="hard", rates=rates)
    measured = (res.layer_counts[:, 0] / 0.5 / 32).float()
    torch.testing.assert_close(measured, rates[0].mean(1).float(), rtol=0.05, atol=2.0)
    agree = (snn.rate_forward(x[:64], mode="hard").argmax(1)
             == res.outputs[250:].mean(0).argmax(1)).float().mean()
    assert agree >= 0.9
