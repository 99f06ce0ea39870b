"""Split 8-bit integer maps on spikes (softlif.split_int8) against float64 references and
hand-derived bounds."""

import pytest
import torch
from torch import nn

from softlif import LIF, Synapse, convert, simulate
from softlif.ann import RateNeuron
from softlif.layers import avg_pool
from softlif.simulate import Simulator
from softlif.split_int8 import (
    PARTS,
    SplitInt8Map,
    available,
    input_multiplier,
    split_int8_map,
    split_weight,
)

pytestmark = pytest.mark.skipif(not available(), reason="no oneDNN quantized kernels")

EPS32 = 2.0 ** -24  # float32 unit roundoff


def test_split_weight_remainder_is_within_its_bound():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(8, 3, 5, 5, generator=g) * torch.logspace(-3, 1, 8)[:, None, None, None]
    w[3] = 0.0  # an all-zero channel
    parts, scales = split_weight(w)
    assert len(parts) == PARTS and all(p.dtype == torch.int8 for p in parts)
    assert all(int(p.abs().max()) <= 127 for p in parts)
    recon = sum(p.double() * s.double()[:, None, None, None] for p, s in zip(parts, scales, strict=True))
    resid = (w.double() - recon).abs().amax(dim=(1, 2, 3))
    cmax = w.double().abs().amax(dim=(1, 2, 3))
    # |R| <= s / (2 * 254^2) with s = max|w| / 127, plus the scales' own float32 rounding
    bound = cmax / 127 / (2 * 254 ** 2) + 4 * EPS32 * cmax
    assert bool((resid <= bound).all()), (resid / cmax).tolist()
    assert float(resid[3]) == 0.0
    # hand-checked first part: max |w| maps to +-127
    ch = int(cmax.argmax())
    assert int(parts[0][ch].abs().max()) == 127


def test_input_multiplier_covers_clipped_pooling_windows():
    assert input_multiplier([]) == 1
    assert input_multiplier([avg_pool(2, 2)]) == 4        # windows of 1, 2 or 4 pixels
    assert input_multiplier([avg_pool(3, 2)]) == 36       # 1, 2, 3, 4, 6 or 9 pixels
    assert input_multiplier([avg_pool(3, 2), nn.Flatten()]) == 36
    assert input_multiplier([avg_pool(3, 2), avg_pool(3, 2)]) is None  # 1296 > 255
    assert input_multiplier([nn.Conv2d(1, 1, 1)]) is None
    # every pooled value of 0/1 spikes is an integer over m
    g = torch.Generator().manual_seed(1)
    s = (torch.rand(4, 3, 13, 13, generator=g) < 0.4).float()
    pooled = avg_pool(3, 2)(s) * 36
    assert torch.equal(pooled, pooled.round())


def _abs_bound(x, w, conv_kw, fan_in, cmax):
    """Worst-case error of the split product: the weight remainder on every input plus a few
    float32 roundings of the result's magnitude (sum |w| |x|, from float64)."""
    if conv_kw is None:
        mag = x.double().abs() @ w.double().abs().t()
    else:
        mag = nn.functional.conv2d(x.double().abs(), w.double().abs(), **conv_kw)
    r = cmax / 127 / (2 * 254 ** 2) + 4 * EPS32 * cmax
    shape = (1, -1, 1, 1) if conv_kw is not None else (1, -1)
    return fan_in * r.reshape(shape) + 6 * EPS32 * mag


