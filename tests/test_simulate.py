"""Spiking simulation: rates, streaming == batched, batching invariance, windows, and a tiny
end-to-end case (train soft LIF -> convert -> simulate)."""

import importlib

import pytest
import torch
from torch import nn

from softlif.activations import RateNeuron
from softlif.convert import convert
from softlif.neurons import IF, LIF, LIF_MNIST
from softlif.simulate import EventDrivenLinear, Simulator, simulate
from softlif.synapses import Synapse


def small_net(seed: int = 0, neuron=LIF_MNIST) -> nn.Sequential:
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Conv2d(1, 6, 3, padding=1), RateNeuron(neuron), nn.AvgPool2d(2, 2, ceil_mode=True),
        nn.Flatten(), nn.Linear(6 * 16, 20), RateNeuron(neuron), nn.Linear(20, 4),
    )
    with torch.no_grad():  # rates of tens of Hz
        net[0].weight.mul_(3.0)
        net[4].weight.mul_(20.0)
    return net


def images(n: int, seed: int = 1) -> torch.Tensor:
    return torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("syn", [Synapse("lowpass", 0.02), Synapse("alpha", 0.01)])
@pytest.mark.parametrize("neuron", [LIF_MNIST, IF(tau=0.01, tau_ref=0.002, amplitude=0.01)])
def test_long_run_mean_output_approaches_rate_net(syn, neuron):
    ann = small_net(neuron=neuron).eval()
    snn = convert(ann, (1, 8, 8), syn)
    x = images(6)
    res = simulate(snn, x, presentation_time=2.0, reset=True)
    mean = res.outputs[res.window_slice(0.2, 2.0)].mean(0)
    rate_out = snn.rate_forward(x, "hard")
    scale = rate_out.abs().max()
    # spiking noise through a nonlinear neuron leaves a few per cent at these rates
    assert float((mean - rate_out).abs().max()) < 0.08 * float(scale)
    assert all(r > 1.0 for r in res.firing_rates())


def test_layer_rates_match_spike_counts():
    snn = convert(small_net(), (1, 8, 8))
    res = simulate(snn, images(4), presentation_time=0.1, keep_neuron_counts=4)
    assert res.neuron_counts is not None
    for k, counts in enumerate(res.neuron_counts):
        torch.testing.assert_close(counts.flatten(1).sum(1).double(), res.layer_counts[:, k])


def test_streaming_equals_fast_mode():
    snn = convert(small_net(), (1, 8, 8), Synapse("alpha", 0.005))
    x = images(6)
    fast = simulate(snn, x, presentation_time=0.03, batch_size=3, stream_length=2)
    # the same streams, driven frame by frame: stream b shows images 2b, 2b + 1
    sim = Simulator(snn, batch_size=3)
    outs = []
    for pos in range(2):
        frame = x[[0 + pos, 2 + pos, 4 + pos]]
        outs.append(torch.stack([sim.step(frame) for _ in range(30)]))  # (T, B, 4)
    for pos in range(2):
        assert torch.equal(outs[pos], fast.outputs[:, [0 + pos, 2 + pos, 4 + pos]])


@pytest.mark.parametrize("init", ["zero", "uniform"])
def test_batching_never_changes_a_result(init):
    snn = convert(small_net(), (1, 8, 8), Synapse("lowpass", 0.004))
    x = images(10)
    kw = dict(presentation_time=0.02, stream_length=3, init=init)
    a = simulate(snn, x, batch_size=4, **kw)
    b = simulate(snn, x, batch_size=1, **kw)
    # the same spikes; readouts equal up to the float rounding of batched matmuls
    assert torch.equal(a.layer_counts, b.layer_counts)
    torch.testing.assert_close(a.outputs, b.outputs, rtol=1e-5, atol=1e-5)


def test_reset_makes_images_independent_and_back_to_back_carries_state():
    snn = convert(small_net(), (1, 8, 8), Synapse("alpha", 0.005))
    x = images(4)
    fwd = simulate(snn, x, presentation_time=0.02, reset=True, batch_size=2)
    rev = simulate(snn, x.flip(0), presentation_time=0.02, reset=True, batch_size=3)
    assert torch.equal(fwd.layer_counts, rev.layer_counts.flip(0))
    torch.testing.assert_close(fwd.outputs, rev.outputs.flip(1), rtol=1e-5, atol=1e-5)
    chained = simulate(snn, x, presentation_time=0.02, batch_size=1)  # one stream of 4
    assert torch.equal(chained.outputs[:, 0], fwd.outputs[:, 0])  # first image: same start
    assert not torch.equal(chained.outputs[:, 1], fwd.outputs[:, 1])  # later: state carried


