"""Training throughput: soft LIF vs ReLU, measured side by side in one run.

Images/s of one training step (forward + backward + SGD step, batch 128) of the paper's nets
with ReLU activations and with soft-LIF activations (training noise on, sigma = 10 Hz), the
latter eager and with the fused kernels (``softlif.activations.use_fused_kernels``).

    python benchmarks/bench_training.py [--nets cifar10 mnist] [--steps 10] [--json out.json]
    python benchmarks/bench_training.py --device cuda  # on a GPU (timings wait for the device)
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from softlif.activations import use_fused_kernels
from softlif.networks import NETS, build


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def images_per_second(name: str, activation: str, steps: int, batch: int = 128,
                      device: torch.device | None = None) -> float:
    device = device or torch.device("cpu")
    torch.manual_seed(0)
    spec = NETS[name]
    model = build(spec, activation).train().to(device)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    x = torch.randn(batch, *spec.input_shape, device=device)
    y = torch.randint(0, spec.classes, (batch,), device=device)

    def step() -> None:
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(3):  # warm-up (and compilation)
        step()
    best = float("inf")
    for _ in range(2):
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    return batch * steps / best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nets", nargs="+", default=["cifar10", "mnist"], choices=["cifar10", "mnist"])
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N")
    ap.add_argument("--json")
    args = ap.parse_args()
    device = torch.device(args.device)
    where = (torch.cuda.get_device_name(device) if device.type == "cuda"
             else f"{torch.get_num_threads()} threads")
    print(f"torch {torch.__version__}, {where}; batch {args.batch}, "
          "forward + backward + SGD step")
    rows = []
    for name in args.nets:
        use_fused_kernels(False)
        relu = images_per_second(name, "relu", args.steps, args.batch, device)
        eager = images_per_second(name, "softlif", args.steps, args.batch, device)
        use_fused_kernels(True)
        fused = images_per_second(name, "softlif", args.steps, args.batch, device)
        use_fused_kernels(False)
        row = {"net": name, "device": where, "batch": args.batch, "relu_img_s": relu,
               "softlif_eager_img_s": eager,
               "softlif_fused_img_s": fused, "ratio_eager": eager / relu,
               "ratio_fused": fused / relu}
        rows.append(row)
        print(f"{name:>8}: ReLU {relu:7.1f} img/s | soft LIF eager {eager:7.1f} img/s "
              f"({eager / relu:.2f}x) | soft LIF fused {fused:7.1f} img/s ({fused / relu:.2f}x)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
