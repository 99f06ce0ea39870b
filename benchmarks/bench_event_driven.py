"""Event-driven fully connected layers: dense matmul vs summing only the active inputs' weight
rows (a CSR sparse-dense product), by input density, side by side in one run.

The input is what a fully connected stage of a spiking net sees in one step: 0/1 spikes, or
their average over a pooling window (values in k/4), for batch 32, for the paper's MNIST fc
layer (3,136 pooled inputs -> 2,000) and the ImageNet net's (9,216 -> 4,096, 4,096 -> 4,096);
it prints ms per step for each path and the density below which the sparse path wins (the
crossover the simulator's ``event_driven`` option uses).

    python benchmarks/bench_event_driven.py [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time

import torch

DENSITIES = (0.001, 0.003, 0.01, 0.02, 0.03, 0.05, 0.07, 0.1, 0.15)
SHAPES = {"mnist fc (3136 -> 2000)": (3136, 2000), "imagenet fc6 (9216 -> 4096)": (9216, 4096),
          "imagenet fc7 (4096 -> 4096)": (4096, 4096)}


def ms(fn, repeats: int = 20) -> float:
    fn()
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - t0) / repeats * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--json")
    args = ap.parse_args()
    g = torch.Generator().manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}")
    rows = []
    for name, (n_in, n_out) in SHAPES.items():
        wt = torch.randn(n_in, n_out, generator=g)
        print(f"\n{name}\n  {'density':>8} {'dense ms':>9} {'sparse ms':>9} {'speed-up':>8}")
        crossover = None
        for d in DENSITIES:
            x = (torch.rand(args.batch, n_in, generator=g) < d).float()
            dense = ms(lambda x=x, wt=wt: x @ wt)
            sparse = ms(lambda x=x, wt=wt: torch.sparse.mm(x.to_sparse_csr(), wt))
            torch.testing.assert_close(torch.sparse.mm(x.to_sparse_csr(), wt), x @ wt,
                                       rtol=1e-4, atol=1e-3)
            rows.append({"layer": name, "density": d, "dense_ms": dense, "sparse_ms": sparse})
            if sparse < dense:
                crossover = d
            print(f"  {d:8.3f} {dense:9.3f} {sparse:9.3f} {dense / sparse:7.2f}x")
        print(f"  sparse wins up to density {crossover}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