def test_windows_and_error_vs_c1():
    snn = convert(small_net(), (1, 8, 8))
    x = images(8)
    res = simulate(snn, x, presentation_time=0.05)
    labels = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    c1, err = res.error_vs_c1(labels, c0=0.01)
    assert len(c1) == 40 and float(c1[0]) == 0.011 and float(c1[-1]) == 0.05
    # by hand: the window (0.01, c1] holds steps 11..k (ending at 11 ms .. k ms), i.e. rows
    # 10..k-1 of the per-step readout; the prediction is the argmax of their mean
    for k_ms in (11, 24, 50):
        pred = res.outputs[10:k_ms].mean(0).argmax(-1)
        wrong = sum(int(p) != int(t) for p, t in zip(pred, labels, strict=True))
        assert res.error(labels, 0.01, k_ms / 1000) == wrong / 8
        assert float(err[k_ms - 11]) == wrong / 8
    with pytest.raises(ValueError, match="c0"):
        res.error(labels, 0.04, 0.02)
    with pytest.raises(ValueError, match="whole number"):
        simulate(snn, x, presentation_time=0.0105)


def test_bfloat16_synaptic_path_is_close():
    snn = convert(small_net(), (1, 8, 8), Synapse("alpha", 0.005))
    x = images(4)
    a = simulate(snn, x, presentation_time=0.3)
    b = simulate(snn, x, presentation_time=0.3, precision="bfloat16")
    ma, mb = a.outputs[100:].mean(0), b.outputs[100:].mean(0)
    assert float((ma - mb).abs().max()) < 0.1 * float(ma.abs().max())


def test_fused_kernels_match_eager():
    snn = convert(small_net(), (1, 8, 8), Synapse("alpha", 0.005))
    x = images(3)
    a = simulate(snn, x, presentation_time=0.1)
    b = simulate(snn, x, presentation_time=0.1, fused=True)
    # fused kernels may round differently, so a rare spike can move by a step
    assert float((a.outputs.mean(0) - b.outputs.mean(0)).abs().max()) < 0.05
    assert float((a.layer_counts - b.layer_counts).abs().max()) <= 0.01 * float(a.layer_counts.max())
    # compiled blocks (several steps per kernel, in calls of UNROLL_STEPS steps and a shorter
    # remainder) perform the compiled single steps' arithmetic: the same spikes, step by step
    one = simulate(snn, x, presentation_time=0.1, fused=True, block_steps=1)
    for c in (b, simulate(snn, x, presentation_time=0.1, fused=True, block_steps=7)):
        assert torch.equal(c.layer_step_counts, one.layer_step_counts)
        assert torch.equal(c.layer_counts, one.layer_counts)
        torch.testing.assert_close(c.outputs, one.outputs, rtol=1e-6, atol=1e-6)


