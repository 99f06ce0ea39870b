"""Choosing the test images: prefix vs fixed shuffled order, and spotting a class-sorted set."""

import numpy as np
import pytest
import torch

from softlif.evaluate import select_test, sorted_by_class


def test_select_test_prefix_and_shuffled_order():
    images = np.arange(1000, dtype=np.int16).reshape(1000, 1, 1, 1)  # image i holds i
    labels = np.repeat(np.arange(10), 100)  # sorted by class, like the JPEG CIFAR-10 test set
    x, y = select_test(images, labels, 200)
    assert torch.equal(y, torch.as_tensor(labels[:200])) and set(y.tolist()) == {0, 1}
    assert sorted_by_class(y)
    xs, ys = select_test(images, labels, 200, "shuffled")
    assert len(set(xs.flatten().tolist())) == 200  # distinct images
    assert set(ys.tolist()) == set(range(10)) and not sorted_by_class(ys)
    xs2, ys2 = select_test(images, labels, 200, "shuffled")
    assert torch.equal(xs, xs2) and torch.equal(ys, ys2)  # repeatable
    x_all, _ = select_test(images, labels, None, "shuffled")
    assert sorted(x_all.flatten().tolist()) == sorted(images.flatten().tolist())
    assert len(select_test(images, labels, 5000)[0]) == 1000


def test_same_simulation_ignores_how_and_fills_missing_fields():
    from softlif.evaluate import SimSettings, same_simulation

    now = SimSettings(tau_s=0.005).__dict__
    # written before float_maps and cuda_graph existed, on another device: the same run
    old = {k: v for k, v in now.items() if k not in ("float_maps", "cuda_graph")}
    assert same_simulation({**old, "device": "cuda"}, now)
    assert same_simulation({**now, "cuda_graph": False}, now)
    assert not same_simulation({**now, "float_maps": True}, now)  # other maps: other rounding
    assert not same_simulation({**now, "tau_s": 0.002}, now)
    assert not same_simulation(None, now)


def test_layer_activity_counts_silent_units_and_rates_by_hand():
    import math

    from torch import nn

    from softlif.activations import RateNeuron
    from softlif.convert import convert
    from softlif.evaluate import layer_activity
    from softlif.neurons import LIF

    lif = LIF(tau_rc=0.02, tau_ref=0.002)
    # unit 0 never fires (current -1 - x < 0 for x >= 0), unit 1 fires on x = 1 only (x - 0.5),
    # unit 2 on every image (1 + x); readout ignored
    fc = nn.Linear(1, 3)
    with torch.no_grad():
        fc.weight.copy_(torch.tensor([[-1.0], [1.0], [1.0]]))
        fc.bias.copy_(torch.tensor([-1.0, -0.5, 1.0]))
    ann = nn.Sequential(fc, RateNeuron(lif), nn.Linear(3, 2))
    snn = convert(ann, (1,))
    x = torch.tensor([[0.0], [1.0], [0.0], [1.0]])

    def rate(z: float) -> float:  # the LIF closed form; the neuron's own bias 1 is in z > 0
        return 1.0 / (0.002 + 0.02 * math.log1p(1.0 / z)) if z > 0 else 0.0

    rates = [rate(v) for xi in (0.0, 1.0, 0.0, 1.0) for v in (-1 - xi, xi - 0.5, 1 + xi)]
    for batch in (1, 3, 4):  # batching must not change the counts
        (act,) = layer_activity(snn, x, batch=batch)
        assert act["never_active_share"] == pytest.approx(1 / 3)
        assert act["active_share"] == pytest.approx(6 / 12)  # unit 1 on 2 images, unit 2 on 4
        assert act["mean_rate_hz"] == pytest.approx(sum(rates) / 12, rel=1e-5)
        assert act["mean_active_rate_hz"] == pytest.approx(sum(rates) / 6, rel=1e-5)
