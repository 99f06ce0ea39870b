"""Energy-aware fine-tuning over the rate-penalty weight: accuracy against synaptic events.

The paper leaves trading accuracy for fewer spikes to future work. softlif's training loss can
add ``rate_penalty`` times the expected synaptic events per second per image (millions, the
energy model's convention: :attr:`softlif.train.TrainConfig.rate_penalty`). This module
fine-tunes one trained net once per penalty weight (same recipe, same number of epochs, same
seed; weight 0 is the same fine-tuning without the penalty, the reference point), simulates
each as a spiking net on the same test images, and returns the points with their Pareto front
(no other point has both fewer events and a lower error), written as ``pareto.json`` and
plotted as ``pareto.png``.

Layout of ``out``: ``penalty-<weight>/checkpoint.pt`` (each fine-tune resumes from its own
checkpoint) and ``penalty-<weight>/simulate.json``, reused when it was made from the same
checkpoint epoch with the same simulation settings on the same number of images.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from . import zoo
from .data import ArraySplit, Preprocess
from .distributed import current
from .energy import pareto_front
from .evaluate import SimSettings, ann_errors, run_snn, same_simulation
from .io import write_json_atomic
from .train import TrainConfig, check_rate_penalty, train


def finetune_config(base: dict[str, Any], rate_penalty: float, init_from: str, epochs: int,
                    lr: float, seed: int) -> TrainConfig:
    """The base net's own training configuration (``Checkpoint.config``: batch, recipe, noise,
    precision, ...) as a fine-tune from ``init_from``: ``epochs`` at learning rate ``lr``, the
    smoothing held at the base's final value (no annealing), ``seed``, ``rate_penalty``."""
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    kw = {k: v for k, v in base.items() if k in names}
    if "weight_decay" in kw:
        kw["weight_decay"] = tuple(kw["weight_decay"])
    # smoothing None: the fine-tune keeps the base's final (annealed) g, not its starting one
    kw.update(epochs=epochs, lr=lr, seed=seed, rate_penalty=rate_penalty, init_from=init_from,
              anneal_to=None, smoothing=None)
    return TrainConfig(**kw)


def point_dir(out: Path, rate_penalty: float) -> Path:
    """Where the run of one penalty weight lives."""
    return out / f"penalty-{rate_penalty:g}"


def _reusable(path: Path, epoch: int, sim: SimSettings, n: int) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    ok = (isinstance(saved, dict) and same_simulation(saved.get("settings"), sim.__dict__)
          and saved.get("images") == n
          and saved.get("checkpoint", {}).get("epochs") == epoch)
    return saved if ok else None


def penalty_sweep(checkpoint: str | Path, penalties: Sequence[float], train_split: ArraySplit,
                  test_split: ArraySplit, pre: Preprocess, x: torch.Tensor, y: torch.Tensor,
                  sim: SimSettings, out: Path, *, epochs: int = 4, lr: float = 2e-4,
                  seed: int = 10, progress: bool = True,
                  log: Callable[[str], None] = print) -> dict[str, Any]:
    """Fine-tune the net in ``checkpoint`` once per weight in ``penalties`` (>= 0) and simulate
    each on the uint8 test images ``x`` (labels ``y``) with ``sim``; returns (and writes to
    ``out/pareto.json``, with ``out/pareto.png``) every point's errors, rates, synaptic events
    per second per image (millions) and efficiency, and the Pareto front. Every weight is
    checked before any training."""
    from .figures import available, pareto_plot
    from .neurons import neuron_to_dict

    main = current().main
    base = zoo.load(checkpoint)  # a file, or pretrained:NAME
    weights = [float(p) for p in penalties]
    if not weights or len(set(weights)) != len(weights):
        raise ValueError(f"need distinct penalty weights to sweep, got {weights}")
    if base.activation == "relu":
        raise ValueError("the penalty sweep fine-tunes a spiking net: the checkpoint holds a "
                         "ReLU net")
    for w in weights:
        if not w >= 0:
            raise ValueError(f"rate-penalty weights must be >= 0, got {w}")
        check_rate_penalty(w, base.activation)
    points = []
    for w in weights:
        d = point_dir(out, w)
        cfg = finetune_config(base.config, w, str(checkpoint), epochs, lr, seed)
        log(f"rate penalty {w:g}: fine-tuning {epochs} epochs into {d}")
        ck = train(base.spec, train_split, test_split, pre, cfg, activation=base.activation,
                   checkpoint_path=d / "checkpoint.pt", resume=True, progress=progress,
                   log=log, device=sim.device)
        summary = _reusable(d / "simulate.json", ck.epoch, sim, len(x))
        if summary is None:
            _, snn_summary, _ = run_snn(ck, x, y, sim, progress=progress)
            summary = {**ann_errors(ck, x, y, sim.device), **snn_summary, "rate_penalty": w,
                       "checkpoint": {"path": str(d / "checkpoint.pt"), "epochs": ck.epoch,
                                      "config": ck.config, "metrics": ck.metrics,
                                      "neuron": None if ck.neuron is None
                                      else neuron_to_dict(ck.neuron)}}
            if main:
                write_json_atomic(d / "simulate.json", summary)
        e = summary["energy"]
        points.append({"rate_penalty": w, "snn_error": summary["snn_error"],
                       "ann_error": summary["ann_error"],
                       "ann_error_hard": summary["ann_error_hard"],
                       "images": summary["images"], "msynops_per_s": e["synops_per_s"] / 1e6,
                       "efficiency": e["efficiency"], "snn_rates_hz": summary["snn_rates_hz"],
                       "mean_rate_hz": summary["mean_rate_hz"]})
        log(f"rate penalty {w:g}: SNN error {summary['snn_error'] * 100:.2f} %, "
            f"{e['synops_per_s'] / 1e6:.2f} M synaptic events/s per image")
    result = {"checkpoint": str(checkpoint), "finetune": {"epochs": epochs, "lr": lr,
                                                          "seed": seed},
              "settings": sim.__dict__, "test_images": len(x), "points": points,
              "pareto_front": pareto_front(points)}
    if main:  # under torchrun the work is sharded and rank 0 alone writes
        write_json_atomic(out / "pareto.json", result)
        result["figure"] = [str(p) for p in pareto_plot(points, out / "pareto")] \
            if available() else []
    return result
