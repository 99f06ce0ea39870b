"""Closed-form first layer: spike for spike the step integrator (float64) over many images
shown back to back, with the state carried across each onset; float32 boundary cases bounded."""

import math

import pytest
import torch

import softlif as sl
from softlif.closed_form import lif_schedule, schedule_state, schedule_step, supports_schedule
from softlif.neurons import lif_step

TAU_RC, TAU_REF, DT, STEPS = 0.02, 0.002, 0.001, 60


def _images(n_images, n_neurons, seed=0):
    g = torch.Generator().manual_seed(seed)
    # currents from silent to near saturation, some exactly at threshold
    j = torch.rand((n_images, n_neurons), generator=g, dtype=torch.float64) * 6.0 - 1.0
    j[:, :5] = 1.0
    return j


def _run_both(j_images, dtype):
    v = torch.zeros(j_images.shape[1], dtype=dtype)
    ref = torch.zeros_like(v)
    cv, cref = v.double(), ref.double()
    diffs, total = 0, 0
    for j in j_images:
        sched = lif_schedule(j, cv, cref, TAU_RC, TAU_REF)
        jj = j.to(dtype)
        for n in range(1, STEPS + 1):
            s_ref, v, ref = lif_step(jj, v, ref, DT, TAU_RC, TAU_REF)
            s, sched = schedule_step(sched, n * DT)
            diffs += int((s.double() != s_ref.double()).sum())
            total += int(s_ref.sum())
        cv, cref = schedule_state(sched, STEPS * DT, TAU_RC, TAU_REF)
        if dtype == torch.float64:  # the carried state is the integrator's
            torch.testing.assert_close(cv, v, rtol=1e-9, atol=1e-12)
            torch.testing.assert_close(cref.clamp(min=0), ref.clamp(min=0), rtol=0, atol=1e-12)
    return diffs, total


def test_float64_spike_for_spike_over_images_back_to_back():
    diffs, total = _run_both(_images(40, 500), torch.float64)
    assert total > 50_000  # plenty of spikes, many refractory periods across onsets
    assert diffs == 0


def test_float32_differs_only_in_rare_boundary_cases():
    diffs, total = _run_both(_images(40, 500, seed=1), torch.float32)
    # a spike within float32 rounding of a step boundary lands one step earlier or later
    # (each such case is two differing entries); measured here: 0 of 74,483 spikes
    assert diffs / total < 1e-4, (diffs, total)


def test_schedule_needs_at_most_one_spike_per_step():
    assert supports_schedule(0.002, 0.001) and supports_schedule(0.001, 0.001)
    assert not supports_schedule(0.0, 0.001)


def test_first_spike_and_period_closed_forms():
    j = torch.tensor([2.0, 0.5], dtype=torch.float64)
    s = lif_schedule(j, torch.tensor([0.5, 0.2], dtype=torch.float64),
                     torch.tensor([0.0015, 0.0], dtype=torch.float64), TAU_RC, TAU_REF)
    # from v0 = 0.5 at J = 2 after 1.5 ms of refractory: 1.5 ms + tau log(1.5)
    first, period = s[3], s[4]
    assert float(first[0]) == 0.0015 + TAU_RC * math.log(1.5)
    assert float(period[0]) == TAU_REF + TAU_RC * math.log(2.0)
    assert math.isinf(float(first[1])) and math.isinf(float(period[1]))


def test_simulator_with_the_closed_form_moves_only_boundary_spikes():
    """The MNIST net (random weights, scaled to fire), 6 images back to back per stream: the
    first layer's spikes step for step as the float32 step integrator's but for spikes within
    float32 rounding of a step boundary (measured: 1 of 155,194 moved by one step), whose
    effect downstream stays at the noise floor; the carried voltages agree."""
    from softlif.networks import build, get_spec

    torch.manual_seed(0)
    spec = get_spec("mnist")
    ann = build(spec).eval()
    for m in ann.modules():
        if isinstance(m, torch.nn.Conv2d | torch.nn.Linear):
            m.weight.data *= 3.0
    snn = sl.convert(ann, spec.input_shape)
    x = torch.rand(12, *spec.input_shape)
    fast, ref = sl.Simulator(snn, 2), sl.Simulator(snn, 2, closed_form=False)
    assert fast.planners[0] is not None and fast.planners[1] is None  # layer 1 only
    moved, total = 0, 0
    later = torch.zeros(2, dtype=torch.float64)
    for i in range(6):
        for s in (fast, ref):
            s.set_input(x[2 * i:2 * i + 2])
        for _ in range(50):
            fast.step()
            ref.step()
            moved += int((fast.spikes[0] != ref.spikes[0]).sum())
            total += int(ref.spikes[0].sum())
            later += torch.tensor([float((fast.spikes[k] != ref.spikes[k]).sum())
                                   / max(1.0, float(ref.spikes[k].sum())) for k in (1, 2)])
        # the float32 integrator's own rounding drifts by ~3e-5; a moved spike resets one
        dv = (fast.voltages[0] - ref.voltages[0]).abs()
        assert int((dv > 1e-4).sum()) <= 2, int((dv > 1e-4).sum())
    assert total > 100_000 and moved / total < 1e-4, (moved, total)
    assert bool((later / 300 < 5e-3).all()), later / 300  # mean share of differing entries
    res = [sl.simulate(snn, x, presentation_time=0.05, batch_size=2, closed_form=cf)
           for cf in (True, False)]
    assert torch.equal(res[0].layer_counts[:, 0], res[1].layer_counts[:, 0])
    torch.testing.assert_close(res[0].layer_counts, res[1].layer_counts, rtol=1e-3, atol=0)


def test_window_rates_from_per_step_counts():
    """Per-step layer counts give rates over any window; the whole window equals the
    presentation's rates, and a single LIF layer's settled window matches its rate curve."""
    from torch import nn

    torch.manual_seed(0)
    neuron = sl.LIF(tau_rc=TAU_RC, tau_ref=TAU_REF)
    ann = nn.Sequential(nn.Linear(4, 64), sl.RateNeuron(neuron), nn.Linear(64, 2))
    snn = sl.convert(ann.eval(), (4,))
    x = torch.rand(6, 4) * 3
    res = sl.simulate(snn, x, presentation_time=0.3, batch_size=3)
    assert res.layer_step_counts.shape == (300, 1)
    assert res.firing_rates(0.0, 0.3) == res.firing_rates()
    late = res.firing_rates(0.1, 0.3)[0]
    rates: list[torch.Tensor] = []
    snn.rate_forward(x, mode="hard", rates=rates)
    assert late == pytest.approx(float(rates[0].mean()), rel=0.02)
