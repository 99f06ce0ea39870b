"""Train or fine-tune any PyTorch model with soft-LIF activations from any ``DataLoader``.

:func:`fit` is the training loop for models that are not one of the paper's nets (a user's
model after :func:`softlif.prepare`): the same optimizer, learning-rate schedule, bfloat16
autocast and annealing of the soft-LIF smoothing g as :func:`softlif.train.train`
(:class:`~softlif.train.TrainConfig`), with the data and loss left to the caller. Training
noise comes from each ``RateNeuron``'s neuron (``noise_std`` Hz), on in training mode only.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from .activations import RateNeuron, set_noise, set_smoothing
from .ann import loader_error
from .recipes import WeightAverage, epoch_plan
from .train import (
    TrainConfig,
    TrainingError,
    lr_factor,
    make_optimizer,
    precision_line,
    smoothing_at,
)


def fit(model: nn.Module, train_loader: Iterable, cfg: TrainConfig | None = None, *,
        test_loader: Iterable | None = None,
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
        device: torch.device | str = "cpu", progress: bool = True,
        log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Train ``model`` in place on ``train_loader`` batches ``(inputs, labels)`` (inputs
    preprocessed as the model expects) for ``cfg.epochs`` epochs; returns the per-epoch history
    (train loss, and with ``test_loader`` the soft- and hard-rate test errors).

    cfg: optimizer (``recipe``, ``lr``, ``weight_decay`` per weight layer), ``precision``,
    ``seed`` (global torch seed: dropout and noise), ``noise_std`` (Hz; None keeps each
    neuron's), ``anneal_to``/``anneal_fraction`` (g annealed from the neurons' own smoothing);
    ``batch_size`` is the loader's. Parameters outside Conv2d/Linear/LocallyConnected2d layers
    are trained without weight decay. loss_fn: default cross-entropy on the logits (with the
    recipe's ``label_smoothing``). With a moving average of the weights (``ema_decay``, the
    modern recipe) the averaged weights are evaluated and are the model's at the end. The
    paper recipe's learning-rate drops apply; its first phase on 80% of the images does not
    (the loader decides the images).
    """
    cfg = TrainConfig() if cfg is None else cfg
    if cfg.rate_penalty > 0:
        raise ValueError("fit does not apply cfg.rate_penalty (it weighs rates by the synapse "
                         "counts of softlif's own nets): add your penalty to loss_fn, e.g. "
                         "with softlif.train.RateTap and your layers' fan-outs")
    if loss_fn is None:
        loss_fn = functools.partial(nn.functional.cross_entropy,
                                    label_smoothing=cfg.label_smoothing)  # type: ignore[arg-type]
    device = torch.device(device)
    cfg = cfg.resolved(device)
    log(precision_line(cfg))
    torch.manual_seed(cfg.seed)
    model.to(device)
    if cfg.noise_std is not None:
        set_noise(model, cfg.noise_std)
    neurons = [m for m in model.modules() if isinstance(m, RateNeuron)]
    g0 = neurons[0].neuron.smoothing if neurons else 0.0
    opt = make_optimizer(model, cfg)
    known = {id(p) for g in opt.param_groups for p in g["params"]}
    rest = [p for p in model.parameters() if id(p) not in known and p.requires_grad]
    if rest:
        opt.add_param_group({"params": rest, "weight_decay": 0.0, "lr_mult": 1.0,
                             "lr": cfg.lr})
    # the recipe's moving average of the weights: evaluated, and the model's weights at the end
    ema = WeightAverage(model, cfg.ema_decay) if cfg.ema_decay else None
    plan = epoch_plan(cfg.recipe, cfg.epochs)  # the paper recipe's lr drops (not its subsets)
    steps = len(train_loader)  # type: ignore[arg-type]
    if steps == 0:
        raise ValueError("train_loader gives no batches")
    autocast = torch.autocast(device.type, dtype=torch.bfloat16,
                              enabled=cfg.precision == "bfloat16")
    history: list[dict[str, Any]] = []
    wall = 0.0
    for epoch in range(cfg.epochs):
        t0 = time.perf_counter()
        model.train()
        loss_sum, seen = 0.0, 0
        bar = tqdm(train_loader, total=steps, disable=not progress, leave=False,
                   desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch")
        for step, (x, y) in enumerate(bar):
            frac = (epoch * steps + step) / (cfg.epochs * steps)
            for g in opt.param_groups:
                g["lr"] = cfg.lr * g["lr_mult"] * lr_factor(  # type: ignore[operator]
                    cfg, frac, plan[epoch].lr_mult)
            if neurons:
                set_smoothing(model, smoothing_at(cfg, g0, frac))
            x, y = x.to(device), y.to(device)
            with autocast:
                out = model(x)
            loss = loss_fn(out.float(), y)
            value = float(loss.detach())
            if not math.isfinite(value):
                raise TrainingError(f"training diverged at epoch {epoch + 1}, step {step + 1} "
                                    f"(loss {value}); lower the learning rate (cfg.lr)")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if ema is not None:
                ema.update(model)
            loss_sum += value * len(y)
            seen += len(y)
        bar.close()
        wall += time.perf_counter() - t0
        if neurons:
            set_smoothing(model, smoothing_at(cfg, g0, (epoch + 1) / cfg.epochs))
        record: dict[str, Any] = {"epoch": epoch + 1, "train_loss": loss_sum / seen,
                                  "seconds": wall, "precision": cfg.precision}
        raw = None
        if ema is not None:  # the averaged weights are evaluated (and kept at the end)
            raw = {k: v.detach().clone() for k, v in model.state_dict().items()}
            model.load_state_dict(ema.average)
        if test_loader is not None:
            record["test_error"] = loader_error(model, test_loader, "soft" if neurons else None)
            if neurons:
                record["test_error_hard"] = loader_error(model, test_loader, "hard")
        if raw is not None and epoch + 1 < cfg.epochs:
            model.load_state_dict(raw)
        history.append(record)
        log("  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                      for k, v in record.items()))
    model.eval()
    return history