@pytest.mark.parametrize("kind", ["conv", "pool-conv", "pool-linear"])
def test_split_map_matches_float64_to_float32_accuracy(kind):
    g = torch.Generator().manual_seed(2)
    s = (torch.rand(16, 8, 11, 11, generator=g) < 0.3).float() \
        .contiguous(memory_format=torch.channels_last)
    if kind == "pool-linear":
        pre = [avg_pool(3, 2), nn.Flatten()]
        layer = nn.Linear(8 * 5 * 5, 40)
    else:
        pre = [avg_pool(3, 2)] if kind == "pool-conv" else []
        layer = nn.Conv2d(8, 12, 3, padding=1)
    with torch.no_grad():
        layer.weight.normal_(0, 0.3, generator=g)
        layer.bias.normal_(0, 0.1, generator=g)
    m = nn.Sequential(*pre, layer)
    assert split_int8_map(m) is None  # too short a product to gain, by default
    split = split_int8_map(m, min_fan_in=1, min_out=1)
    assert isinstance(split, SplitInt8Map)
    with torch.no_grad():
        y = split(s)
        y32 = m(s)
        m64 = nn.Sequential(*pre, layer).double()
        x64 = nn.Sequential(*pre)(s.double()) if pre else s.double()
        y64 = m64(s.double())
    assert y.dtype == torch.float32 and y.shape == y64.shape
    w = layer.weight.detach()
    cmax = w.double().abs().flatten(1).amax(1)
    conv_kw = None if isinstance(layer, nn.Linear) else {"padding": 1}
    fan_in = w[0].numel()
    bound = _abs_bound(x64, w, conv_kw, fan_in, cmax)
    err = (y.double() - y64).abs()
    assert bool((err <= bound).all()), float((err - bound).max())
    # and of the float32 map's own order: within 4x its worst error
    err32 = float((y32.double() - y64).abs().max())
    assert float(err.max()) <= 4 * err32 + 1e-7


def _conv_net() -> nn.Sequential:
    torch.manual_seed(0)
    neuron = LIF(tau_rc=0.02, tau_ref=0.002, amplitude=0.063)
    net = nn.Sequential(
        nn.Conv2d(1, 6, 3, padding=1), RateNeuron(neuron), avg_pool(3, 2),
        nn.Conv2d(6, 8, 3, padding=1), RateNeuron(neuron), nn.Flatten(),
        nn.Linear(8 * 5 * 5, 4))
    with torch.no_grad():
        net[0].weight.mul_(3.0)
        net[3].weight.mul_(4.0)
    return net.eval()


def test_simulation_with_split_maps_matches_float_maps(monkeypatch):
    import softlif.split_int8

    monkeypatch.setattr(softlif.split_int8, "MIN_FAN_IN", 1)  # this net's maps are short
    monkeypatch.setattr(softlif.split_int8, "MIN_OUT", 1)
    snn = convert(_conv_net(), (1, 10, 10), Synapse("alpha", 0.005))
    x = torch.rand(6, 1, 10, 10, generator=torch.Generator().manual_seed(3)) * 2
    sim = Simulator(snn, 2, split_int8=True, event_driven=False)
    assert sum(isinstance(m, SplitInt8Map) for m in sim.linears) == 2  # conv and readout
    assert not any(isinstance(m, SplitInt8Map)
                   for m in Simulator(snn, 2, split_int8=False).linears)
    a = simulate(snn, x, presentation_time=0.15, split_int8=False, event_driven=False)
    b = simulate(snn, x, presentation_time=0.15, split_int8=True, event_driven=False)
    ref = simulate(snn, x, presentation_time=0.15, precision="float64")
    assert float(a.layer_counts[:, 1].sum()) > 0  # the second layer spikes
    # a float32 path departs from float64 by rare spike flips; so must the split path, and
    # by no more than the float maps do (plus a small margin)
    dev = [float((r.outputs.mean(0).double() - ref.outputs.mean(0)).abs().mean())
           for r in (a, b)]
    assert dev[1] <= 1.5 * dev[0] + 1e-3 * float(ref.outputs.mean(0).abs().mean())
    assert float((a.layer_counts - b.layer_counts).abs().max()) \
        <= 0.02 * float(a.layer_counts.max()) + 1


def test_default_split_only_for_long_products_with_enough_outputs():
    from softlif.split_int8 import MIN_FAN_IN, MIN_OUT

    assert split_int8_map(nn.Linear(MIN_FAN_IN, MIN_OUT)) is not None
    assert split_int8_map(nn.Linear(MIN_FAN_IN - 1, MIN_OUT)) is None   # short product
    assert split_int8_map(nn.Linear(MIN_FAN_IN, 10)) is None            # a readout
    assert split_int8_map(nn.Sequential(nn.Conv2d(64, 64, 5), nn.Conv2d(64, 64, 1))) is None
    assert split_int8_map(nn.Conv2d(64, 64, 5, padding="same")) is None
