"""Split bfloat16 weights (W = W_hi + W_lo, both bf16) on this CPU: accuracy and speed of the
linear maps on spikes against float32, side by side in one run.

Spikes are exact in bf16, weights are not; splitting each weight into a bf16 high part and a
bf16 remainder would keep float32-level weights at bf16 matrix-unit speed if the products were
accumulated and returned in float32. On CPU, torch's bf16 matmul and convolution return bf16
(the float32-output form, ``aten::mm.dtype``, has no CPU kernel in torch 2.13), so each
partial product is rounded to bf16 on the way out. This script measures what that leaves, for
the paper's MNIST fc layer (3,136 -> 2,000, pooled spikes) and CIFAR-10 conv2 (64 -> 64
channels, 5x5, on 12x12 maps of spikes), batch 32, at 2% and 10% input density: relative error
of each path's output against float64, and ms per call.

    python benchmarks/bench_split_bf16.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from bench_event_driven import ms  # noqa: E402  (the same timing helper)


def main() -> None:
    g = torch.Generator().manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    cases = {
        "mnist fc": (lambda x, w: x @ w.t(), (32, 3136), (2000, 3136), 0.25),
        "cifar conv2": (lambda x, w: F.conv2d(x, w, padding=2), (32, 64, 12, 12),
                        (64, 64, 5, 5), 1.0),
    }
    for name, (op, xs, ws, step) in cases.items():
        w = torch.randn(ws, generator=g) * 0.05
        w_hi = w.bfloat16()
        w_lo = (w - w_hi.float()).bfloat16()
        for density in (0.02, 0.1):
            x = (torch.rand(xs, generator=g) < density).float() * step
            ref = op(x.double(), w.double())

            def err(y: torch.Tensor, ref: torch.Tensor = ref) -> float:
                return float((y.double() - ref).norm() / ref.norm())

            xb = x.bfloat16()
            paths = {
                "float32": lambda x=x, w=w, op=op: op(x, w),
                "bf16": lambda xb=xb, w_hi=w_hi, op=op: op(xb, w_hi),
                "bf16 split (hi + lo)": lambda xb=xb, w_hi=w_hi, w_lo=w_lo, op=op:
                    op(xb, w_hi).float() + op(xb, w_lo).float(),
            }
            print(f"\n{name}, density {density}")
            for label, fn in paths.items():
                print(f"  {label:<22} rel. error {err(fn()):.2e}   {ms(fn):7.3f} ms")


if __name__ == "__main__":
    main()
