"""Own models: prepare (BN folding, activation swap, pooling), graph conversion, simulation of
graph nets against an independent step loop, energy counts from the graph, fine-tuning."""

import copy
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import softlif as sl
from softlif.convert import ConversionError
from softlif.energy import spiking_layer_table
from softlif.graph import convert_graph
from softlif.networks import NETS, build, layer_table
from softlif.neurons import lif_step
from softlif.synapses import Synapse


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.b1 = nn.BatchNorm2d(c)
        self.c2 = nn.Conv2d(c, c, 3, padding=1)
        self.b2 = nn.BatchNorm2d(c)

    def forward(self, x):
        h = F.relu(self.b1(self.c1(x)))
        return torch.relu(self.b2(self.c2(h)) + x)


class ResNet(nn.Module):
    def __init__(self, pool=None):
        super().__init__()
        self.stem = nn.Conv2d(1, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.act = nn.ReLU()
        self.pool = pool or nn.AvgPool2d(2)
        self.block = Block(8)
        self.gap = nn.AdaptiveAvgPool2d(2)
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        x = self.pool(self.act(self.bn(self.stem(x))))
        x = self.block(x)
        x = self.gap(x)
        return self.fc(torch.flatten(x, 1))


def _randomise_bn(model):
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            m.running_mean.copy_(torch.rand(m.num_features, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) * 1.5 + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(m.num_features, generator=g) * 0.4 - 0.2)
    return model.eval()


def test_batchnorm_folding_matches_the_original_and_leaves_it_alone():
    torch.manual_seed(0)
    model = _randomise_bn(nn.Sequential(nn.Conv2d(2, 4, 3, bias=False), nn.BatchNorm2d(4),
                                        nn.Flatten(), nn.Linear(64, 5), nn.BatchNorm1d(5)))
    before = copy.deepcopy(model.state_dict())
    x = torch.randn(3, 2, 6, 6)
    prepared = sl.prepare(model, sl.LIF(), example_input=x)
    assert not any(isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d) for m in prepared.modules())
    torch.testing.assert_close(prepared(x), model(x), rtol=1e-5, atol=1e-5)
    for k, v in model.state_dict().items():  # the user's model is untouched
        assert torch.equal(v, before[k]), k


def test_prepare_swaps_every_relu_and_converts_a_residual_net():
    torch.manual_seed(0)
    model = _randomise_bn(ResNet())
    x = torch.randn(4, 1, 16, 16)
    ann = sl.prepare(model, sl.LIF(), example_input=x)
    kinds = [type(m).__name__ for m in ann.modules()]
    assert kinds.count("RateNeuron") == 3 and "ReLU" not in kinds
    assert "AdaptiveAvgPool2d" not in kinds  # 4x4 -> 2x2: exactly a 2x2 average pool
    snn = sl.convert(ann.eval(), (1, 16, 16))
    assert [s.sources for s in snn.stages] == [(-1,), (0,), (0, 1), (2,)]
    assert sl.verify(ann, snn, x) < 1e-4
    assert isinstance(model.act, nn.ReLU)  # original unchanged


def test_relu_spellings_all_become_neurons():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.l1, self.l2, self.l3, self.l4 = (nn.Linear(4, 4) for _ in range(4))
            self.l5 = nn.Linear(4, 2)
            self.r6 = nn.ReLU6()

        def forward(self, x):
            x = F.relu(self.l1(x))
            x = torch.relu(self.l2(x))
            x = self.l3(x).relu()
            x = self.r6(self.l4(x))
            return self.l5(x)

    ann = sl.prepare(M(), sl.IF(), example_input=torch.zeros(1, 4))
    assert sum(isinstance(m, sl.RateNeuron) for m in ann.modules()) == 4
    assert len(sl.convert(ann, (4,)).stages) == 5


def test_maxpool_is_refused_or_swapped_with_a_warning():
    model = ResNet(pool=nn.MaxPool2d(2)).eval()
    x = torch.zeros(1, 1, 16, 16)
    with pytest.raises(ConversionError, match="max pooling at 'pool'.*maxpool='avg'"):
        sl.prepare(model, sl.LIF(), example_input=x)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        ann = sl.prepare(model, sl.LIF(), example_input=x, maxpool="avg")
    assert any("fine-tune" in str(m.message) for m in w)
    assert not any(isinstance(m, nn.MaxPool2d) for m in ann.modules())


