"""Conversion diagnostics: currents read back from the simulator, per-neuron rate bins, hybrid
nets cut at a layer."""

import math

import pytest
import torch
from torch import nn

import softlif as sl
from softlif.diagnose import hybrid_input, hybrid_network, layer_statistics, rate_bins
from softlif.errors import SoftlifError


def _net(seed=0):
    """8 -> 24 LIF -> 16 LIF -> 3, weights scaled so both layers fire tens of Hz."""
    torch.manual_seed(seed)
    lif = sl.LIF(tau_rc=0.02, tau_ref=0.002, amplitude=0.01)
    model = nn.Sequential(nn.Linear(8, 24), sl.RateNeuron(lif), nn.Linear(24, 16),
                          sl.RateNeuron(lif), nn.Linear(16, 3)).eval()
    with torch.no_grad():
        model[2].weight.mul_(3.0)
    return sl.convert(model, (8,)), torch.randn(40, 8)


def test_currents_are_the_filtered_spikes_through_the_next_weights():
    snn, x = _net()
    sim = sl.Simulator(snn, batch_size=4)
    sim.set_input(x[:4])
    spikes, currents = [], []
    for _ in range(60):
        sim.step()
        spikes.append(sim.spikes[0].clone())
        currents.append(sim.current(1).clone())
    # independently: alpha-filter the 0/1 trains (height amplitude / dt), then the affine map
    st, lif = snn.stages[1], snn.stages[1].neuron
    trains = torch.stack(spikes) * snn.stages[0].neuron.amplitude / sim.dt
    filtered = snn.synapse.filt(trains, dt=sim.dt)
    expect = lif.gain * (st.linear(filtered) + st.bias) + lif.bias
    torch.testing.assert_close(torch.stack(currents), expect, rtol=1e-5, atol=1e-5)
    # the first layer's current is the constant affine image of the input
    first = snn.stages[0]
    torch.testing.assert_close(sim.current(0), first.neuron.gain * first.affine(x[:4])
                               + first.neuron.bias, rtol=1e-6, atol=1e-6)


def test_rate_bins_by_hand():
    predicted = torch.tensor([0.0, 0.0, 3.0, 4.0, 30.0, 60.0])
    measured = torch.tensor([1.0, 0.0, 3.0, 5.0, 24.0, 50.0])
    rows = rate_bins(predicted, measured, edges=(0.0, 1e-9, 10.0, 100.0, math.inf))
    assert [r["neurons"] for r in rows] == [2, 2, 2]
    assert rows[0]["measured_hz"] == 0.5 and math.isnan(rows[0]["ratio"])
    assert rows[1]["predicted_hz"] == 3.5 and rows[1]["ratio"] == pytest.approx(8 / 7)
    assert rows[2]["ratio"] == pytest.approx(74 / 90)


def test_hybrids_cut_the_net_at_each_layer():
    snn, x = _net()
    # cut before the second hidden layer: it fires at its predicted rates, driven by the
    # first layer's rates as a constant current (no spike-train fluctuations)
    mid = hybrid_network(snn, 1)
    res = sl.simulate(mid, hybrid_input(snn, x, 1), presentation_time=1.0, batch_size=40,
                      reset=True)
    rates: list[torch.Tensor] = []
    snn.rate_forward(x, rates=rates)
    measured = res.layer_counts[:, 0] / (1.0 * 16)
    torch.testing.assert_close(measured.float(), rates[1].mean(1), rtol=0.02, atol=1.0)
    for k in (0, 2):
        with pytest.raises(ValueError, match="k must be in 1..1"):
            hybrid_network(snn, k)


def test_a_cut_across_a_skip_connection_is_refused():
    class Skip(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.c = nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 4)
            self.n1, self.n2, self.n3 = (sl.RateNeuron(sl.LIF()) for _ in range(3))
            self.out = nn.Linear(4, 2)

        def forward(self, x):
            h = self.n1(self.a(x))
            return self.out(self.n3(self.c(self.n2(self.b(h))) + h))

    snn = sl.convert(Skip().eval(), (4,))
    assert set(hybrid_network(snn, 1).stages[1].sources) == {0, -1}  # shortcut: the input
    with pytest.raises(SoftlifError, match="crosses a skip connection"):
        hybrid_network(snn, 2)


def test_layer_statistics_split_the_rate_error():
    snn, x = _net()
    stats, pred = layer_statistics(snn, x, presentation_time=0.5, c0=0.1, batch_size=20)
    assert pred.shape == (40,) and len(stats) == 2
    first, second = stats
    # the first layer sees a constant current: its mean is the rate net's, and the measured
    # rate is the curve's within one spike per window
    torch.testing.assert_close(first.rate_at_mean_hz, first.predicted_hz, rtol=1e-5, atol=1e-3)
    torch.testing.assert_close(first.mean_rate_hz, first.rate_at_mean_hz, rtol=1e-6,
                               atol=1e-6)
    assert float((first.measured_hz - first.predicted_hz).abs().max()) <= 1 / 0.4 + 1e-6
    # the second layer's mean current follows from the first layer's measured rates, and
    # fluctuations move mean_t rate(J(t)) off rate(mean J)
    s = second.summary()
    assert s["predicted_hz"] > 5 and abs(s["measured_over_predicted"] - 1) < 0.3
    assert float((second.mean_rate_hz - second.rate_at_mean_hz).abs().max()) > 0


def test_current_attribution_by_hand():
    # 2 inputs -> 2 LIF -> 1 LIF -> readout; the second layer's weights [2, -1] and bias 0.5,
    # gain 1.5, bias 0.25: J = 1.5 * (0.01 * (2 r0 - r1) + 0.5) + 0.25 with amplitude 0.01
    from softlif.diagnose import LayerStatistics, current_attribution

    lif = sl.LIF(tau_rc=0.02, tau_ref=0.002, amplitude=0.01)
    lif2 = sl.LIF(tau_rc=0.02, tau_ref=0.002, gain=1.5, bias=0.25)
    model = nn.Sequential(nn.Linear(2, 2), sl.RateNeuron(lif), nn.Linear(2, 1),
                          sl.RateNeuron(lif2), nn.Linear(1, 1)).eval()
    with torch.no_grad():
        model[2].weight.copy_(torch.tensor([[2.0, -1.0]]))
        model[2].bias.fill_(0.5)
    snn = sl.convert(model, (2,))
    gain, nbias = 1.5, 0.25
    pred = torch.tensor([[0.0, 40.0]])  # neuron 0 predicted silent, neuron 1 active
    meas = torch.tensor([[3.0, 36.0]])
    z = torch.zeros(1, 2)
    first = LayerStatistics("a", meas, pred, z, z, z)
    j_meas = torch.tensor([[1.7]])
    second = LayerStatistics("b", z[:, :1], z[:, :1], j_meas, z[:, :1], z[:, :1])
    rows = current_attribution(snn, [first, second], torch.zeros(1, 2))
    assert rows[0] is None

    def j(r0, r1):
        return gain * (0.01 * (2 * r0 - r1) + 0.5) + nbias

    c = rows[1]
    assert c["j_predicted"] == pytest.approx(j(0, 40))
    assert c["j_silent"] == pytest.approx(j(3, 40))
    assert c["j_active"] == pytest.approx(j(0, 36))
    assert c["j_both"] == pytest.approx(j(3, 36))
    assert c["j_residual"] == pytest.approx(1.7 - j(3, 36))
    assert c["rate_silent_hz"] == pytest.approx(float(lif2.rate(torch.tensor(j(3, 40)))),
                                                rel=1e-5)
