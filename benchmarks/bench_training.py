"""Training throughput on this machine: ReLU vs soft LIF, float32 vs bfloat16, side by side.

Prints the CPU (model, torch's capability, the flags that decide native bf16) and, for the
paper's CIFAR-10 and MNIST nets, images/s of one training step (forward + backward + SGD with
momentum, as in the figures of earlier machines; batch 128, channels-last, training noise on
for soft LIF, fused soft-LIF kernels: what ``softlif train`` runs) in each precision:

* ``float32``;
* ``bfloat16``: the linear layers under autocast (weights, optimizer state and the rate
  nonlinearity float32), what ``--precision bfloat16`` runs;
* ``float32 compiled`` (with ``--compile``): the model under ``torch.compile`` (forward and
  backward as whole graphs), to see whether it pays (its compile time is printed beside it).

and which precision ``precision="auto"`` picks here (:func:`softlif.hardware.resolve_precision`).
ReLU and soft LIF are timed alternately, round after round (``--rounds`` x ``--steps``), and
their ratio is the median of the per-round ratios: this machine's speed drifts by 10-30%
between runs, and a ratio measured side by side is what to compare. bf16 / float32 is printed
for both activations. ``--accuracy`` adds the same short training in both precisions
(embedded MNIST subset; with ``--cifar-dir`` also 10,000 CIFAR-10 images) to show the accuracy
effect of bf16.

    python benchmarks/bench_training.py [--nets cifar10 mnist] [--rounds 5] [--steps 5] [--compile]
        [--accuracy] [--cifar-dir DIR] [--json results/avx2/bench_training.json]
    ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 python benchmarks/bench_training.py
        # on an AMX CPU: what an AVX2-only CPU does (the header line shows the cap)
    python benchmarks/bench_training.py --device cuda
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch

from softlif.activations import use_fused_kernels
from softlif.data import load_embedded_mnist, load_split, paper_preprocess
from softlif.hardware import machine, resolve_precision
from softlif.io import write_json_atomic
from softlif.networks import NETS, build
from softlif.train import TrainConfig, make_optimizer, train

PRECISIONS = ("float32", "bfloat16")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_step(name: str, activation: str, precision: str, batch: int, device: torch.device,
              compiled: bool = False, recipe: str = "paper") -> Callable[[], None]:
    """One training step of the paper's net ``name`` (forward + backward + optimizer step) on
    a fixed random batch, channels-last, as ``softlif train`` runs it."""
    torch.manual_seed(0)
    spec = NETS[name]
    model = build(spec, activation).train().to(device, memory_format=torch.channels_last)
    opt = make_optimizer(model, TrainConfig(recipe=recipe, precision="float32"))  # type: ignore[arg-type]
    # inputs on the 0-255 scale (CIFAR) or [0, 1] (MNIST) less a mean, as in training
    scale = 60.0 if name.startswith("cifar") else 0.3
    x = (scale * torch.randn(batch, *spec.input_shape, device=device)).contiguous(
        memory_format=torch.channels_last)
    y = torch.randint(0, spec.classes, (batch,), device=device)
    ctx = (torch.autocast(device.type, dtype=torch.bfloat16) if precision == "bfloat16"
           else nullcontext())

    # compiled: the model's forward (and through AOTAutograd its backward) as one graph
    net = torch.compile(model) if compiled else model

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with ctx:
            logits = net(x)
        torch.nn.functional.cross_entropy(logits.float(), y).backward()
        opt.step()
        _sync(device)

    return step


def paired_throughput(name: str, precision: str, steps: int, rounds: int, batch: int,
                      device: torch.device, compiled: bool = False) -> dict[str, Any]:
    """img/s of the ReLU and the soft-LIF net, timed alternately: ``rounds`` rounds of
    ``steps`` steps of each (after 3 warm-up steps each, which include any compilation), so
    that a machine whose speed drifts slows both alike. Returns the median img/s of each, the
    median of the per-round ratios soft LIF / ReLU, and the warm-up seconds."""
    steps_of = {act: make_step(name, act, precision, batch, device, compiled)
                for act in ("relu", "softlif")}
    warm = {}
    for act, step in steps_of.items():
        t0 = time.perf_counter()
        for _ in range(3):
            step()
        warm[act] = time.perf_counter() - t0
    secs: dict[str, list[float]] = {"relu": [], "softlif": []}
    for _ in range(rounds):
        for act, step in steps_of.items():
            t0 = time.perf_counter()
            for _ in range(steps):
                step()
            secs[act].append(time.perf_counter() - t0)
    ratios = [r / s for r, s in zip(secs["relu"], secs["softlif"], strict=True)]
    return {"relu": batch * steps / statistics.median(secs["relu"]),
            "softlif": batch * steps / statistics.median(secs["softlif"]),
            "softlif_over_relu": statistics.median(ratios),
            "softlif_over_relu_range": [min(ratios), max(ratios)],
            "warmup_s": warm}


def accuracy_effect(dataset: str, train_split: Any, test_split: Any, epochs: int,
                    device: torch.device) -> dict:
    pre = paper_preprocess(dataset, train_split)
    spec = NETS["mnist" if dataset == "mnist" else "cifar10"]
    out: dict[str, Any] = {"dataset": dataset, "train_images": len(train_split),
                           "test_images": len(test_split), "epochs": epochs}
    for precision in PRECISIONS:
        cfg = TrainConfig(epochs=epochs, seed=0, precision=precision)  # type: ignore[arg-type]
        t0 = time.perf_counter()
        ck = train(spec, train_split, test_split, pre, cfg, progress=False,
                   log=lambda s: None, device=device)
        out[precision] = {"test_error": ck.metrics["test_error"],
                          "test_error_hard": ck.metrics["test_error_hard"],
                          "train_loss": ck.metrics["history"][-1]["train_loss"],
                          "seconds": time.perf_counter() - t0}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nets", nargs="+", default=["cifar10", "mnist"], choices=["cifar10", "mnist"])
    ap.add_argument("--steps", type=int, default=5, help="steps per timed round")
    ap.add_argument("--rounds", type=int, default=5,
                    help="alternating rounds (ReLU, soft LIF) per precision")
    ap.add_argument("--precisions", nargs="+", default=list(PRECISIONS), choices=PRECISIONS,
                    help="precisions to time (default both; the summary ratios need both)")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N")
    ap.add_argument("--compile", action="store_true",
                    help="also time the float32 step compiled whole with torch.compile")
    ap.add_argument("--accuracy", action="store_true",
                    help="also train briefly in both precisions (accuracy effect of bf16)")
    ap.add_argument("--cifar-dir", help="CIFAR-10 folder (official layout) for --accuracy")
    ap.add_argument("--accuracy-epochs", type=int, default=2)
    ap.add_argument("--json", help="write the figures (and the machine) here")
    args = ap.parse_args()
    device = torch.device(args.device)
    info = machine()
    auto = resolve_precision("auto", device)
    print(info.line())
    print(f"device {device}; precision='auto' picks {auto} here; batch {args.batch}, "
          f"forward + backward + SGD-momentum step, channels-last; median img/s of "
          f"{args.rounds} alternating rounds of {args.steps} steps")
    use_fused_kernels(True)
    rows = []
    setups = [(p, False) for p in args.precisions] + (
        [("float32", True)] if args.compile else [])
    summary: dict[str, Any] = {}
    for name in args.nets:
        by_act: dict[str, dict[str, Any]] = {a: {"net": name, "activation": a,
                                                 "batch": args.batch}
                                             for a in ("relu", "softlif")}
        summary[name] = {}
        for precision, compiled in setups:
            label = precision + (" compiled" if compiled else "")
            r = paired_throughput(name, precision, args.steps, args.rounds, args.batch, device,
                                  compiled)
            for act in ("relu", "softlif"):
                by_act[act][label] = r[act]
                if compiled:
                    by_act[act][label + " warm-up s"] = r["warmup_s"][act]
            summary[name][f"softlif_over_relu {label}"] = r["softlif_over_relu"]
            summary[name][f"softlif_over_relu {label} range"] = r["softlif_over_relu_range"]
            print(f"{name:>8} {label:>16}: ReLU {r['relu']:7.1f} img/s | soft LIF "
                  f"{r['softlif']:7.1f} img/s | soft LIF / ReLU {r['softlif_over_relu']:.2f}x "
                  f"(rounds {min(r['softlif_over_relu_range']):.2f}-"
                  f"{max(r['softlif_over_relu_range']):.2f})"
                  + (f" | warm-up incl. compile {r['warmup_s']['softlif']:.0f} s"
                     if compiled else ""))
        for act in ("relu", "softlif"):
            row = by_act[act]
            row["auto"] = row.get(auto, float("nan"))
            rows.append(row)
        soft, relu = by_act["softlif"], by_act["relu"]
        summary[name]["softlif_auto_img_s"] = soft["auto"]
        if "bfloat16" in soft and "float32" in soft:
            summary[name]["bfloat16_over_float32_softlif"] = soft["bfloat16"] / soft["float32"]
            summary[name]["bfloat16_over_float32_relu"] = relu["bfloat16"] / relu["float32"]
            print(f"{name:>8}: bf16 / float32: soft LIF "
                  f"{summary[name]['bfloat16_over_float32_softlif']:.2f}x, ReLU "
                  f"{summary[name]['bfloat16_over_float32_relu']:.2f}x; auto ({auto}): soft "
                  f"LIF {soft['auto']:.1f} img/s")
    acc = []
    if args.accuracy:
        tr, te = load_embedded_mnist()
        acc.append(accuracy_effect("mnist", tr, te, args.accuracy_epochs, device))
        if args.cifar_dir:
            ctr = load_split("cifar10", args.cifar_dir, "train")
            cte = load_split("cifar10", args.cifar_dir, "test")
            perm = np.random.default_rng(0).permutation(len(cte))[:2000]  # may be sorted
            acc.append(accuracy_effect("cifar10", ctr.subset(list(range(10000))),
                                       cte.subset(sorted(perm.tolist())),
                                       args.accuracy_epochs, device))
        print(f"accuracy effect: soft LIF (noise 10 Hz), adam, {args.accuracy_epochs} epochs, "
              "seed 0, same data; test error soft / hard-rate")
        for a in acc:
            f, b = a["float32"], a["bfloat16"]
            print(f"{a['dataset']:>8} ({a['train_images']} train, {a['test_images']} test): "
                  f"float32 {100 * f['test_error']:.2f}% / {100 * f['test_error_hard']:.2f}% "
                  f"({f['seconds']:.0f} s) | bfloat16 {100 * b['test_error']:.2f}% / "
                  f"{100 * b['test_error_hard']:.2f}% ({b['seconds']:.0f} s)")
    if args.json:
        write_json_atomic(Path(args.json), {
            "machine": info.to_dict(), "device": str(device), "auto_precision": auto,
            "throughput": rows, "summary": summary, "accuracy": acc})


if __name__ == "__main__":
    main()
