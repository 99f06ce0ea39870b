"""NIR export and import: the exported nodes carry softlif's dynamics (checked against the
closed forms of NIR's equations), and export -> file -> import gives the same spikes."""

import importlib
import math
import os
import warnings

import numpy as np
import pytest
import torch
from test_graph import ResNet, _randomise_bn
from torch import nn

import softlif as sl
from softlif.convert import ConversionError
from softlif.layers import LocallyConnected2d
from softlif.networks import build, get_spec

# CI installs nir (the test extra): missing there, a failure, not a skip
nir = importlib.import_module("nir") if os.environ.get("CI") == "true" else pytest.importorskip("nir")


def _round_trip(snn, tmp_path, dt=0.001):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = sl.to_nir(snn, dt=dt)
    path = tmp_path / "net.nir"
    nir.write(path, graph)
    return graph, sl.from_nir(nir.read(path))


def _same_simulation(a, b, images, **kw):
    ra = sl.simulate(a, images, presentation_time=0.05, batch_size=len(images), **kw)
    rb = sl.simulate(b, images, presentation_time=0.05, batch_size=len(images), **kw)
    assert int(ra.layer_counts.sum()) > 0  # something fired
    assert torch.equal(ra.layer_counts, rb.layer_counts)
    torch.testing.assert_close(ra.outputs, rb.outputs, rtol=1e-5, atol=1e-5)
    return ra


def _resnet_snn(neuron, synapse=None):
    torch.manual_seed(0)
    model = _randomise_bn(ResNet())
    x = torch.randn(4, 1, 16, 16)
    ann = sl.prepare(model, neuron, example_input=x).eval()
    for m in ann.modules():  # weights that make the hidden layers fire
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            m.weight.data *= 3.0
    snn = sl.convert(ann, (1, 16, 16), synapse)
    assert sl.verify(ann, snn, x) < 1e-4
    return snn, x


def test_residual_net_round_trips_through_a_nir_file_spike_for_spike(tmp_path):
    snn, x = _resnet_snn(sl.LIF(tau_rc=0.02, tau_ref=0.002))
    graph, back = _round_trip(snn, tmp_path)
    # the residual addition: two edges into the block's second population (the shortcut
    # pools population 0's filtered spikes)
    assert sorted(a for a, b in graph.edges if b == "pop2") == ["l2.block.c2", "l2.pool"]
    assert [s.sources for s in back.stages] == [s.sources for s in snn.stages]
    assert back.synapse == snn.synapse
    assert [s.neuron for s in back.stages] == [s.neuron for s in snn.stages]
    _same_simulation(snn, back, torch.rand(6, 1, 16, 16) * 2)
    # energy counts come from the imported graph as from the original
    a, b = sl.energy(snn, rates_hz=[10.0] * 3), sl.energy(back, rates_hz=[10.0] * 3)
    assert a.synops_per_s == pytest.approx(b.synops_per_s)
    assert a.chip_synops_per_s == pytest.approx(b.chip_synops_per_s)


@pytest.mark.parametrize("synapse", [sl.Synapse("lowpass", 0.004), sl.Synapse("none", 0.0)])
def test_other_synapses_and_the_if_neuron_round_trip(tmp_path, synapse):
    snn, _ = _resnet_snn(sl.IF(tau=0.01, tau_ref=0.001, bias=0.8), synapse)
    graph, back = _round_trip(snn, tmp_path)
    kind = {1: nir.LI, 0: nir.Scale}[synapse.order]
    assert isinstance(graph.nodes["syn0"], kind) and isinstance(graph.nodes["pop0"], nir.IF)
    assert back.synapse == snn.synapse
    _same_simulation(snn, back, torch.rand(6, 1, 16, 16) * 2)


