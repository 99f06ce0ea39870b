"""Event-driven layers on spikes: dense products vs accumulating only the active inputs, by
input density, side by side in one run.

Fully connected: dense matmul vs summing only the active inputs' weight rows (a CSR
sparse-dense product). The input is what a fully connected stage of a spiking net sees in one
step: 0/1 spikes, or their average over a pooling window (values in k/4), for batch 32, for
the paper's MNIST fc layer (3,136 pooled inputs -> 2,000) and the ImageNet net's (9,216 ->
4,096, 4,096 -> 4,096); it prints ms per step for each path and the density below which the
sparse path wins (the crossover the simulator's ``event_driven`` option uses).

Convolutions (the paper's second conv layers, fed by the first layer's spikes through its
pooling, as in the simulator): oneDNN's dense channels-last convolution vs two event-driven
formulations built from torch ops, (a) scatter: every nonzero input adds its value times its
kernel window of weights into the output (``index_add_``), (b) sparse im2col: the unfolded
input as a sparse matrix (only the nonzero inputs' k x k copies) times the flattened kernel
(a sparse-dense product). Densities are of the first layer's 0/1 spikes per step (the paper's
MNIST layer 1 fires at 4.6 Hz = 0.46% per 1 ms step, CIFAR-10's at 173 Hz = 17%); the pooled
input's density is printed beside them. Both event-driven paths are checked against the dense
convolution.

    python benchmarks/bench_event_driven.py [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time
from functools import partial

import torch
import torch.nn.functional as F

from softlif.hardware import record as machine_record

DENSITIES = (0.001, 0.003, 0.01, 0.02, 0.03, 0.05, 0.07, 0.1, 0.15)
SHAPES = {"mnist fc (3136 -> 2000)": (3136, 2000), "imagenet fc6 (9216 -> 4096)": (9216, 4096),
          "imagenet fc7 (4096 -> 4096)": (4096, 4096)}


def ms(fn, repeats: int = 20) -> float:
    fn()
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - t0) / repeats * 1e3


#: name -> (in channels, spike map side, out channels, kernel, padding, pool kernel, stride,
#: pool padding): the paper's conv2 and the pooling in front of it (SPEC section 5).
CONVS = {"mnist conv2 (16x28x28 spikes, pool 2/2, 5x5 -> 64)": (16, 28, 64, 5, 2, 2, 2, 0),
         "cifar10 conv2 (64x24x24 spikes, pool 3/2, 5x5 -> 64)": (64, 24, 64, 5, 2, 3, 2, 1)}
CONV_DENSITIES = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.17)


def _active_windows(x_cl: torch.Tensor, k: int, pad: int):
    """The nonzero inputs of a channels-last (B, H, W, C) map and, per input and kernel tap,
    the output row (b, y, x flattened; stride 1, same size) it feeds and whether it exists."""
    b, h, w, _ = x_cl.shape
    nz = x_cl.nonzero()
    bi, yi, xi, ci = nz.unbind(1)
    vals = x_cl[bi, yi, xi, ci]
    dy = torch.arange(k).view(1, k, 1)
    dx = torch.arange(k).view(1, 1, k)
    yo = yi.view(-1, 1, 1) + pad - dy
    xo = xi.view(-1, 1, 1) + pad - dx
    ok = (yo >= 0) & (yo < h) & (xo >= 0) & (xo < w)
    rows = (bi.view(-1, 1, 1) * h + yo) * w + xo
    return vals, ci, dy, dx, rows, ok


def scatter_conv(x_cl: torch.Tensor, wt: torch.Tensor, pad: int) -> torch.Tensor:
    """Event-driven convolution, scatter form: ``wt`` (C, k, k, O); returns (B*H*W, O)."""
    b, h, w, _ = x_cl.shape
    vals, ci, _, _, rows, ok = _active_windows(x_cl, wt.shape[1], pad)
    out = torch.zeros(b * h * w, wt.shape[-1])
    out.index_add_(0, rows[ok], (wt[ci] * vals.view(-1, 1, 1, 1))[ok])
    return out


def sparse_im2col_conv(x_cl: torch.Tensor, wflat: torch.Tensor, k: int, pad: int
                       ) -> torch.Tensor:
    """Event-driven convolution, sparse im2col form: ``wflat`` (C*k*k, O); (B*H*W, O)."""
    b, h, w, c = x_cl.shape
    vals, ci, dy, dx, rows, ok = _active_windows(x_cl, k, pad)
    cols = ((ci.view(-1, 1, 1) * k + dy) * k + dx).expand_as(rows)
    a = torch.sparse_coo_tensor(torch.stack([rows[ok], cols[ok]]),
                                vals.view(-1, 1, 1).expand_as(rows)[ok],
                                (b * h * w, c * k * k), check_invariants=False).coalesce()
    return torch.sparse.mm(a, wflat)


def bench_convs(batch: int, g: torch.Generator) -> list[dict]:
    rows = []
    for name, (c, side, o, k, pad, pk, ps, pp) in CONVS.items():
        w = torch.randn(o, c, k, k, generator=g) * 0.05
        w_cl = w.contiguous(memory_format=torch.channels_last)
        wt = w.permute(1, 2, 3, 0).contiguous()
        wflat = wt.reshape(c * k * k, o)
        print(f"\n{name}\n  {'spikes':>7} {'pooled':>7} {'dense ms':>9} {'scatter ms':>10} "
              f"{'im2col ms':>9} {'best/dense':>10}  (best: the faster event-driven path)")
        crossover = None
        for d in CONV_DENSITIES:
            s = (torch.rand(batch, c, side, side, generator=g) < d).float()
            x = F.avg_pool2d(s, pk, ps, padding=pp, ceil_mode=True, count_include_pad=False)
            x = x.contiguous(memory_format=torch.channels_last)
            x_cl = x.permute(0, 2, 3, 1)  # (B, H, W, C), contiguous memory
            ref = F.conv2d(x, w_cl, padding=pad).permute(0, 2, 3, 1).reshape(-1, o)
            torch.testing.assert_close(scatter_conv(x_cl, wt, pad), ref, rtol=1e-4, atol=1e-5)
            torch.testing.assert_close(sparse_im2col_conv(x_cl, wflat, k, pad), ref,
                                       rtol=1e-4, atol=1e-5)
            dense = ms(partial(F.conv2d, x, w_cl, padding=pad))
            scat = ms(partial(scatter_conv, x_cl, wt, pad), repeats=5)
            im2col = ms(partial(sparse_im2col_conv, x_cl, wflat, k, pad), repeats=5)
            pooled = float((x != 0).float().mean())
            rows.append({"layer": name, "spike_density": d, "pooled_density": pooled,
                         "dense_ms": dense, "scatter_ms": scat, "sparse_im2col_ms": im2col})
            if min(scat, im2col) < dense:
                crossover = d
            print(f"  {d:7.3f} {pooled:7.3f} {dense:9.3f} {scat:10.3f} {im2col:9.3f} "
                  f"{min(scat, im2col) / dense:9.1f}x")
        print(f"  event-driven wins up to spike density {crossover}")
    return rows


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
    rows += bench_convs(args.batch, g)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine_record(), "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
