"""Training throughput and precision: ReLU vs soft LIF, float32 vs bfloat16, in one run.

Images/s of one training step (forward + backward + SGD step, batch 128) of the paper's nets
with ReLU activations and with fused soft-LIF activations (training noise on, sigma = 10 Hz),
in three set-ups measured side by side:

* ``fp32 NCHW``: float32, contiguous NCHW tensors (softlif's training step before bf16 and
  channels-last were added: the baseline of the speed-up);
* ``fp32 CL``: float32, channels-last weights and inputs;
* ``bf16 CL``: channels-last under bfloat16 autocast (what ``softlif train --precision
  bfloat16`` runs: linear layers in bf16, the rate nonlinearity and weights in float32).

Then the accuracy effect: the same short training (``softlif.train.train``, same seed and
data) in both precisions, soft LIF on the embedded MNIST subset and, with ``--cifar-dir``,
on the first 10,000 CIFAR-10 training images (test error on 2,000 test images).

    python benchmarks/bench_training.py [--nets cifar10 mnist] [--steps 10] [--json out.json]
        [--cifar-dir DIR] [--accuracy-epochs 2]
    python benchmarks/bench_training.py --device cuda  # on a GPU (timings wait for the device)
"""

from __future__ import annotations

import argparse
import json
import time
from contextlib import nullcontext

import numpy as np
import torch

from softlif.activations import use_fused_kernels
from softlif.data import load_embedded_mnist, load_split, paper_preprocess
from softlif.networks import NETS, build
from softlif.train import TrainConfig, train

SETUPS = {"fp32 NCHW": ("float32", False), "fp32 CL": ("float32", True),
          "bf16 CL": ("bfloat16", True)}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def images_per_second(name: str, activation: str, precision: str, channels_last: bool,
                      steps: int, batch: int = 128, device: torch.device | None = None) -> float:
    device = device or torch.device("cpu")
    torch.manual_seed(0)
    spec = NETS[name]
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = build(spec, activation).train().to(device, memory_format=fmt)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    # inputs on the 0-255 scale (CIFAR) or [0, 1] (MNIST) less a mean, as in training
    scale = 60.0 if name.startswith("cifar") else 0.3
    x = (scale * torch.randn(batch, *spec.input_shape, device=device)).contiguous(
        memory_format=fmt)
    y = torch.randint(0, spec.classes, (batch,), device=device)
    ctx = (torch.autocast(device.type, dtype=torch.bfloat16) if precision == "bfloat16"
           else nullcontext())

    def step() -> None:
        with ctx:
            logits = model(x)
        loss = torch.nn.functional.cross_entropy(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(3):  # warm-up (and compilation)
        step()
    best = float("inf")
    for _ in range(3):
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    return batch * steps / best


def accuracy_effect(dataset: str, train_split, test_split, epochs: int,
                    device: torch.device) -> dict:
    pre = paper_preprocess(dataset, train_split)
    spec = NETS["mnist" if dataset == "mnist" else "cifar10"]
    out = {"dataset": dataset, "train_images": len(train_split),
           "test_images": len(test_split), "epochs": epochs}
    for precision in ("float32", "bfloat16"):
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
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N")
    ap.add_argument("--cifar-dir", help="CIFAR-10 folder (official layout) for the accuracy "
                                        "check on CIFAR-10; without it only MNIST is checked")
    ap.add_argument("--accuracy-epochs", type=int, default=2)
    ap.add_argument("--json")
    args = ap.parse_args()
    device = torch.device(args.device)
    where = (torch.cuda.get_device_name(device) if device.type == "cuda"
             else f"{torch.get_num_threads()} threads")
    print(f"torch {torch.__version__}, {where}; batch {args.batch}, "
          "forward + backward + SGD step; img/s")
    use_fused_kernels(True)
    rows = []
    for name in args.nets:
        for act in ("relu", "softlif"):
            row: dict = {"net": name, "activation": act, "device": where, "batch": args.batch}
            for label, (precision, cl) in SETUPS.items():
                row[label] = images_per_second(name, act, precision, cl, args.steps,
                                               args.batch, device)
            row["speedup_bf16_vs_fp32_nchw"] = row["bf16 CL"] / row["fp32 NCHW"]
            rows.append(row)
            print(f"{name:>8} {act:>8}: " + " | ".join(f"{k} {row[k]:7.1f}" for k in SETUPS)
                  + f" | bf16 CL / fp32 NCHW {row['speedup_bf16_vs_fp32_nchw']:.2f}x")
    for name in args.nets:
        relu = next(r for r in rows if r["net"] == name and r["activation"] == "relu")
        soft = next(r for r in rows if r["net"] == name and r["activation"] == "softlif")
        print(f"{name:>8}: soft LIF / ReLU in the same set-up: " + ", ".join(
            f"{k} {soft[k] / relu[k]:.2f}x" for k in SETUPS))
    acc = []
    tr, te = load_embedded_mnist()
    acc.append(accuracy_effect("mnist", tr, te, args.accuracy_epochs, device))
    if args.cifar_dir:
        ctr = load_split("cifar10", args.cifar_dir, "train")
        cte = load_split("cifar10", args.cifar_dir, "test")
        perm = np.random.default_rng(0).permutation(len(cte))[:2000]  # test set may be sorted
        acc.append(accuracy_effect("cifar10", ctr.subset(list(range(10000))),
                                   cte.subset(sorted(perm.tolist())), args.accuracy_epochs,
                                   device))
    print(f"accuracy effect: soft LIF (noise 10 Hz), adam, {args.accuracy_epochs} epochs, "
          "seed 0, same data; test error soft / hard-rate")
    for a in acc:
        f, b = a["float32"], a["bfloat16"]
        print(f"{a['dataset']:>8} ({a['train_images']} train, {a['test_images']} test): "
              f"float32 {100 * f['test_error']:.2f}% / {100 * f['test_error_hard']:.2f}% "
              f"({f['seconds']:.0f} s) | bfloat16 {100 * b['test_error']:.2f}% / "
              f"{100 * b['test_error_hard']:.2f}% ({b['seconds']:.0f} s)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"throughput": rows, "accuracy": acc}, fh, indent=2)


if __name__ == "__main__":
    main()
