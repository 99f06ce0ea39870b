"""Split 8-bit integer maps on spikes against float32 maps, alternating repeated runs.

Single runs of ``bench_simulation.py`` on this 2-core machine move by 10-30% from run to run,
more than the split's effect, so this benchmark alternates the two settings (default path,
``split_int8`` on / off) three times each on the same net, weights and inputs, and then
times the largest split map alone (float32 vs split) on the spike inputs recorded from one
block of the simulation. Prints img/s per run and ms per block; ``--json`` writes them.

    python benchmarks/bench_split_int8.py [--net cifar10] [--json results/avx2/bench_split_int8.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from bench_event_driven import ms
from bench_simulation import NETS, TARGET_RATES, Synapse, build, convert, scale_to_rates

from softlif.hardware import record as machine_record
from softlif.simulate import Simulator, _prepare_linear, _spike_inputs, simulate
from softlif.split_int8 import SplitInt8Map, split_int8_map


@torch.no_grad()
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--net", default="cifar10", choices=list(TARGET_RATES))
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args()
    torch.manual_seed(0)
    spec = NETS[args.net]
    snn = convert(build(spec, "softlif").eval(), spec.input_shape, Synapse("alpha", 0.005))
    x = torch.randn(args.images, *spec.input_shape)
    scale_to_rates(snn, x[:64], TARGET_RATES[args.net])
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {args.net} net at the "
          f"paper's rates, T = 200 steps, batch 32, fused, {args.images} images per run")
    runs: dict[str, list[float]] = {"split": [], "float maps": []}
    for split in (True, False):  # compile both first
        simulate(snn, x[:32], presentation_time=0.01, batch_size=32, fused=True,
                 split_int8=split)
    for _ in range(args.repeats):
        for label, split in (("split", True), ("float maps", False)):
            t0 = time.perf_counter()
            simulate(snn, x, presentation_time=0.2, batch_size=32, fused=True,
                     split_int8=split)
            runs[label].append(args.images / (time.perf_counter() - t0))
    for label, v in runs.items():
        print(f"  {label:<11} img/s: " + ", ".join(f"{r:.2f}" for r in v))
    # the largest split map alone, on one block's recorded spike inputs
    sim = Simulator(snn, 32, fused=True, split_int8=True)
    sim.set_input(x[:32])
    maps = [(k, m) for k, m in enumerate(sim.linears) if isinstance(m, SplitInt8Map)]
    result: dict = {"net": args.net, "images": args.images, "img_s": runs, "maps": []}
    for _ in range(50):
        sim.step()
    for k, _m in maps:
        spikes = []
        for _ in range(10):
            sim.step()
            spikes.append(_spike_inputs(sim, k, sim.sim_state.spikes)[0].clone())
        inp = torch.cat(spikes).contiguous(memory_format=torch.channels_last)
        f32 = _prepare_linear(snn.stages[k].linear, torch.device("cpu"), torch.float32)
        split = split_int8_map(f32)
        assert split is not None
        times = [(ms(lambda f=f32, i=inp: f(i), 10), ms(lambda f=split, i=inp: f(i), 10))
                 for _ in range(args.repeats)]
        diff = float((f32(inp) - split(inp)).abs().max())
        density = float((inp > 0).double().mean())
        print(f"  stage {k} map, block of 10 steps (input density {density:.3f}): "
              + "; ".join(f"float32 {a:.1f} ms, split {b:.1f} ms" for a, b in times)
              + f"; max |split - float32| {diff:.1e}")
        result["maps"].append({"stage": k, "ms_float32_split": times, "max_abs_difference": diff})
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine_record(), **result}, indent=2)
                                   + "\n")


if __name__ == "__main__":
    main()