def blobs(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Four classes of 8x8 images: a bright bar (row, column, or a diagonal) plus noise."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 4, (n,), generator=g)
    x = 0.3 * torch.randn(n, 1, 8, 8, generator=g)
    pos = torch.randint(1, 7, (n,), generator=g)
    for i in range(n):
        p, c = int(pos[i]), int(y[i])
        if c == 0:
            x[i, 0, p, :] += 1.0
        elif c == 1:
            x[i, 0, :, p] += 1.0
        elif c == 2:
            x[i, 0].diagonal().add_(1.0)
        else:
            x[i, 0].flip(1).diagonal().add_(1.0)
    return x, y


def test_tiny_end_to_end_snn_close_to_ann():
    torch.manual_seed(0)
    neuron = LIF(tau_rc=0.02, tau_ref=0.002, amplitude=0.063, noise_std=10.0)
    ann = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), RateNeuron(neuron), nn.AvgPool2d(2, 2),
        nn.Flatten(), nn.Linear(128, 32), RateNeuron(neuron), nn.Linear(32, 4),
    )
    xtr, ytr = blobs(2000, 0)
    xte, yte = blobs(300, 1)
    opt = torch.optim.Adam(ann.parameters(), lr=3e-3)
    ann.train()
    for step in range(300):
        idx = torch.randint(0, 2000, (64,), generator=torch.Generator().manual_seed(step))
        loss = nn.functional.cross_entropy(ann(xtr[idx]), ytr[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    ann.eval()
    with torch.no_grad():
        ann_err = float((ann(xte).argmax(1) != yte).float().mean())
    snn = convert(ann, (1, 8, 8), Synapse("alpha", 0.005))
    res = simulate(snn, xte, presentation_time=0.2, batch_size=30)
    snn_err = res.error(yte, 0.05, 0.2)
    assert ann_err < 0.1, f"the ANN did not learn the toy task (error {ann_err:.3f})"
    assert snn_err <= ann_err + 0.03, f"SNN error {snn_err:.3f} vs ANN {ann_err:.3f}"


def test_float64_reference_mode_is_float64_throughout():
    """precision="float64" against a direct float64 transcription of the simulation (the LIF
    step, the alpha filter and the stage's maps, one after another): the same spikes in every
    layer and step, and readouts equal to float64 rounding; a float32 leak anywhere would
    show as ~1e-7 relative differences."""
    snn = convert(small_net(), (1, 8, 8), Synapse("alpha", 0.005))
    x = images(3).double()
    sim = Simulator(snn, batch_size=3, precision="float64")
    sim.set_input(x)
    st0, st1, st2 = snn.stages
    n0, n1 = st0.neuron, st1.neuron
    lin1, lin2 = (nn.Sequential(*[m for m in s.linear]).double() for s in (st1, st2))
    j0 = n0.gain * (st0.linear.double()(x) + st0.bias.double()) + n0.bias
    v0, r0 = torch.zeros_like(j0), torch.zeros_like(j0)
    syn1 = snn.synapse.initial_state(torch.zeros(3, 6, 8, 8, dtype=torch.float64))
    v1 = r1 = torch.zeros(3, 20, dtype=torch.float64)
    syn2 = snn.synapse.initial_state(torch.zeros(3, 20, dtype=torch.float64))
    for _ in range(150):
        out = sim.step()
        s0, v0, r0 = n0.step(j0, v0, r0, sim.dt)
        y1, syn1 = snn.synapse.step(s0 * n0.amplitude / sim.dt, syn1, sim.dt)
        j1 = n1.gain * (lin1(y1) + st1.bias.double()) + n1.bias
        s1, v1, r1 = n1.step(j1, v1, r1, sim.dt)
        y2, syn2 = snn.synapse.step(s1 * n1.amplitude / sim.dt, syn2, sim.dt)
        expect = lin2(y2) + st2.bias.double()
        assert torch.equal(sim.spikes[0], s0) and torch.equal(sim.spikes[1], s1)
        torch.testing.assert_close(out, expect, rtol=1e-12, atol=1e-12)
    assert out.dtype == torch.float64 and sim.voltages[1].dtype == torch.float64
    res = simulate(snn, x, presentation_time=0.15, precision="float64", batch_size=3)
    assert res.outputs.dtype == torch.float64 and torch.equal(res.outputs[-1], out)
    assert float(s1.sum()) > 0  # the second layer spiked
    with pytest.raises(ValueError, match="float64"):
        Simulator(snn, batch_size=1, precision="float16")  # type: ignore[arg-type]


def test_event_driven_fully_connected_maps_match_dense(monkeypatch):
    """event_driven=True sums only the active inputs' weight rows where few are active: the
    same spikes as the dense path here, and readouts equal to float32 summation order."""
    # the crossover the earlier machine measured (this machine's own is calibrated, and tested
    # in tests/test_hardware.py): this test is about the mechanism
    monkeypatch.setattr(importlib.import_module("softlif.simulate"), "event_crossover",
                        lambda: 0.04)
    snn = convert(small_net(), (1, 8, 8), Synapse("alpha", 0.005))
    x = images(6)
    dense = simulate(snn, x, presentation_time=0.2, batch_size=6, event_driven=False)
    event = simulate(snn, x, presentation_time=0.2, batch_size=6, event_driven=True)
    assert torch.equal(dense.layer_counts, event.layer_counts)
    torch.testing.assert_close(event.outputs, dense.outputs, rtol=1e-5, atol=1e-5)
    assert isinstance(Simulator(snn, batch_size=1).linears[1], EventDrivenLinear)  # default
    assert not isinstance(Simulator(snn, batch_size=1, precision="bfloat16").linears[1],
                          EventDrivenLinear)
    sim = Simulator(snn, batch_size=6, event_driven=True)
    lin = sim.linears[1]
    assert isinstance(lin, EventDrivenLinear) and not isinstance(sim.linears[0],
                                                                 EventDrivenLinear)
    sim.set_input(x)
    for _ in range(100):
        sim.step()
    assert lin.sparse_calls > 0 and lin.sparse_calls + lin.dense_calls == 100


def test_the_step_is_a_pure_function_of_plan_and_state():
    """step(plan, state) returns a new state and leaves its argument as it was: stepping the
    same state twice gives the same readout, and the Simulator's own stepping agrees."""
    from softlif.simulate import initial_state, set_input, step

    snn = convert(small_net(), (1, 8, 8), Synapse("alpha", 0.005))
    x = images(2)
    plan = Simulator(snn, batch_size=2, init="uniform")
    s0 = set_input(plan, initial_state(plan), x)
    for _ in range(30):
        _, s0 = step(plan, s0)
    before = [t.clone() for v in (*s0.neurons, *[y for y in s0.syn if y]) for t in v]
    out_a, s1 = step(plan, s0)
    out_b, _ = step(plan, s0)
    after = [t for v in (*s0.neurons, *[y for y in s0.syn if y]) for t in v]
    assert torch.equal(out_a, out_b) and s1.onset_steps == s0.onset_steps + 1 == 31
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))
    plan.set_input(x)
    outs = [plan.step() for _ in range(31)]
    assert torch.equal(outs[-1], out_a)


