"""The paper's experiment for one data set, end to end: the ReLU ANN, one soft-LIF ANN per
training-noise sigma (with an optional fine-tune at the final g), each converted and simulated
as a spiking net, the Table-4 sweep on the sigma-10 net, and a combined Markdown report beside
the paper's numbers.

Finished work is reused: trainings resume from their checkpoints (a finished one is not
repeated) and an evaluation is reused when its results.json was made from a checkpoint of
the same training configuration with the same settings on the same test images. The command
line (`softlif reproduce`) validates the configuration and loads the data, then calls
:func:`reproduce`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from .config import ExperimentConfig
from .data import ArraySplit, Preprocess
from .distributed import current, dist_barrier
from .evaluate import ann_errors, same_simulation
from .io import write_json_atomic, write_text_atomic
from .networks import NetSpec
from .recipes import RECIPE_LR
from .report import evaluate_checkpoint, markdown_report, reproduction_report
from .train import TrainConfig, train


def reproduce(conf: ExperimentConfig, spec: NetSpec, dataset: str, train_split: ArraySplit,
              test_split: ArraySplit, pre: Preprocess, x: torch.Tensor, y: torch.Tensor,
              out: Path, *, order: str = "dataset", notes: list[str] | None = None,
              progress: bool = True, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run (or reuse) every stage into ``out`` and return the combined results.

    ``x``, ``y``: the uint8 test images and labels to evaluate, in the order they are shown
    (``order`` names it for the report); ``notes``: lines for the report's notes. Writes
    ``out/results.json``, ``out/report.md`` and per model ``out/softlif-sigmaN/``.
    """
    notes = list(notes or [])
    main = current().main  # under torchrun rank 0 alone writes; the work is sharded
    tr = {k: v for k, v in dataclasses.asdict(conf.train).items() if v is not None}
    tr["weight_decay"], tr["noises"] = list(conf.train.weight_decay), list(conf.train.noises)
    sim = conf.simulate
    sw: dict[str, Any] = {} if conf.sweep.empty else {
        "taus": list(conf.sweep.taus), "times": list(conf.sweep.times),
        "windows": [list(w) for w in conf.sweep.windows]}
    n = len(x)
    common = {k: tr[k] for k in ("batch_size", "recipe", "lr", "anneal_fraction", "seed",
                                 "init", "precision") if k in tr}
    wd = tuple(tr.get("weight_decay", [0.0]))

    relu_cfg = TrainConfig(epochs=int(tr.get("relu_epochs", tr.get("epochs", 15))),
                           weight_decay=wd, anneal_to=None, **common)
    relu = train(spec, train_split, test_split, pre, relu_cfg, activation="relu",
                 checkpoint_path=out / "relu" / "checkpoint.pt", resume=True,
                 progress=progress, log=log, device=sim.device)
    relu_error = ann_errors(relu, x, y, sim.device)["ann_error"]  # sharded under torchrun
    results: dict[str, Any] = {
        "dataset": dataset, "net": spec.name, "train_images": len(train_split),
        "test_images": n, "test_order": order, "relu_error": relu_error, "relu_epochs": relu.epoch,
        "relu_train_seconds": relu.metrics.get("train_seconds", 0.0), "settings": sim.__dict__,
        "models": {}}
    noises = tr.get("noises", [10.0])
    finetune_epochs = int(tr.get("finetune_epochs", 0))
    lr = float(tr.get("lr", RECIPE_LR[tr.get("recipe", "adam")]))
    finetune_lr = float(tr.get("finetune_lr", lr / 10))
    main_sigma = 10.0 if 10.0 in noises else noises[0]
    for sigma in noises:
        cfg = TrainConfig(epochs=int(tr.get("epochs", 15)), weight_decay=wd, noise_std=sigma,
                          anneal_to=tr.get("anneal_to", 0.002), **common)
        folder = out / f"softlif-sigma{sigma:g}"
        ck = train(spec, train_split, test_split, pre, cfg, checkpoint_path=folder /
                   "checkpoint.pt", resume=True, progress=progress, log=log,
                   device=sim.device)
        if finetune_epochs:  # then a few epochs at the final g, fresh optimizer and schedule
            ft_cfg = TrainConfig(epochs=finetune_epochs, weight_decay=wd, noise_std=sigma,
                                 anneal_to=None, init_from=str(folder / "checkpoint.pt"),
                                 **{**common, "lr": finetune_lr})
            ck = train(spec, train_split, test_split, pre, ft_cfg, checkpoint_path=folder /
                       "finetuned.pt", resume=True, progress=progress, log=log,
                       device=sim.device)
        grid = sw if sigma == main_sigma and sw else None
        r = _reusable_results(folder / "results.json", ck.config, sim.__dict__, n, order,
                              grid)
        if r is None:
            r = evaluate_checkpoint(ck, dataset, len(train_split), x, y, sim, folder,
                                    sweep_grid=grid, progress=progress)
            r.update(relu_error=relu_error, noise_std_hz=sigma, test_order=order)
            if main:
                write_json_atomic(folder / "results.json", r)
        else:
            log(f"reusing {folder / 'results.json'} (same checkpoint, settings and images)")
        if main:
            write_text_atomic(folder / "report.md", markdown_report(
                r, f"{dataset}: soft-LIF net trained with noise sigma = {sigma:g} Hz"))
        dist_barrier()  # under torchrun: every rank sees the same finished stages
        results["models"][f"sigma{sigma:g}"] = {
            "noise_std_hz": sigma, **{k: r.get(k) for k in (
                "ann_error", "ann_error_hard", "snn_error", "snn_rates_hz", "predicted_rates_hz",
                "mean_rate_hz", "epochs", "finetune_epochs", "train_seconds", "sweep",
                "images_per_second")},
            "efficiency": r["energy"]["efficiency"],
            "test_error_full": ck.metrics.get("test_error"),
            "test_error_hard_full": ck.metrics.get("test_error_hard"),
            "report": f"softlif-sigma{sigma:g}/report.md"}
    results["relu_test_error_full"] = relu.metrics.get("test_error")
    if main:
        write_json_atomic(out / "results.json", results)
        write_text_atomic(out / "report.md", reproduction_report(results, notes))
    dist_barrier()
    return results



def _reusable_results(path: Path, train_config: dict[str, Any], settings: dict[str, Any],
                      n: int, order: str, grid: dict[str, Any] | None) -> dict[str, Any] | None:
    """A model's earlier results.json, if it evaluated a checkpoint trained with the same
    configuration (so: the same checkpoint, training being repeatable) with the same settings
    on the same test images (and holds the sweep when one is asked for)."""
    try:
        r = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    same = (isinstance(r, dict) and r.get("train_config") == json.loads(json.dumps(train_config))
            and r.get("test_images") == n
            and r.get("test_order") == order
            and same_simulation(r.get("settings"), settings))
    return r if same and (not grid or r.get("sweep")) else None