@pytest.mark.parametrize("make, hint", [
    (lambda: nn.Sequential(nn.Linear(4, 4), nn.Sigmoid(), nn.Linear(4, 2)), "Sigmoid"),
    (lambda: nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4)), None),  # foldable: fine
])
def test_prepare_names_what_it_cannot_handle(make, hint):
    model = make().eval()
    if hint is None:
        sl.prepare(model, sl.LIF(), example_input=torch.zeros(2, 4))
        return
    with pytest.raises(ConversionError, match=hint):
        sl.prepare(model, sl.LIF(), example_input=torch.zeros(2, 4))


def test_batchnorm_that_follows_no_layer_is_refused():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.bn = nn.Linear(4, 4), nn.Linear(4, 4), nn.BatchNorm1d(4)

        def forward(self, x):
            return self.bn(self.a(x) + self.b(x))

    with pytest.raises(ConversionError, match="does not directly follow"):
        sl.prepare(M().eval(), sl.LIF(), example_input=torch.zeros(2, 4))


def test_nonlinear_operations_between_neurons_are_refused():
    class Square(nn.Module):
        def __init__(self):
            super().__init__()
            self.l1, self.n, self.l2 = nn.Linear(4, 4), sl.RateNeuron(sl.LIF()), nn.Linear(4, 2)

        def forward(self, x):
            h = self.n(self.l1(x))
            return self.l2(h * h)

    class Offset(Square):
        def forward(self, x):
            return self.l2(self.n(self.l1(x)) + 1.0)

    with pytest.raises(ConversionError, match="multiplies two signals|not linear"):
        sl.convert(Square(), (4,))
    with pytest.raises(ConversionError, match="not affine"):
        sl.convert(Offset(), (4,))


def test_a_chain_through_the_graph_path_simulates_bit_for_bit_as_before():
    torch.manual_seed(0)
    ann = build(NETS["mnist"], "softlif").eval()
    x = torch.rand(3, 1, 28, 28) * 2
    chain, graph = sl.convert(ann, (1, 28, 28)), convert_graph(ann, (1, 28, 28))
    assert [s.sources for s in graph.stages] == [s.sources for s in chain.stages]
    # dense float maps in both: the chain's fully connected maps would otherwise run
    # event-driven or in split int8 (plain-chain optimisations), summing in another order
    kw = {"event_driven": False, "split_int8": False}
    a = sl.simulate(chain, x, presentation_time=0.03, batch_size=2, **kw)
    b = sl.simulate(graph, x, presentation_time=0.03, batch_size=2, **kw)
    assert torch.equal(a.outputs, b.outputs) and torch.equal(a.layer_counts, b.layer_counts)


class Skips(nn.Module):
    """Populations fed by the input and by spikes at once, a skip into the readout."""

    def __init__(self, neuron):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(6, 5), nn.Linear(5, 4), nn.Linear(6, 4)
        self.fc4, self.fc5 = nn.Linear(4, 3), nn.Linear(5, 3)
        self.n1, self.n2 = sl.RateNeuron(neuron), sl.RateNeuron(neuron)

    def forward(self, x):
        h1 = self.n1(self.fc1(x))
        h2 = self.n2(self.fc2(h1) + self.fc3(x))
        return self.fc4(h2) + self.fc5(h1)


