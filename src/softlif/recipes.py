"""Training recipes: learning-rate schedules, the optimizers they step, and weight averaging.

Four recipes (``TrainConfig.recipe``):

* ``paper``: the authors' CIFAR-10 schedule (their cuda-convnet2 fork and thesis; SPEC section
  4): SGD with momentum 0.9 in cuda-convnet's form (:class:`ConvnetSGD`), constant learning
  rate (biases twice it), weight decay per layer on weights only; 350 epochs on the first 80%
  of the training images (their 40,000 of 50,000), 150 on all, then 10 at lr / 10 and 10 at
  lr / 100 (:data:`PAPER_PHASES`, 520 epochs). A shorter run keeps the proportions
  (:func:`paper_phases`).
* ``paper-exp``: the authors' MNIST/SVHN schedule: the same SGD, the learning rate decaying
  exponentially to ``lr_final_ratio`` of its start over the run.
* ``adam``: Adam (coupled L2 on weights) with a one-cycle schedule (warm-up, cosine decay).
* ``modern``: SGD with Nesterov momentum, the same one-cycle schedule, decoupled weight decay
  (:class:`SGDW`), label smoothing and an exponential moving average of the weights
  (:class:`WeightAverage`): the averaged weights are the ones evaluated, saved and converted.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

Recipe = Literal["paper", "paper-exp", "adam", "modern"]
RECIPES: tuple[str, ...] = ("paper", "paper-exp", "adam", "modern")

#: peak (one-cycle) or initial learning rate of each recipe when none is given
RECIPE_LR: dict[str, float] = {"paper": 1e-3, "paper-exp": 2e-3, "adam": 2e-3, "modern": 0.02}
#: label smoothing and weight-average decay of each recipe when none is given
RECIPE_LABEL_SMOOTHING: dict[str, float] = {"modern": 0.1}
RECIPE_EMA_DECAY: dict[str, float] = {"modern": 0.999}


@dataclass(frozen=True)
class Phase:
    """A stretch of the authors' schedule: ``epochs`` passes over the first ``images`` fraction
    of the training set at ``lr_mult`` times the learning rate."""

    epochs: int
    images: float
    lr_mult: float


#: the authors' CIFAR-10 schedule: 350 epochs on 40,000 of the 50,000 training images, 150 on
#: all, 10 at lr / 10 and 10 at lr / 100
PAPER_PHASES: tuple[Phase, ...] = (Phase(350, 0.8, 1.0), Phase(150, 1.0, 1.0),
                                   Phase(10, 1.0, 0.1), Phase(10, 1.0, 0.01))


def paper_phases(epochs: int) -> tuple[Phase, ...]:
    """The authors' schedule in ``epochs`` epochs: each phase's length scaled by
    ``epochs / 520`` and rounded by largest remainder (the lengths add up to ``epochs``); with 4
    or more epochs every phase keeps at least one (so the two drops happen, the epochs taken
    from the longest phase); 1-3 epochs keep only the phases largest remainder gives them (no
    drop). ``paper_phases(520) == PAPER_PHASES``."""
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    full = sum(p.epochs for p in PAPER_PHASES)
    exact = [p.epochs * epochs / full for p in PAPER_PHASES]
    lengths = [math.floor(x) for x in exact]
    order = sorted(range(len(exact)), key=lambda i: (lengths[i] - exact[i], i))
    for i in order[:epochs - sum(lengths)]:
        lengths[i] += 1
    if epochs >= len(PAPER_PHASES):  # at least one epoch each: taken from the longest phase
        for i, n in enumerate(lengths):
            if n == 0:
                lengths[i] = 1
                lengths[max(range(len(lengths)), key=lambda k: lengths[k])] -= 1
    return tuple(Phase(n, p.images, p.lr_mult)
                 for n, p in zip(lengths, PAPER_PHASES, strict=True) if n > 0)


def epoch_plan(recipe: str, epochs: int) -> list[Phase]:
    """One :class:`Phase` per epoch (``epochs`` 1 each): the fraction of the training images it
    draws from and, for ``paper``, its learning-rate multiplier (others: 1, scheduled by step
    with :func:`lr_factor`)."""
    if recipe != "paper":
        return [Phase(1, 1.0, 1.0)] * epochs
    return [Phase(1, p.images, p.lr_mult) for p in paper_phases(epochs) for _ in range(p.epochs)]


def lr_factor(recipe: str, progress: float, lr_final_ratio: float = 0.01,
              epoch_mult: float = 1.0) -> float:
    """Learning-rate multiplier at ``progress`` in [0, 1] of training (``epoch_mult``: the
    ``paper`` recipe's constant multiplier of the current epoch, :func:`epoch_plan`)."""
    if recipe == "paper":
        return epoch_mult
    if recipe == "paper-exp":
        return lr_final_ratio ** progress
    warm = 0.1  # one-cycle: 10% warm-up from 0.1x, then cosine down to 0.01x
    if progress < warm:
        return 0.1 + 0.9 * progress / warm
    return 0.5 * (1 + math.cos(math.pi * (progress - warm) / (1 - warm))) * 0.99 + 0.01


class ConvnetSGD(torch.optim.Optimizer):
    """SGD with momentum as cuda-convnet updates: per parameter

        inc <- momentum * inc - lr * (grad + weight_decay * w);   w <- w + inc

    (the gradient of the mean loss of the batch). At a constant learning rate this is
    ``torch.optim.SGD(momentum, weight_decay)``; where the learning rate drops they differ:
    here the increments already taken keep the old rate and decay with the momentum, while
    torch's buffer is rescaled by the new rate at once."""

    def __init__(self, params: Iterable[Any], lr: float, momentum: float = 0.9,
                 weight_decay: float = 0.0) -> None:
        if lr <= 0 or not 0 <= momentum < 1 or weight_decay < 0:
            raise ValueError(f"need lr > 0, 0 <= momentum < 1, weight_decay >= 0; got {lr}, "
                             f"{momentum}, {weight_decay}")
        super().__init__(params, {"lr": lr, "momentum": momentum, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure: Any = None) -> None:  # type: ignore[override]
        if closure is not None:
            raise ValueError("ConvnetSGD takes no closure")
        for group in self.param_groups:
            lr, mom, wd = group["lr"], group["momentum"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                step = p.grad.add(p, alpha=wd) if wd else p.grad.clone()
                state = self.state[p]
                if "increment" not in state:
                    state["increment"] = torch.zeros_like(p)
                inc = state["increment"]
                inc.mul_(mom).add_(step, alpha=-lr)
                p.add_(inc)


class SGDW(torch.optim.SGD):
    """SGD (Nesterov momentum by default) with decoupled weight decay: each step first shrinks
    the weights by ``lr * weight_decay`` (the learning rate of that step), outside the momentum,
    then takes torch's SGD step on the loss gradient alone (Loshchilov & Hutter 2019)."""

    def __init__(self, params: Iterable[Any], lr: float, momentum: float = 0.9,
                 weight_decay: float = 0.0, nesterov: bool = True) -> None:
        self._default_decay = weight_decay
        super().__init__(params, lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=0.0)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        # a group's "weight_decay" is decoupled; torch's own (coupled) decay stays 0
        group = dict(param_group)
        decay = group.pop("weight_decay", self._default_decay)
        group.setdefault("decoupled_weight_decay", decay)
        group["weight_decay"] = 0.0
        super().add_param_group(group)

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:  # type: ignore[override]
        for g in self.param_groups:
            wd = g.get("decoupled_weight_decay", 0.0)
            if wd:
                for p in g["params"]:
                    if p.grad is not None:
                        p.mul_(1.0 - g["lr"] * wd)
        return super().step(closure)


class WeightAverage:
    """Exponential moving average of a model's floating-point state (weights, biases):
    after step t, ``avg <- d_t * avg + (1 - d_t) * w`` with ``d_t = min(decay, (1 + t) / (10 +
    t))`` (a short memory early on, when the weights move most)."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0 < decay < 1:
            raise ValueError(f"weight-average decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.steps = 0
        self.average = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        d = min(self.decay, (1 + self.steps) / (10 + self.steps))
        for k, v in model.state_dict().items():
            a = self.average[k]
            if a.is_floating_point():
                a.lerp_(v.detach(), 1.0 - d)
            else:
                a.copy_(v)
        self.steps += 1

    def state_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, "average": self.average}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.steps = int(state["steps"])
        for k, v in state["average"].items():
            self.average[k].copy_(v)


def make_optimizer(weight_layers: list[nn.Module], recipe: str, lr: float,
                   weight_decay: tuple[float, ...], momentum: float = 0.9,
                   bias_lr_mult: float = 2.0) -> torch.optim.Optimizer:
    """The recipe's optimizer over ``weight_layers`` (in order): one parameter group per
    weights (decay ``weight_decay[i]``, the last value repeating) and per biases (no decay; at
    ``bias_lr_mult`` times the rate in the paper recipes). Each group's ``lr_mult`` is its
    multiple of the scheduled learning rate."""
    groups: list[dict[str, Any]] = []
    paper = recipe in ("paper", "paper-exp")
    for i, layer in enumerate(weight_layers):
        wd = weight_decay[min(i, len(weight_decay) - 1)]
        groups.append({"params": [layer.weight], "weight_decay": wd, "lr_mult": 1.0})
        if getattr(layer, "bias", None) is not None:
            groups.append({"params": [layer.bias], "weight_decay": 0.0,
                           "lr_mult": bias_lr_mult if paper else 1.0})
    for g in groups:
        g["lr"] = lr * g["lr_mult"]
    if paper:
        return ConvnetSGD(groups, lr=lr, momentum=momentum)
    if recipe == "modern":
        return SGDW(groups, lr=lr, momentum=momentum, nesterov=True)
    if recipe == "adam":  # Adam's L2 (not AdamW): "weight decay on weights" as in the paper
        return torch.optim.Adam(groups, lr=lr)
    raise ValueError(f"recipe must be one of {', '.join(RECIPES)}, got {recipe!r}")
