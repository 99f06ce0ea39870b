"""Choosing the test images: prefix vs fixed shuffled order, and spotting a class-sorted set."""

import numpy as np
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