def test_a_population_fed_by_the_input_and_by_spikes_round_trips(tmp_path):
    class Skip(nn.Module):  # the analog input reaches population 1 unfiltered, beside spikes
        def __init__(self):
            super().__init__()
            self.a, self.b, self.c = nn.Linear(5, 6), nn.Linear(6, 4), nn.Linear(5, 4)
            self.n1, self.n2 = sl.RateNeuron(sl.LIF()), sl.RateNeuron(sl.LIF())
            self.out = nn.Linear(4, 3)

        def forward(self, x):
            return self.out(self.n2(self.b(self.n1(self.a(x))) + self.c(x)))

    torch.manual_seed(0)
    net = Skip().eval()
    for m in net.modules():
        if isinstance(m, nn.Linear):
            m.weight.data *= 4.0
    snn = sl.convert(net, (5,))
    assert [s.sources for s in snn.stages] == [(-1,), (-1, 0), (1,)]
    graph, back = _round_trip(snn, tmp_path)
    assert sorted(a for a, b in graph.edges if b == "pop1") == ["l1.b", "l1.c"]
    assert ("input", "l1.c") in graph.edges and ("syn0", "l1.b") in graph.edges
    _same_simulation(snn, back, torch.rand(8, 5) * 2)


def test_the_paper_mnist_net_round_trips(tmp_path):
    spec = get_spec("mnist")
    ann = build(spec).eval()
    snn = sl.convert(ann, spec.input_shape)
    graph, back = _round_trip(snn, tmp_path)
    assert isinstance(graph.nodes["syn0"], nir.CubaLI)  # the alpha synapse
    torch.manual_seed(1)
    _same_simulation(snn, back, torch.rand(4, *spec.input_shape))


def test_exported_nodes_follow_nir_equations_with_softlif_currents():
    """NIR LIF: tau v' = (v_leak - v) + r I, spike at v_threshold, reset to v_reset. With the
    exported values, r I + v_leak must be softlif's current J = gain (W x + b) + bias, and the
    time to threshold from 0, tau log(1 + v_thr / (J - v_thr)), softlif's rate with tau_ref 0.
    The alpha synapse, CubaLI with tau_syn = tau_mem = tau and w_in = amplitude / dt, has DC
    gain w_in r: a 0/1 spike train of rate f Hz (area dt per spike) gives amplitude * f."""
    neuron = sl.LIF(tau_rc=0.03, tau_ref=0.0, gain=1.7, bias=0.4, amplitude=0.05)
    torch.manual_seed(0)
    ann = nn.Sequential(nn.Linear(3, 4), sl.RateNeuron(neuron, mode="hard"), nn.Linear(4, 2))
    with torch.no_grad():  # two of the four neurons above threshold for the x below
        ann[0].weight.copy_(torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 0, 1], [-1, -1, -1]]))
        ann[0].bias.copy_(torch.tensor([0.5, 0.5, 0.5, 0.0]))
    snn = sl.convert(ann.eval(), (3,))
    with pytest.warns(UserWarning, match="refractory"):
        graph = sl.to_nir(snn, dt=0.002)
    lif, syn = graph.nodes["pop0"], graph.nodes["syn0"]
    lin = graph.nodes["l0.0"]
    x = np.array([0.3, -0.2, 0.9])
    current = lif.r * (lin.weight.astype(np.float64) @ x) + lif.v_leak
    w, b = ann[0].weight.detach().double().numpy(), ann[0].bias.detach().double().numpy()
    expected = 1.7 * (w @ x + b) + 0.4
    np.testing.assert_allclose(current, expected, rtol=1e-6)
    above = expected > 1
    assert above.any() and not above.all()
    c, thr = current[above], lif.v_threshold[above]
    period = lif.tau[above] * np.log1p(thr / (c - thr))
    rate = neuron.rate(torch.tensor(expected)).numpy()
    np.testing.assert_allclose(1 / period, rate[above], rtol=1e-5)
    assert np.all(rate[~above] == 0)
    assert np.all(lif.v_reset == 0)
    assert np.all(syn.tau_syn == 0.005) and np.all(syn.tau_mem == 0.005)
    np.testing.assert_allclose(syn.w_in * syn.r * 0.002, 0.05)
    out = graph.nodes["l1.0"]  # the readout keeps its bias: an Affine
    assert isinstance(out, nir.Affine)
    np.testing.assert_allclose(out.bias, ann[2].bias.detach().numpy(), rtol=1e-6)
    assert graph.metadata["softlif_dt_s"] == 0.002
    assert lif.metadata["tau_ref"] == 0.0


