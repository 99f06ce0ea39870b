"""Training the rate network (the ANN): recipes, the loop, evaluation and checkpoints.

Four recipes (:mod:`softlif.recipes`, SPEC section 4): ``paper``, the authors' CIFAR-10
schedule exactly (cuda-convnet's SGD, 350 + 150 + 10 + 10 epochs, the first 350 on 80% of the
images); ``paper-exp``, their MNIST/SVHN one (exponential decay); ``adam``, Adam with a one-cycle
schedule, which reaches the paper's MNIST error in about a tenth of the epochs; ``modern``,
Nesterov SGD with decoupled weight decay, label smoothing and a moving average of the weights.

All can anneal the soft-LIF smoothing g towards a small value over the last epochs
(``anneal_to``): the soft curve's sub-threshold tail (SPEC section 2) is absent in the spiking
net, and a network trained with it loses accuracy at conversion; annealing lets it adapt.

``init_from`` starts from another checkpoint's weights and neuron (fine-tuning, e.g. more
epochs at a small g, or a new schedule) with a fresh optimizer and schedule; the new
checkpoint records where it started (``metrics["init_from"]``).

Checkpoints (:mod:`softlif.checkpoint`, re-exported here) are saved after every epoch; a
checkpoint holds everything needed to rebuild, convert and simulate the net: the network spec,
neuron parameters, activation, preprocessing (mean image, crop, flip, input scale), weights,
metrics and the training state for resuming.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from . import zoo
from .activations import RateNeuron, set_smoothing
from .ann import error_rate, predict
from .checkpoint import CHECKPOINT_FORMAT, Checkpoint, load_checkpoint
from .data import ArraySplit, Preprocess
from .data.batches import iter_batches, split_labels
from .distributed import World, all_reduce_sum, current, dist_barrier, gather_objects
from .errors import SoftlifError
from .evaluate import test_indices
from .hardware import REQUESTED_PRECISIONS, RequestedPrecision, machine, resolve_precision
from .layers import LocallyConnected2d
from .networks import NetSpec, build, init_paper, layer_table, spec_to_dict
from .neurons import IF, NOISE_MODELS, NeuronType, NoiseModel, with_params
from .recipes import (
    RECIPE_EMA_DECAY,
    RECIPE_LABEL_SMOOTHING,
    RECIPE_LR,
    RECIPES,
    Recipe,
    WeightAverage,
    epoch_plan,
)
from .recipes import lr_factor as recipe_lr_factor
from .recipes import make_optimizer as recipe_optimizer

Init = Literal["default", "paper"]
Precision = RequestedPrecision
PRECISIONS: tuple[str, ...] = REQUESTED_PRECISIONS

# Keys added to TrainConfig after checkpoints were first written, with the value that
# reproduces what those older runs did (so that they still resume).
_LEGACY_CONFIG = {"init": "default", "precision": "float32", "rate_penalty": 0.0,
                  "label_smoothing": 0.0, "ema_decay": 0.0, "mean_crop": "aligned"}


@dataclass(frozen=True)
class TrainConfig:
    """Training hyper-parameters; every default is what ``softlif train`` uses."""

    epochs: int = 15  # passes over the training set
    batch_size: int = 128  # images per step
    recipe: Recipe = "adam"  # "paper", "paper-exp", "adam" or "modern" (softlif.recipes)
    # peak (one-cycle) or initial learning rate; None = the recipe's (recipes.RECIPE_LR)
    lr: float | None = None
    lr_final_ratio: float = 0.01  # paper-exp recipe: lr decays exponentially to lr * this
    bias_lr_mult: float = 2.0  # paper recipes: biases learn this much faster
    momentum: float = 0.9  # SGD momentum (paper recipes, modern)
    # cross-entropy against (1 - s) one-hot + s / classes; None = the recipe's (modern 0.1)
    label_smoothing: float | None = None
    # moving average of the weights (recipes.WeightAverage), the weights evaluated, saved and
    # converted; 0 = off; None = the recipe's (modern 0.999)
    ema_decay: float | None = None
    # mean image under a random training crop: "aligned" or "centre" (the authors' provider,
    # data.Preprocess.train_mean); None = "centre" for the paper recipe, else "aligned"
    mean_crop: Literal["aligned", "centre"] | None = None
    weight_decay: tuple[float, ...] = (0.0,)  # per weight layer (last value repeats), weights only
    noise_std: float | None = None  # training noise (Hz); None = the neuron's own (10 Hz)
    noise_model: NoiseModel | None = None  # "gaussian", "alpha", "lowpass"; None = the neuron's own
    noise_tau: float | None = None  # synapse tau (s) of the alpha/lowpass noise models
    smoothing: float | None = None  # soft-LIF g; None = the neuron's own (0.02)
    anneal_to: float | None = 0.002  # anneal g geometrically to this over the last epochs
    anneal_fraction: float = 0.3  # fraction of the epochs (at the end) spent annealing
    seed: int = 0  # seeds initial weights, data order, crops and training noise
    init_from: str | None = None  # start from this checkpoint's weights (fine-tuning)
    # initial weights: "default" (PyTorch's) or "paper" (the authors' Gaussian initW per layer,
    # networks.PAPER_INIT); None = "paper" for the paper recipe, "default" for adam
    init: Init | None = None
    # arithmetic of the training steps: "bfloat16" runs the linear layers under CPU/CUDA
    # autocast (weights, optimizer state and the rate nonlinearity stay float32); evaluation
    # is always float32. "auto": bfloat16 where the device computes it natively (CUDA with bf16,
    # a CPU with AMX or AVX512-BF16: softlif.hardware), float32 elsewhere. A run resolves it
    # (``resolved``): then this is the precision used and ``precision_requested`` what was asked.
    precision: Precision = "auto"
    precision_requested: Precision | None = None
    # energy-aware training: this times the expected synaptic events per second per image (in
    # millions, the energy model's paper convention: every neuron's rate times its fan-out)
    # is added to the loss; 0 = off
    rate_penalty: float = 0.0

    def __post_init__(self) -> None:
        if self.recipe not in RECIPES:
            raise ValueError(f"recipe must be one of {', '.join(RECIPES)}, got {self.recipe!r}")
        paper = self.recipe in ("paper", "paper-exp")
        for name, value in (("init", "paper" if paper else "default"),
                            ("lr", RECIPE_LR[self.recipe]),
                            ("label_smoothing", RECIPE_LABEL_SMOOTHING.get(self.recipe, 0.0)),
                            ("ema_decay", RECIPE_EMA_DECAY.get(self.recipe, 0.0)),
                            ("mean_crop", "centre" if self.recipe == "paper" else "aligned")):
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        if not (0 <= self.label_smoothing < 1):  # type: ignore[operator]
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if not (0 <= self.ema_decay < 1):  # type: ignore[operator]
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.mean_crop not in ("aligned", "centre"):
            raise ValueError(f"mean_crop must be 'aligned' or 'centre', got {self.mean_crop!r}")
        if self.init not in ("default", "paper"):
            raise ValueError(f"init must be 'default' or 'paper', got {self.init!r}")
        for name in ("precision", "precision_requested"):
            value = getattr(self, name)
            if value not in PRECISIONS and not (name == "precision_requested" and value is None):
                raise ValueError(f"{name} must be one of {', '.join(PRECISIONS)}, got "
                                 f"{value!r}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch_size must be >= 1")
        if not (self.lr > 0 and math.isfinite(self.lr)):  # type: ignore[operator, arg-type]
            raise ValueError(f"lr must be a positive number, got {self.lr!r}")
        if self.noise_model is not None and self.noise_model not in NOISE_MODELS:
            raise ValueError(f"noise_model must be one of {', '.join(NOISE_MODELS)}, got "
                             f"{self.noise_model!r}")
        if self.anneal_to is not None and self.anneal_to < 0:
            raise ValueError(f"anneal_to must be >= 0, got {self.anneal_to}")
        if not 0 <= self.anneal_fraction <= 1:
            raise ValueError(f"anneal_fraction must be in [0, 1], got {self.anneal_fraction}")
        if not (self.rate_penalty >= 0 and math.isfinite(self.rate_penalty)):
            raise ValueError(f"rate_penalty must be a finite number >= 0, got "
                             f"{self.rate_penalty!r}")

    def resolved(self, device: str | torch.device = "cpu") -> TrainConfig:
        """This config as run on ``device``: ``precision`` the one used (``"auto"`` resolved by
        :func:`softlif.hardware.resolve_precision`), ``precision_requested`` the one asked
        for. Resolving again (on another device) starts from what was asked."""
        asked = self.precision_requested or self.precision
        return dataclasses.replace(self, precision=resolve_precision(asked, device),
                                   precision_requested=asked)


def precision_line(cfg: TrainConfig) -> str:
    """One log line: the precision a resolved config uses, why, and the machine."""
    asked = cfg.precision_requested or cfg.precision
    why = "asked" if asked != "auto" else "auto"
    return f"precision {cfg.precision} ({why}); {machine().line()}"


def check_rate_penalty(rate_penalty: float, activation: str) -> None:
    """Refuse a rate penalty on a net without spiking neurons (ValueError)."""
    if rate_penalty > 0 and activation == "relu":
        raise ValueError("rate_penalty penalises spiking neurons' rates: train with "
                         "--activation softlif, lif or if")


def synop_weights(spec: NetSpec) -> list[float]:
    """Synapses each neuron of every hidden layer of ``spec`` drives (its fan-out into the next
    weight layer): the rate-weighted sum of these is the energy model's synaptic events per
    second (paper convention, :mod:`softlif.energy`)."""
    rows = layer_table(spec)
    return [rows[k + 1].synapses / rows[k].neurons for k in range(len(rows) - 1)]


class RateTap:
    """Records the rates (Hz) every :class:`RateNeuron` of ``model`` outputs while active, and
    turns them into the expected synaptic events per second per image (millions) with one
    weight (fan-out) per population, in the order the populations run."""

    def __init__(self, model: nn.Module, weights: list[float]) -> None:
        neurons = [m for m in model.modules() if isinstance(m, RateNeuron)]
        if len(neurons) != len(weights):
            raise ValueError(f"{len(neurons)} neuron populations but {len(weights)} fan-outs")
        self.weights = weights
        self.rates: list[torch.Tensor] = []
        self.active = False
        for m in neurons:
            m.register_forward_hook(self._hook)

    def _hook(self, m: nn.Module, inputs: Any, out: torch.Tensor) -> None:
        if self.active:
            amplitude = float(getattr(m, "neuron").amplitude)  # noqa: B009 - a RateNeuron
            self.rates.append(out.float() / amplitude)

    def msynops(self) -> torch.Tensor:
        """Mean over the batch of sum_l fan-out_l * (sum of layer l's rates), in millions of
        synaptic events per second, for the forward pass just run; clears the record."""
        if len(self.rates) != len(self.weights):
            raise RuntimeError(f"recorded {len(self.rates)} populations, expected "
                               f"{len(self.weights)}: one forward pass between calls")
        total = sum(w * r.flatten(1).sum(1) for w, r in zip(self.weights, self.rates,
                                                            strict=True))
        self.rates = []
        return total.mean() / 1e6  # type: ignore[union-attr]


__all__ = ["CHECKPOINT_FORMAT", "Checkpoint", "TrainConfig", "TrainingError", "error_rate",
           "load_checkpoint", "lr_factor", "make_optimizer", "predict", "smoothing_at", "train",
           "training_totals", "weight_layers"]


class TrainingError(SoftlifError, RuntimeError):
    """Training cannot go on (diverged, or a checkpoint does not match)."""


def weight_layers(model: nn.Module) -> list[nn.Module]:
    """The layers with weights, in order (Conv2d, LocallyConnected2d, Linear)."""
    return [m for m in model.modules()
            if isinstance(m, (nn.Conv2d, nn.Linear, LocallyConnected2d))]


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """The recipe's optimizer (:func:`softlif.recipes.make_optimizer`) over ``model``'s weight
    layers: weight decay on weights only, per layer; biases at ``bias_lr_mult`` in the paper
    recipes."""
    return recipe_optimizer(weight_layers(model), cfg.recipe, cfg.lr,  # type: ignore[arg-type]
                            cfg.weight_decay, cfg.momentum, cfg.bias_lr_mult)


def lr_factor(cfg: TrainConfig, progress: float, epoch_mult: float = 1.0) -> float:
    """Learning-rate multiplier at ``progress`` in [0, 1] of training
    (:func:`softlif.recipes.lr_factor`; ``epoch_mult``: the paper recipe's, per epoch)."""
    return recipe_lr_factor(cfg.recipe, progress, cfg.lr_final_ratio, epoch_mult)


def smoothing_at(cfg: TrainConfig, g0: float, progress: float) -> float:
    """Soft-LIF g at ``progress``: constant, then geometric from g0 to ``anneal_to``.

    g0 = 0 (the hard rate curve already) stays 0: there is nothing to anneal from."""
    if cfg.anneal_to is None or cfg.anneal_fraction == 0 or g0 <= 0:
        return g0
    start = 1 - cfg.anneal_fraction
    if progress <= start:
        return g0
    t = min(1.0, (progress - start) / cfg.anneal_fraction)
    if cfg.anneal_to == 0:
        return g0 * (1 - t) if t < 1 else 0.0
    return g0 * (cfg.anneal_to / g0) ** t


def train(
    spec: NetSpec,
    train_split: ArraySplit | Dataset,
    test_split: ArraySplit | Dataset,
    pre: Preprocess,
    cfg: TrainConfig,
    activation: str = "softlif",
    checkpoint_path: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = print,
    device: str | torch.device = "cpu",
    workers: int = 0,
    eval_images: int | None = None,
) -> Checkpoint:
    """Train ``spec`` on ``train_split`` and return the final checkpoint.

    With ``cfg.init_from`` the run starts from that checkpoint's weights, neuron and
    preprocessing (``pre`` is then only checked for the input shape).

    ``device`` ("cpu", "cuda", "cuda:1", ...) holds the model and runs the steps; data stay in
    host memory, are augmented there (the same random draws on every device) and go to the
    device one batch at a time. Checkpoints always hold CPU tensors. The splits are in-memory
    :class:`ArraySplit` s or lazy data sets (image folders, ImageNet) decoded one batch at a
    time by ``workers`` processes (0: this one); the results do not depend on ``workers``.

    The checkpoint is saved after every epoch when ``checkpoint_path`` is given; with
    ``resume=True`` training continues from it (same config), bit for bit as if uninterrupted.
    Test error is measured with the soft rate and, for LIF nets, with the hard rate, which
    predicts the spiking net: after the last epoch on all of ``test_split``, after the others on
    ``eval_images`` of them, the first of the fixed shuffled order of
    :func:`softlif.evaluate.test_indices` (None: all; each history record says how many in
    ``test_images``). Evaluation does not change the training, only the time it takes.
    """
    check_rate_penalty(cfg.rate_penalty, activation)
    cfg = cfg.resolved(device)
    log(precision_line(cfg))
    world = current()
    # under torchrun, dropout, training noise and augmentation draw from per-rank seeds (rank
    # 0's are one process's); the permutation generator ``gen`` is the same on every rank
    torch.manual_seed(cfg.seed + RANK_SEED_STRIDE * world.rank)
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    noise_gen = torch.Generator().manual_seed(cfg.seed + 2 + RANK_SEED_STRIDE * world.rank)
    aug_gen = torch.Generator().manual_seed(cfg.seed + 4 + RANK_SEED_STRIDE * world.rank) \
        if world.active else gen
    init = _init_checkpoint(cfg, spec, activation, pre)
    if init is not None:  # the weights were learnt on inputs less this mean image
        pre = init.preprocess
    if pre.train_mean != cfg.mean_crop:  # what the training crops have subtracted
        pre = dataclasses.replace(pre, train_mean=cfg.mean_crop)  # type: ignore[arg-type]
    neuron: NeuronType | None = None
    if activation != "relu":
        neuron = spec.neuron if activation != "if" else IF()
        if init is not None and init.neuron is not None:  # its noise, and g where it ended
            neuron = init.neuron
            g_end = init.metrics.get("final_smoothing")
            if g_end is not None:  # 0 too: a net annealed to the hard curve stays there
                neuron = with_params(neuron, smoothing=float(g_end))
        if cfg.noise_std is not None:
            neuron = with_params(neuron, noise_std=cfg.noise_std)
        if cfg.noise_model is not None:
            neuron = with_params(neuron, noise_model=cfg.noise_model)
        if cfg.noise_tau is not None:
            neuron = with_params(neuron, noise_tau=cfg.noise_tau)
        if cfg.smoothing is not None:
            neuron = with_params(neuron, smoothing=cfg.smoothing)
    device = torch.device(device)
    model = build(spec, activation, neuron, generator=noise_gen)  # type: ignore[arg-type]
    if init is not None:
        model.load_state_dict(init.state_dict)
    elif cfg.init == "paper":
        init_paper(model, spec, torch.Generator().manual_seed(cfg.seed + 3))
    # channels-last memory: the layout the CPU (oneDNN) and GPU conv kernels run fastest on
    model.to(device)
    model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    autocast = torch.autocast(device.type, dtype=torch.bfloat16,
                              enabled=cfg.precision == "bfloat16")
    opt = make_optimizer(model, cfg)
    # the moving average of the weights: what is evaluated, saved and converted
    ema = WeightAverage(model, cfg.ema_decay) if cfg.ema_decay else None
    tap = RateTap(model, synop_weights(spec)) if cfg.rate_penalty > 0 else None
    net: nn.Module = model
    if world.active:  # gradients averaged over the ranks (rank 0's initial weights broadcast)
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    if eval_images is not None and eval_images < 1:
        raise ValueError(f"eval_images must be at least 1, got {eval_images}")
    y_test = split_labels(test_split)
    n_test = len(y_test)
    # the per-epoch evaluations but the last see eval_images test images, the first of a fixed
    # shuffled order (a prefix of a class-sorted test set would be one class)
    sub_n = n_test if eval_images is None else min(eval_images, n_test)
    sub_split, sub_y = test_split, y_test
    if sub_n < n_test:  # ArraySplit and ImageFileDataset both take a subset by index
        idx = test_indices(n_test, sub_n, "shuffled")
        sub_split = test_split.subset(idx)  # type: ignore[union-attr]
        sub_y = y_test[torch.as_tensor(idx)]
    n = len(train_split)  # type: ignore[arg-type]
    # per epoch: the images it draws from (the first n_e; the paper recipe starts on 80%) and
    # the paper recipe's learning-rate multiplier
    plan = epoch_plan(cfg.recipe, cfg.epochs)
    g0 = neuron.smoothing if neuron is not None else 0.0
    history: list[dict[str, Any]] = []
    start_epoch = 0
    wall = 0.0

    if resume and checkpoint_path is not None and Path(checkpoint_path).exists():
        prev = load_checkpoint(checkpoint_path)
        if (_as_asked(_legacy_config(prev.config)) != _as_asked(_config_dict(cfg))
                or spec_to_dict(prev.spec) != spec_to_dict(spec)):
            raise TrainingError(
                f"{checkpoint_path} was written with another configuration; use a new output "
                "folder or the same settings to resume"
            )
        if prev.train_state is None:
            raise TrainingError(f"{checkpoint_path} has no training state to resume from")
        was = int(prev.train_state.get("world_size", 1))
        if was != world.size:
            raise TrainingError(f"{checkpoint_path} was written by {was} process(es), this run "
                                f"has {world.size}: resume with the same number (torchrun "
                                "--nproc_per_node), or fine-tune from it with --init-from")
        # with a moving average the checkpoint's weights are the average, the raw ones are kept
        # in its training state
        model.load_state_dict(prev.train_state.get("model", prev.state_dict))
        if ema is not None:
            ema.load_state_dict({"steps": prev.train_state["ema_steps"],
                                 "average": prev.state_dict})
        opt.load_state_dict(prev.train_state["optimizer"])
        gen.set_state(prev.train_state["data_rng"])
        mine = prev.train_state["ranks"][world.rank] if world.active else prev.train_state
        noise_gen.set_state(mine["noise_rng"])
        torch.set_rng_state(mine["torch_rng"])
        if world.active:
            aug_gen.set_state(mine["aug_rng"])
        if device.type == "cuda" and "cuda_rng" in mine:  # dropout masks on a GPU
            torch.cuda.set_rng_state(mine["cuda_rng"], device)
        history = list(prev.metrics.get("history", []))
        wall = float(prev.metrics.get("train_seconds", 0.0))
        start_epoch = prev.epoch
        log(f"resuming {checkpoint_path} after epoch {start_epoch}")

    ck: Checkpoint | None = None
    for epoch in range(start_epoch, cfg.epochs):
        t0 = time.perf_counter()
        model.train()
        n_e = round(plan[epoch].images * n)
        steps_per_epoch = math.ceil(n_e / cfg.batch_size)
        perm = torch.randperm(n_e, generator=gen)
        bar = tqdm(range(steps_per_epoch), disable=not progress, leave=False,
                   desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch")
        loss_sum, seen, synops_sum, seen_local = 0.0, 0, 0.0, 0
        # each global batch split by stride over the ranks: the global batches of one process
        batches = iter_batches(train_split, [b[world.rank::world.size]
                                             for b in perm.split(cfg.batch_size)],
                               workers=workers)
        for step, (x_u8, y) in zip(bar, batches, strict=True):
            progress_frac = (epoch + step / steps_per_epoch) / cfg.epochs
            for g in opt.param_groups:
                g["lr"] = cfg.lr * g["lr_mult"] * lr_factor(  # type: ignore[operator]
                    cfg, progress_frac, plan[epoch].lr_mult)
            if neuron is not None:
                set_smoothing(model, smoothing_at(cfg, g0, progress_frac))
            x = pre.train(x_u8, aug_gen).to(device, non_blocking=True)
            if x.ndim == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            if tap is not None:
                tap.active = True
            with autocast:
                logits = net(x)
            if tap is not None:
                tap.active = False
                msynops = tap.msynops()
                synops_sum += float(msynops.detach()) * len(y)
                seen_local += len(y)
            if world.active:
                # sum over this rank's images x world / global batch: DDP's average of the
                # ranks' gradients is then the global batch's mean gradient, as in one process
                n_batch = min(cfg.batch_size, n_e - step * cfg.batch_size)
                loss_local = nn.functional.cross_entropy(
                    logits.float(), y.to(device), reduction="sum",
                    label_smoothing=cfg.label_smoothing)  # type: ignore[arg-type]
                loss = loss_local * (world.size / n_batch)
                step_loss = float(all_reduce_sum(loss_local.detach().reshape(1), world)) / n_batch
            else:
                loss = nn.functional.cross_entropy(
                    logits.float(), y.to(device),
                    label_smoothing=cfg.label_smoothing)  # type: ignore[arg-type]
                step_loss = float(loss.detach())
            if not math.isfinite(step_loss):  # the same verdict on every rank
                raise TrainingError(
                    f"training diverged at epoch {epoch + 1}, step {step + 1} (loss {step_loss})"
                    "; lower --lr (the last good checkpoint is kept)"
                )
            if tap is not None:  # per image: the same weight under torchrun
                loss = loss + cfg.rate_penalty * msynops
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if ema is not None:
                ema.update(model)
            n_step = len(y) if not world.active else min(cfg.batch_size,
                                                          n_e - step * cfg.batch_size)
            loss_sum += step_loss * n_step
            seen += n_step
            if step % 20 == 0:
                bar.set_postfix(loss=f"{loss_sum / seen:.4f}")
        bar.close()
        wall += time.perf_counter() - t0
        g_now = smoothing_at(cfg, g0, (epoch + 1) / cfg.epochs) if neuron is not None else None
        if neuron is not None:
            set_smoothing(model, g_now)  # type: ignore[arg-type]
        ev_split, ev_y = (test_split, y_test) if epoch + 1 == cfg.epochs else (
            sub_split, sub_y)
        raw = None
        if ema is not None:  # evaluate (and save) the averaged weights
            raw = _to_cpu(model.state_dict())
            model.load_state_dict(ema.average)
        record: dict[str, Any] = {"epoch": epoch + 1, "train_loss": loss_sum / seen,
                                  "test_error": error_rate(predict(model, ev_split, pre,
                                                                workers=workers), ev_y),
                                  "test_images": len(ev_y), "train_images": n_e,
                                  "seconds": wall,
                                  "precision": cfg.precision}
        if tap is not None:  # this rank's images: the rates the penalty saw (noise included)
            record["train_msynops_per_s"] = synops_sum / max(seen_local, 1)
        if neuron is not None:
            record["smoothing"] = g_now
            record["test_error_hard"] = error_rate(  # the hard rate curve: the SNN's
                predict(model, ev_split, pre, mode="hard", workers=workers), ev_y)
        history.append(record)
        ck = Checkpoint(
            spec=spec, activation=activation, neuron=neuron, preprocess=pre,
            state_dict=_to_cpu(model.state_dict()),
            config=_config_dict(cfg),
            metrics={"history": history, "train_seconds": wall, "final_smoothing": g_now,
                     "machine": machine().to_dict(),
                     **({"world_size": world.size, "rank_seeds": {
                         "dropout": [cfg.seed + RANK_SEED_STRIDE * r for r in range(world.size)],
                         "noise": [cfg.seed + 2 + RANK_SEED_STRIDE * r
                                   for r in range(world.size)],
                         "augmentation": [cfg.seed + 4 + RANK_SEED_STRIDE * r
                                          for r in range(world.size)]}}
                        if world.active else {}),
                     **{k: v for k, v in record.items() if k.startswith("test_error")},
                     **({"init_from": _provenance(init)} if init is not None else {})},
            epoch=epoch + 1,
            train_state={"optimizer": _to_cpu(opt.state_dict()), "data_rng": gen.get_state(),
                         **({"model": raw, "ema_steps": ema.steps} if ema is not None else {}),
                         **_rank_states(world, noise_gen, aug_gen, device)},
        )
        if raw is not None:  # training goes on from the raw weights
            model.load_state_dict(raw)
        if checkpoint_path is not None and world.main:
            ck.save(checkpoint_path)
        if world.active:
            dist_barrier()  # every rank leaves the epoch with the checkpoint on disk
        # logged once saved: an epoch in the log is an epoch a resume starts after
        log("  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                      for k, v in record.items()))
    if ck is None:  # resumed a finished run
        ck = load_checkpoint(checkpoint_path)  # type: ignore[arg-type]
    return ck


#: Seed offset between ranks for dropout, training noise and augmentation under torchrun.
RANK_SEED_STRIDE = 1_000_003


def _rank_states(world: World, noise_gen: torch.Generator, aug_gen: torch.Generator,
                 device: torch.device) -> dict[str, Any]:
    """The per-process RNG states of a checkpoint: one process's at the top level (as always);
    under torchrun every rank's, gathered, in ``ranks``, with ``world_size``."""
    def mine(aug: bool) -> dict[str, Any]:
        return {"noise_rng": noise_gen.get_state(), "torch_rng": torch.get_rng_state(),
                **({"aug_rng": aug_gen.get_state()} if aug else {}),
                **({"cuda_rng": torch.cuda.get_rng_state(device).cpu()}
                   if device.type == "cuda" else {})}

    if not world.active:
        return mine(False)
    return {"world_size": world.size, "ranks": gather_objects(mine(True), world)}


def training_totals(ck: Checkpoint) -> tuple[int, float]:
    """(epochs, seconds) of all the training behind ``ck``, fine-tunes and what they started
    from included (``metrics["init_from"]``, nested)."""
    epochs, seconds = ck.epoch, float(ck.metrics.get("train_seconds") or 0.0)
    prov = ck.metrics.get("init_from")
    while prov:
        epochs += int(prov.get("epochs") or 0)
        seconds += float(prov.get("train_seconds") or 0.0)
        prov = prov.get("init_from")
    return epochs, seconds


def _init_checkpoint(cfg: TrainConfig, spec: NetSpec, activation: str,
                     pre: Preprocess) -> Checkpoint | None:
    """The checkpoint ``cfg.init_from`` names, checked against the net being trained."""
    if cfg.init_from is None:
        return None
    init = zoo.load(cfg.init_from)  # a file, or pretrained:NAME
    if spec_to_dict(init.spec) != spec_to_dict(spec) or init.activation != activation:
        raise TrainingError(
            f"--init-from {cfg.init_from} holds a {init.spec.name} net with {init.activation} "
            f"units; this run trains {spec.name} with {activation}: pick a checkpoint of the "
            "same net and activation"
        )
    if init.preprocess.input_shape != pre.input_shape:
        raise TrainingError(f"--init-from {cfg.init_from} expects inputs of shape "
                            f"{init.preprocess.input_shape}, the data have {pre.input_shape}")
    return init


def _provenance(init: Checkpoint) -> dict[str, Any]:
    """What a fine-tuned checkpoint records about the one it started from."""
    return {"epochs": init.epoch, "config": init.config,
            "train_seconds": init.metrics.get("train_seconds"),
            **{k: v for k, v in init.metrics.items()
               if k.startswith("test_error") or k in ("final_smoothing", "init_from")}}


def _to_cpu(obj: Any) -> Any:
    """``obj`` (nested dicts/lists of tensors) with every tensor copied to host memory."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


def _config_dict(cfg: TrainConfig) -> dict[str, Any]:
    d = dataclasses.asdict(cfg)
    d["weight_decay"] = list(cfg.weight_decay)
    return d


def _legacy_config(config: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint's config with the keys added since it was written, at the values that
    reproduce what it did (its "paper" recipe, before ``mean_crop`` existed, was "paper-exp")."""
    d = {**_LEGACY_CONFIG, **config}
    if "mean_crop" not in config and d.get("recipe") == "paper":
        d["recipe"] = "paper-exp"
    return d


def _as_asked(config: dict[str, Any]) -> dict[str, Any]:
    """A config dict with the precision as asked (``"auto"`` may resolve differently on the
    machine that resumes a run: that is the same run)."""
    d = dict(config)
    d["precision"] = d.pop("precision_requested", None) or d["precision"]
    return d