def test_graph_simulation_matches_an_independent_step_loop():
    """Reference: float64, each spike train filtered *before* its weights (as Nengo's
    connections do), the analog input unfiltered; the simulator filters after the weights."""
    torch.manual_seed(3)
    neuron = sl.LIF(tau_rc=0.02, tau_ref=0.002, amplitude=0.05)
    model = Skips(neuron)
    for layer in (model.fc1, model.fc2, model.fc3):
        layer.bias.data.add_(1.0)
    x = torch.rand(2, 6)
    snn = sl.convert(model, (6,), Synapse("lowpass", 0.005))
    dt, steps = 0.001, 60
    res = sl.simulate(snn, x, presentation_time=steps * dt, dt=dt, batch_size=2,
                      reset=True)
    d = torch.float64
    m = copy.deepcopy(model).to(d)
    a = float(torch.exp(torch.tensor(-dt / 0.005, dtype=d)))
    xd = x.to(d)
    v1, r1, v2, r2 = (torch.zeros(2, 5, dtype=d), torch.zeros(2, 5, dtype=d),
                      torch.zeros(2, 4, dtype=d), torch.zeros(2, 4, dtype=d))
    f1, f2 = torch.zeros(2, 5, dtype=d), torch.zeros(2, 4, dtype=d)  # filtered spike trains
    count1 = count2 = 0.0
    outs = []
    for _ in range(steps):
        s1, v1, r1 = lif_step(neuron.current(m.fc1(xd)), v1, r1, dt, 0.02, 0.002)
        f1 = a * f1 + (1 - a) * s1 * neuron.amplitude / dt
        j2 = m.fc2(f1) + m.fc3(xd)
        s2, v2, r2 = lif_step(neuron.current(j2), v2, r2, dt, 0.02, 0.002)
        f2 = a * f2 + (1 - a) * s2 * neuron.amplitude / dt
        outs.append(m.fc4(f2) + m.fc5(f1))
        count1 += float(s1.sum())
        count2 += float(s2.sum())
    assert count1 > 10 and count2 > 10
    assert res.layer_counts.sum(0).tolist() == [count1, count2]
    torch.testing.assert_close(res.outputs.double(), torch.stack(outs), rtol=1e-4, atol=1e-4)


def test_energy_counts_from_the_graph_equal_the_paper_tables():
    for name in ("mnist", "cifar10"):
        spec = NETS[name]
        snn = sl.convert(build(spec, "softlif"), spec.input_shape)
        got = [(r.neurons, r.synapses, r.chip_synapses) for r in spiking_layer_table(snn)]
        want = [(r.neurons, r.synapses, r.chip_synapses) for r in layer_table(spec)]
        assert got == want, name


def test_energy_of_a_graph_net_counts_every_source():
    model = Skips(sl.LIF())
    snn = sl.convert(model, (6,))
    rows = spiking_layer_table(snn)
    # by hand: fc1 6x5 from the input; fc2 5x4 from n1 + fc3 6x4 from the input;
    # readout fc4 4x3 from n2 + fc5 5x3 from n1
    assert [(r.sources, r.source_synapses) for r in rows] == [
        ((-1,), (30,)), ((-1, 0), (24, 20)), ((0, 1), (15, 12))]
    rep = sl.energy(snn, rates_hz=[10.0, 20.0], presentation_time=0.1, dt=0.001)
    assert rep.synops_per_s == pytest.approx(20 * 10.0 + 15 * 10.0 + 12 * 20.0)
    assert rep.first_layer_flops == 2 * (30 + 24)
    assert rep.ann_flops == 2 * (30 + 44 + 27) + 5 + 4


def test_fit_fine_tunes_a_prepared_model_from_a_dataloader():
    torch.manual_seed(0)
    x = torch.randn(256, 1, 8, 8)
    y = (x.mean((1, 2, 3)) > 0).long()
    loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True)
    relu = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                         nn.Linear(144, 2)).eval()
    ann = sl.prepare(relu, sl.LIF(), example_input=x[:1])
    hist = sl.fit(ann, loader, sl.TrainConfig(epochs=4, lr=0.01, precision="float32"),
                  test_loader=loader, progress=False, log=lambda s: None)
    assert hist[-1]["train_loss"] < hist[0]["train_loss"]
    assert hist[-1]["test_error"] < 0.2 and hist[-1]["test_error_hard"] < 0.25
    neurons = [m for m in ann.modules() if isinstance(m, sl.RateNeuron)]
    assert neurons[0].neuron.smoothing == pytest.approx(0.002)  # annealed to anneal_to


def test_public_api_names_resolve():
    for name in sl.__all__:
        assert getattr(sl, name) is not None, name
    with pytest.raises(AttributeError):
        sl.no_such_name  # noqa: B018
