"""Conversion keeps every parameter, leaves the ANN alone, and refuses what it cannot do."""

import pytest
import torch
from torch import nn

from softlif.activations import RateNeuron, set_rate_mode
from softlif.convert import ConversionError, VerificationError, convert, verify
from softlif.layers import LocallyConnected2d, avg_pool
from softlif.networks import NETS, build
from softlif.neurons import IF, LIF_MNIST
from softlif.synapses import Synapse


@pytest.mark.parametrize("name", ["mnist", "cifar10"])
@pytest.mark.parametrize("mode", ["soft", "hard"])
def test_converted_rate_net_equals_ann(name, mode):
    torch.manual_seed(0)
    spec = NETS[name]
    ann = build(spec, "softlif")
    set_rate_mode(ann, mode)
    before = {k: v.clone() for k, v in ann.state_dict().items()}
    snn = convert(ann, spec.input_shape, Synapse("lowpass", 0.003))
    x = torch.randn(4, *spec.input_shape)
    assert verify(ann, snn, x) < 1e-4
    # the ANN is untouched (parameters, mode, training flag)
    after = ann.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert ann.training
    assert snn.synapse == Synapse("lowpass", 0.003)
    assert snn.neurons_per_layer == [r for r in [12544, 12544, 2000] ] if name == "mnist" \
        else snn.neurons_per_layer == [36864, 9216, 2304, 1152]


def test_conversion_keeps_biases_of_all_layers_and_drops_dropout():
    torch.manual_seed(1)
    ann = nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1), nn.Sequential(avg_pool(3, 2), nn.Conv2d(3, 4, 3, padding=1)),
        RateNeuron(IF()), nn.Dropout(0.5),
        LocallyConnected2d(4, 2, (3, 3), 1), RateNeuron(LIF_MNIST), nn.Flatten(), nn.Linear(18, 3),
    )
    snn = convert(ann, (1, 7, 7))
    assert len(snn.stages) == 3
    assert snn.stages[0].layer_names == ("0", "1.0", "1.1")
    assert verify(ann, snn, torch.randn(5, 1, 7, 7)) < 1e-5


def test_verify_catches_a_wrong_conversion():
    torch.manual_seed(0)
    ann = build(NETS["mnist"], "softlif")
    snn = convert(ann, (1, 28, 28))
    snn.stages[1].bias.add_(0.5)
    with pytest.raises(VerificationError, match="largest"):
        verify(ann, snn, torch.randn(2, 1, 28, 28))


@pytest.mark.parametrize("layer, hint", [
    (nn.MaxPool2d(2), "average pooling"),
    (nn.BatchNorm2d(4), "folds batch norm"),
    (nn.ReLU(), "RateNeuron"),
    (nn.Tanh(), "only linear layers"),
])
def test_unsupported_layers_raise_clear_errors(layer, hint):
    ann = nn.Sequential(nn.Conv2d(1, 4, 3), layer, RateNeuron(LIF_MNIST), nn.Flatten(),
                        nn.LazyLinear(2))
    with pytest.raises(ConversionError, match=hint) as err:
        convert(ann, (1, 8, 8))
    assert "layer 1 " in str(err.value) or "module '1'" in str(err.value)


def test_non_sequential_and_malformed_nets():
    class Custom(nn.Module):
        def forward(self, x):
            return x

    with pytest.raises(ConversionError, match="no softlif.RateNeuron"):
        convert(Custom(), (1, 4, 4))
    with pytest.raises(ConversionError, match="readout"):
        convert(nn.Sequential(nn.Flatten(), nn.Linear(4, 2), RateNeuron(LIF_MNIST)), (1, 2, 2))
    with pytest.raises(ConversionError, match="two neuron layers"):
        convert(nn.Sequential(nn.Flatten(), nn.Linear(4, 2), RateNeuron(LIF_MNIST),
                              RateNeuron(LIF_MNIST), nn.Linear(2, 2)), (1, 2, 2))


def test_avg_pool_divides_by_in_bounds_pixels():
    x = torch.ones(1, 1, 6, 6)
    x[..., -1] = 4.0
    y = avg_pool(3, 2)(x)  # ceil mode: 3 x 3 output
    assert y.shape[-1] == 3
    # the last window covers columns 4..5 (2 in-bounds pixels): (1 + 4) / 2
    assert float(y[0, 0, 0, -1]) == pytest.approx((3 * 1 + 3 * 4) / 6)
    assert float(y[0, 0, -1, 0]) == pytest.approx(1.0)


def test_locally_connected_matches_a_loop():
    torch.manual_seed(0)
    lc = LocallyConnected2d(2, 3, (5, 4), kernel_size=3, stride=1, padding=1)
    x = torch.randn(2, 2, 5, 4)
    y = lc(x)
    xp = nn.functional.pad(x, (1, 1, 1, 1))
    for i in range(5):
        for j in range(4):
            patch = xp[:, :, i:i + 3, j:j + 3].permute(0, 2, 3, 1).reshape(2, -1)  # (k, k, C)
            torch.testing.assert_close(y[:, :, i, j], patch @ lc.weight[i * 4 + j] +
                                       lc.bias[:, i, j])
    with pytest.raises(ValueError, match="expects input"):
        lc(torch.randn(2, 2, 4, 4))