@pytest.mark.parametrize("net_kind", ["sequential", "residual"])
def test_blocks_of_steps_equal_single_steps(net_kind):
    """run_steps (layer after layer over a block: each linear map sees the spikes of all the
    block's steps as one batch) performs the updates of that many single steps: in float64
    the same spikes in every layer and step and readouts equal to float64 rounding, for
    blocks that split presentations unevenly; and a residual net (a stage with two spiking
    sources) agrees too."""
    from softlif.simulate import auto_block_steps, initial_state, run_steps, set_input, step

    if net_kind == "sequential":
        snn, x = convert(small_net(), (1, 8, 8), Synapse("alpha", 0.005)), images(6)
    else:
        import softlif as sl

        class Residual(nn.Module):
            def __init__(self):
                super().__init__()
                self.stem, self.c1, self.c2 = (nn.Conv2d(i, 4, 3, padding=1)
                                               for i in (1, 4, 4))
                self.fc = nn.Linear(4 * 8 * 8, 3)

            def forward(self, x):
                h = torch.relu(self.stem(x))
                h1 = torch.relu(self.c1(h))
                return self.fc(torch.flatten(torch.relu(self.c2(h1) + h), 1))

        torch.manual_seed(0)
        x = torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(3)) * 4
        ann = sl.prepare(Residual(), sl.LIF(), example_input=x)
        snn = sl.convert(ann.eval(), (1, 8, 8), Synapse("alpha", 0.005))
        assert any(len(s.sources) == 2 for s in snn.stages)
    one = simulate(snn, x, presentation_time=0.1, batch_size=3, precision="float64",
                   block_steps=1)
    assert float(one.layer_counts[:, -1].sum()) > 0  # the last hidden layer spiked
    for block in (7, 100):
        res = simulate(snn, x, presentation_time=0.1, batch_size=3, precision="float64",
                       block_steps=block)
        assert torch.equal(res.layer_counts, one.layer_counts)
        assert torch.equal(res.layer_step_counts, one.layer_step_counts)
        torch.testing.assert_close(res.outputs, one.outputs, rtol=1e-12, atol=1e-12)
    # the pure functions: one block from a state == single steps from it, state included
    plan = Simulator(snn, batch_size=2, init="uniform")
    s0 = set_input(plan, initial_state(plan), x[:2])
    outs, totals, s_block = run_steps(plan, s0, 9)
    s = s0
    for t in range(9):
        out, s = step(plan, s)
        torch.testing.assert_close(outs[t], out, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(totals[t], torch.stack(
            [c if c.dim() == 1 else c.flatten(1).sum(1, dtype=torch.float64)
             for c in s.count]))
    assert s_block.onset_steps == s.onset_steps == 9
    for a, b in zip(s_block.neurons, s.neurons, strict=True):
        for ta, tb in zip(a, b, strict=True):
            torch.testing.assert_close(ta, tb, rtol=1e-5, atol=1e-5)
    # default block length: bounded by memory, at least one step, whole compiled calls
    from softlif.simulate import UNROLL_STEPS

    n_auto = [auto_block_steps(snn, b) for b in (1, 32, 1000, 3000, 10**9)]
    assert all(1 <= n <= 25 for n in n_auto) and n_auto[-1] == 1
    assert all(n % UNROLL_STEPS == 0 for n in n_auto if n >= UNROLL_STEPS)
    assert len(set(n_auto)) >= 3  # the memory bound was exercised
    with pytest.raises(ValueError, match="block_steps"):
        simulate(snn, x, presentation_time=0.01, block_steps=0)