def test_a_graph_from_another_tool_is_read_with_weight_one_spikes():
    """Affine -> LIF -> Affine, spikes straight into the next weights (no synapse node, no
    softlif metadata), as snnTorch and Norse write their nets."""
    w1 = np.array([[2.0, 0.0], [0.0, 3.0]], np.float32)
    w2 = np.array([[1.0, -1.0]], np.float32)
    g = nir.NIRGraph(nodes={
        "input": nir.Input(input_type={"input": np.array([2])}),
        "fc1": nir.Affine(weight=w1, bias=np.array([0.5, 0.0], np.float32)),
        "lif": nir.LIF(tau=np.full(2, 0.02), r=np.full(2, 2.0), v_leak=np.zeros(2),
                       v_threshold=np.full(2, 2.0)),
        "fc2": nir.Affine(weight=w2, bias=np.zeros(1, np.float32)),
        "output": nir.Output(output_type={"output": np.array([1])})},
        edges=[("input", "fc1"), ("fc1", "lif"), ("lif", "fc2"), ("fc2", "output")])
    snn = sl.from_nir(g, dt=0.001)
    neuron = snn.stages[0].neuron
    assert snn.synapse.order == 0 and neuron.tau_ref == 0 and neuron.tau_rc == 0.02
    assert neuron.amplitude == pytest.approx(0.001)  # a spike weighs 1 in the next layer
    # J = (r I + v_leak) / v_threshold = W x + b
    x = torch.tensor([[1.0, 0.5]])
    j = neuron.current(snn.stages[0].affine(x))
    torch.testing.assert_close(j, torch.tensor([[2.5, 1.5]]))


def test_what_nir_cannot_hold_is_refused_by_name():
    lc = nn.Sequential(LocallyConnected2d(1, 2, (6, 6), 3), sl.RateNeuron(sl.LIF()),
                       nn.Flatten(), nn.Linear(32, 2))
    snn = sl.convert(lc.eval(), (1, 6, 6))
    with pytest.raises(ConversionError, match="locally connected"):
        sl.to_nir(snn)
    for neuron in (sl.AdaptiveLIF(), sl.QuantizedLIF()):
        net = nn.Sequential(nn.Linear(4, 3), sl.RateNeuron(neuron), nn.Linear(3, 2))
        with pytest.raises(ConversionError, match=f"{type(neuron).__name__} neurons, which no"):
            sl.to_nir(sl.convert(net.eval(), (4,)))

    class Cat(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(4, 3), nn.Linear(4, 3)
            self.n1, self.n2 = sl.RateNeuron(sl.LIF()), sl.RateNeuron(sl.LIF())
            self.out = nn.Linear(6, 2)

        def forward(self, x):
            return self.out(torch.cat([self.n1(self.a(x)), self.n2(self.b(x))], 1))

    snn = sl.convert(Cat().eval(), (4,))
    with pytest.raises(ConversionError, match="cat"):
        sl.to_nir(snn)
    with pytest.raises(ValueError, match="dt"):
        sl.to_nir(snn, dt=0.0)


def test_imports_refuse_what_softlif_cannot_simulate():
    base = {"input": nir.Input(input_type={"input": np.array([2])}),
            "fc": nir.Linear(weight=np.eye(2, dtype=np.float32)),
            "output": nir.Output(output_type={"output": np.array([2])})}
    cuba = nir.CubaLIF(tau_syn=np.full(2, 0.005), tau_mem=np.full(2, 0.02), r=np.ones(2),
                       v_leak=np.zeros(2), v_threshold=np.ones(2))
    g = nir.NIRGraph(nodes={**base, "n": cuba},
                     edges=[("input", "fc"), ("fc", "n"), ("n", "output")])
    with pytest.raises(ConversionError, match="'n' is a CubaLIF"):
        sl.from_nir(g)
    lif = nir.LIF(tau=np.full(2, 0.02), r=np.array([1.0, 2.0]), v_leak=np.zeros(2),
                  v_threshold=np.ones(2))
    g = nir.NIRGraph(nodes={**base, "n": lif},
                     edges=[("input", "fc"), ("fc", "n"), ("n", "output")])
    with pytest.raises(ConversionError, match="r differs between neurons"):
        sl.from_nir(g)
    assert math.isfinite(sl.from_nir(g.__class__(
        nodes={**base, "n": nir.LIF(tau=np.full(2, 0.02), r=np.ones(2), v_leak=np.zeros(2),
                                    v_threshold=np.ones(2))},
        edges=[("input", "fc"), ("fc", "n"), ("n", "output")])).stages[0].neuron.tau_rc)
