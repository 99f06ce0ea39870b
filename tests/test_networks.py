"""The paper's networks: exact neuron and synapse counts (SPEC section 4)."""

import pytest
import torch

from softlif.activations import RateNeuron
from softlif.networks import NETS, build, get_spec, layer_table

EXPECTED = {
    # name: (neurons, synapses, per-layer neurons)
    "mnist": (27_088, 11_623_200, [12_544, 12_544, 2_000, 0]),
    "svhn": (27_088, None, [12_544, 12_544, 2_000, 0]),
    "cifar10": (49_536, 19_512_576, [36_864, 9_216, 2_304, 1_152, 0]),
    "cifar100": (49_536, None, [36_864, 9_216, 2_304, 1_152, 0]),
    "imagenet": (493_184, 714_188_480,
                 [193_600, 139_968, 64_896, 43_264, 43_264, 4_096, 4_096, 0]),
}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_exact_counts(name):
    neurons, synapses, per_layer = EXPECTED[name]
    rows = layer_table(NETS[name])
    assert [r.neurons for r in rows] == per_layer
    assert sum(r.neurons for r in rows) == neurons
    if synapses is not None:
        assert sum(r.synapses for r in rows) == synapses


def test_per_layer_synapses_and_flops():
    assert [r.synapses for r in layer_table(NETS["mnist"])] == [
        313_600, 5_017_600, 6_272_000, 20_000]
    assert [r.synapses for r in layer_table(NETS["cifar10"])] == [
        2_764_800, 14_745_600, 1_327_104, 663_552, 11_520]
    # SPEC section 5: 39,074,688 flops per image for the CIFAR-10 ANN
    assert sum(r.flops for r in layer_table(NETS["cifar10"])) == 39_074_688


@pytest.mark.parametrize("name", ["mnist", "cifar10", "cifar100"])
@pytest.mark.parametrize("activation", ["softlif", "relu"])
def test_built_nets_match_table(name, activation):
    spec = NETS[name]
    net = build(spec, activation).eval()
    x = torch.zeros(2, *spec.input_shape)
    assert net(x).shape == (2, spec.classes)
    # neurons: each activation's output size equals the table's count
    sizes = []
    h = x
    for m in net:
        h = m(h)
        if isinstance(m, (RateNeuron, torch.nn.ReLU)):
            sizes.append(h[0].numel())
    assert sizes == [r.neurons for r in layer_table(spec)][:-1]


def test_imagenet_builds_with_right_shapes():
    spec = NETS["imagenet"]
    net = build(spec, "relu")
    shapes = []
    h = torch.zeros(1, *spec.input_shape)
    for m in net:
        h = m(h)
        if isinstance(m, torch.nn.ReLU):
            shapes.append(tuple(h.shape[1:]))
    assert shapes[:2] == [(64, 55, 55), (192, 27, 27)]


def test_unknown_net():
    with pytest.raises(ValueError, match="cifar10"):
        get_spec("lenet")


@pytest.mark.parametrize("name", ["mnist", "svhn", "cifar10", "imagenet"])
def test_paper_init_uses_the_authors_std_and_bias(name):
    """SPEC section 4: Gaussian weights of std initW per layer, biases constant."""
    from softlif.networks import PAPER_INIT, Dropout, Pool, init_paper
    from softlif.train import weight_layers

    spec = NETS[name]
    if name == "imagenet":  # 60M weights: build only the table check on the small nets
        assert len(PAPER_INIT[name]) == sum(
            not isinstance(x, (Pool, Dropout)) for x in spec.layers)
        return
    model = build(spec, "relu")
    init_paper(model, spec, torch.Generator().manual_seed(0))
    for layer, (std, bias) in zip(weight_layers(model), PAPER_INIT[name], strict=True):
        w = layer.weight.detach().double()
        assert abs(w.mean().item()) < 5 * std / w.numel() ** 0.5
        assert w.std().item() == pytest.approx(std, rel=0.1)
        assert torch.all(layer.bias == bias)
    with pytest.raises(ValueError, match="weight layers"):
        init_paper(torch.nn.Sequential(torch.nn.Linear(2, 2)), spec)
