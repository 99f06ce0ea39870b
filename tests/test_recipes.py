"""Training recipes: the authors' schedule and update, the modern recipe's parts (hand-computed
trajectories and closed forms, torch's SGD as the independent reference)."""

from __future__ import annotations

import pytest
import torch

from softlif.data import Preprocess
from softlif.recipes import (
    PAPER_PHASES,
    SGDW,
    ConvnetSGD,
    WeightAverage,
    epoch_plan,
    paper_phases,
)


def _one_weight(w0: float) -> torch.nn.Parameter:
    return torch.nn.Parameter(torch.tensor([w0]))


def test_convnet_sgd_two_steps_by_hand_across_a_learning_rate_drop():
    # inc <- m inc - lr (g + wc w); w <- w + inc; gradient 2 each step, lr 0.1 then 0.01
    w = _one_weight(1.0)
    opt = ConvnetSGD([w], lr=0.1, momentum=0.9, weight_decay=0.5)
    w.grad = torch.tensor([2.0])
    opt.step()  # inc = -0.1 * (2 + 0.5) = -0.25
    assert w.item() == pytest.approx(0.75)
    opt.param_groups[0]["lr"] = 0.01
    w.grad = torch.tensor([2.0])
    opt.step()  # inc = 0.9 * -0.25 - 0.01 * (2 + 0.375) = -0.24875
    assert w.item() == pytest.approx(0.50125)
    # torch's SGD rescales the whole momentum by the new rate: 0.75 - 0.01 * 4.625
    v = _one_weight(1.0)
    ref = torch.optim.SGD([v], lr=0.1, momentum=0.9, weight_decay=0.5)
    for lr in (0.1, 0.01):
        ref.param_groups[0]["lr"] = lr
        v.grad = torch.tensor([2.0])
        ref.step()
    assert v.item() == pytest.approx(0.70375)


def test_convnet_sgd_is_torch_sgd_at_a_constant_rate():
    gen = torch.Generator().manual_seed(0)
    a = torch.nn.Parameter(torch.randn(5, generator=gen))
    b = torch.nn.Parameter(a.detach().clone())
    mine = ConvnetSGD([a], lr=0.03, momentum=0.9, weight_decay=4e-3)
    ref = torch.optim.SGD([b], lr=0.03, momentum=0.9, weight_decay=4e-3)
    for _ in range(20):
        g = torch.randn(5, generator=gen)
        a.grad, b.grad = g.clone(), g.clone()
        mine.step()
        ref.step()
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_sgdw_decays_outside_the_momentum():
    # w0 = 1, lr 0.1, decay 0.5, gradient 2, Nesterov momentum 0.9:
    # shrink to 0.95, then buf = 2, step = g + 0.9 buf = 3.8 -> 0.95 - 0.38
    w = _one_weight(1.0)
    opt = SGDW([{"params": [w], "weight_decay": 0.5}], lr=0.1, momentum=0.9)
    assert opt.param_groups[0]["weight_decay"] == 0.0  # torch's coupled decay is off
    w.grad = torch.tensor([2.0])
    opt.step()
    assert w.item() == pytest.approx(0.57)
    w.grad = torch.tensor([2.0])
    opt.step()  # shrink 0.57 * 0.95 = 0.5415; buf = 0.9 * 2 + 2 = 3.8; step 2 + 3.42
    assert w.item() == pytest.approx(0.5415 - 0.1 * 5.42, abs=1e-6)


def test_weight_average_by_hand():
    model = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(1.0)
    avg = WeightAverage(model, decay=0.99)
    with torch.no_grad():
        model.weight.fill_(3.0)
    avg.update(model)  # d = min(0.99, 1/10): 0.1 * 1 + 0.9 * 3
    assert avg.average["weight"].item() == pytest.approx(2.8)
    with torch.no_grad():
        model.weight.fill_(5.0)
    avg.update(model)  # d = 2/11
    assert avg.average["weight"].item() == pytest.approx(2 / 11 * 2.8 + 9 / 11 * 5)
    back = WeightAverage(model, decay=0.99)
    back.load_state_dict(avg.state_dict())
    assert back.steps == 2 and torch.equal(back.average["weight"], avg.average["weight"])


def test_paper_phases_are_the_authors_at_520_and_proportional_below():
    assert paper_phases(520) == PAPER_PHASES
    assert [p.epochs for p in paper_phases(30)] == [19, 9, 1, 1]
    assert [p.epochs for p in paper_phases(52)] == [35, 15, 1, 1]
    for epochs in range(1, 700):
        phases = paper_phases(epochs)
        assert sum(p.epochs for p in phases) == epochs
        assert len(epoch_plan("paper", epochs)) == epochs
        if epochs >= 4:  # both drops happen, in order
            assert [p.lr_mult for p in phases] == [1.0, 1.0, 0.1, 0.01]
    plan = epoch_plan("paper", 520)
    assert plan[349].images == 0.8 and plan[350].images == 1.0
    assert plan[499].lr_mult == 1.0 and plan[500].lr_mult == 0.1 and plan[510].lr_mult == 0.01
    assert {p.images for p in epoch_plan("modern", 7)} == {1.0}


def test_centre_mean_subtracts_the_same_centre_crop_from_every_random_crop():
    gen = torch.Generator().manual_seed(0)
    mean = torch.rand(3, 8, 8, generator=gen) * 255
    x = torch.randint(0, 256, (16, 3, 8, 8), generator=gen, dtype=torch.uint8)
    pre = Preprocess(mean, crop=4, flip=True, pixel_divisor=1.0, train_mean="centre")
    out = pre.train(x, torch.Generator().manual_seed(1))
    # undo the subtraction: what is left is a (possibly flipped) 4x4 window of each image
    raw = out + mean[:, 2:6, 2:6]
    for img, win in zip(x.float(), raw, strict=True):
        found = [(t, c, f) for t in range(5) for c in range(5) for f in (False, True)
                 if torch.allclose(win, (img[:, t:t + 4, c:c + 4].flip(2) if f else
                                         img[:, t:t + 4, c:c + 4]), atol=1e-3)]
        assert found
    aligned = Preprocess(mean, crop=4, flip=True, pixel_divisor=1.0)
    assert not torch.allclose(aligned.train(x, torch.Generator().manual_seed(1)), out)
    assert torch.equal(aligned.test(x), pre.test(x))  # test crops are central: the same
    assert Preprocess.from_dict(pre.to_dict()).train_mean == "centre"
    with pytest.raises(ValueError, match="train_mean"):
        Preprocess(mean, crop=4, train_mean="corner")
