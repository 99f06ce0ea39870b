"""Spiking-simulation throughput vs. the dense ceiling, measured side by side in one run.

For the paper's MNIST and CIFAR-10 nets (random weights scaled so each layer fires at the
paper's rates, printed below), T = 200 steps, batch 32:

* dense ceiling = (images per second of one plain ReLU ANN forward, best batch size) / T,
  i.e. what T dense forward passes per image would cost;
* softlif's simulation, eager and fused (torch.compile), in float32 and with the bfloat16
  synaptic path, as images/s and as a ratio to the ceiling; every row reports its difference
  from a float64 reference run of the same inputs (argmax agreement, mean |readout
  difference| relative to the readout scale, and that deviation over the eager float32
  path's own: the numerical noise floor of a spiking net, where one flipped spike changes
  later ones). The first
  layer takes its spikes from the closed form of its constant current (the default); the
  "stepped" row integrates it step by step instead, for comparison. The default ("fused fp32")
  also runs the fully connected maps on spikes event-driven (CPU); "dense fc" does not; the
  eager and stepped rows are dense too. The default runs blocks of steps layer after layer
  (``simulate(block_steps=None)``: each linear map sees a whole block's spikes as one batch,
  each layer's updates run as one compiled kernel per ``UNROLL_STEPS`` steps);
  the eager, "stepped", "dense fc" and "per step" rows run one step at a time. Where the CPU
  has int8 dot products (VNNI, AMX) the default runs long-fan-in maps on spikes in split 8-bit
  integer arithmetic (``split_int8``, float32 accuracy), elsewhere float32 maps; "float maps"
  and "split int8" force each, "no event-driven" turns the event-driven fc maps off, and
  "blocks of 5" / "blocks of 25" set the block length, so each part of the default is
  measured on and off on the machine that runs this (the header names the default there).
* a breakdown of the default path's step: the linear maps on spikes alone vs everything else,
  and the speed each would allow alone (the measured limit of the speed targets).
* snnTorch (a bench-only extra: ``pip install snntorch -c constraints-cpu.txt``) on the same
  stages, weights and inputs: ``Leaky`` (no synapse, no refractory period) and ``Synaptic``
  (one first-order synaptic current), first-layer current hoisted as softlif does; their
  deviation from the float64 reference mostly measures their different dynamics.

    python benchmarks/bench_simulation.py [--nets mnist cifar10] [--images 64] [--json out.json]
    python benchmarks/bench_simulation.py --device cuda --batch 256 --images 1024  # on a GPU

On a GPU the ceiling's batch sizes go up to 2048 and every timing waits for the device; the
default replays each block of steps as a recorded CUDA graph (``softlif.graphed``) and a "no
graphs" row launches the same kernels from Python, for comparison.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time

import torch

from softlif.convert import SpikingNetwork, convert
from softlif.hardware import machine
from softlif.hardware import record as machine_record
from softlif.networks import NETS, build
from softlif.simulate import (
    Simulator,
    _spike_inputs,
    auto_block_steps,
    choose_kernels,
    run_steps,
    simulate,
)
from softlif.synapses import Synapse

CPU = torch.device("cpu")
#: issue 10's targets for the default path, in multiples of the dense ceiling
TARGET_X_CEILING = {"mnist": 10.0, "cifar10": 3.0}
# Per-layer target rates (Hz): the paper's reported means (SPEC section 5).
TARGET_RATES = {"mnist": [4.6, 15.6, 4.2], "cifar10": [173.3, 99.0, 9.7, 7.2]}


@torch.no_grad()
def scale_to_rates(snn: SpikingNetwork, x: torch.Tensor, targets: list[float]) -> list[float]:
    """Scale each hidden stage's weights and bias so its mean hard rate on ``x`` hits the target
    (bisection on a log scale); returns the achieved rates (Hz)."""
    h = x
    achieved = []
    for st, target in zip(snn.hidden_stages, targets, strict=True):
        pre = st.linear(h)
        lo, hi = 1e-3, 1e3
        for _ in range(60):
            mid = (lo * hi) ** 0.5
            rate = st.neuron.rate(st.neuron.current(mid * (pre + st.bias))).mean()
            lo, hi = (mid, hi) if rate < target else (lo, mid)
        k = (lo * hi) ** 0.5
        for p in st.linear.parameters():
            p.mul_(k)
        st.bias.mul_(k)
        r = st.neuron.rate(st.neuron.current(st.affine(h)))
        achieved.append(float(r.mean()))
        h = st.neuron.amplitude * r
    return achieved


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_it(fn, device: torch.device, repeats: int = 3) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return best


@torch.no_grad()
def dense_ceiling(name: str, steps: int, device: torch.device) -> tuple[float, int]:
    spec = NETS[name]
    ann = build(spec, "relu").eval().to(device)
    best, best_bs = 0.0, 0
    sizes = (32, 64, 128) if device.type == "cpu" else (32, 128, 512, 2048)
    for bs in sizes:
        x = torch.randn(bs, *spec.input_shape, device=device)
        t = time_it(lambda x=x: ann(x), device)
        if bs / t > best:
            best, best_bs = bs / t, bs
    return best / steps, best_bs


@torch.no_grad()
def step_breakdown(snn: SpikingNetwork, x: torch.Tensor, steps: int, batch: int,
                   device: torch.device) -> dict:
    """Where a step of the default path goes: whole steps (blocks of ``auto_block_steps``, as
    ``simulate`` runs them) vs the linear maps on spikes alone (each spike-fed stage's map,
    pooling included, applied to the same spike inputs, recorded over the last two blocks of
    one presentation and batched per block as the block run does), in ms per step. Whatever
    is not the linear maps (the closed-form first layer, synapse + neuron updates, counting,
    stacking and layout copies, per-step overhead) is the rest. ``linear_only_img_s``: the
    speed if everything but the linear maps took no time, an upper bound on any path that
    keeps them dense."""
    block = auto_block_steps(snn, batch)
    record = 2 * block
    sim = Simulator(snn, batch, fused=True, device=device)
    sim.set_input(x[:batch].to(device))
    for _ in range(steps - record):
        sim.step()
    start = sim.sim_state
    per_step = []
    for _ in range(record):
        per_step.append([[t.clone() for t in _spike_inputs(sim, k, sim.sim_state.spikes)]
                         if sim.spike_sources[k] else None for k in range(len(snn.stages))])
        sim.step()
    blocks = [[None if per_step[t][k] is None else
               [torch.cat([per_step[u][k][m] for u in range(t, t + block)])
                for m in range(len(per_step[t][k]))]
               for k in range(len(snn.stages))] for t in range(0, record, block)]

    def run_blocks() -> None:
        state = start
        for _ in range(0, record, block):
            _, _, state = run_steps(sim, state, block)

    def run_linears(k: int | None = None) -> None:
        for ins in blocks:
            for j, i in enumerate(ins):
                if i is not None and k in (None, j):
                    sim.linears[j](*i)

    whole = time_it(run_blocks, device) / record * 1e3
    linear = time_it(run_linears, device) / record * 1e3
    per_stage = {k: time_it(lambda k=k: run_linears(k), device) / record * 1e3
                 for k in range(len(snn.stages)) if sim.spike_sources[k]}
    return {"block_steps": block, "step_ms": whole, "linear_maps_ms": linear,
            "rest_ms": whole - linear, "linear_maps_ms_per_stage": per_stage,
            "linear_only_img_s": batch / (steps * linear * 1e-3),
            "rest_only_img_s": batch / (steps * max(whole - linear, 1e-9) * 1e-3)}


@torch.no_grad()
def snntorch_outputs(snn: SpikingNetwork, x: torch.Tensor, steps: int, batch: int, kind: str,
                     dt: float = 0.001) -> torch.Tensor:
    """The same stages, weights and inputs run with snnTorch neurons (``kind`` "leaky":
    ``snn.Leaky``, no synapse, no refractory period; "synaptic": ``snn.Synaptic``, one
    first-order synaptic current of the alpha synapse's tau), reset to zero, threshold 1,
    inputs scaled so that a constant current J settles the membrane at J; the first layer's
    current computed once per image (hoisted, as softlif does). Returns the mean readout."""
    import snntorch

    stages = snn.stages
    outs = []
    for i in range(0, x.shape[0], batch):
        xb = x[i:i + batch]
        cells, scales, state = [], [], []
        for st in stages[:-1]:
            n = st.neuron
            beta = math.exp(-dt / n.tau_rc)
            if kind == "leaky":
                cell = snntorch.Leaky(beta=beta, threshold=1.0, reset_mechanism="zero")
                scales.append(1 - beta)
                state.append((cell.init_leaky(),))
            else:
                alpha = math.exp(-dt / snn.synapse.tau)
                cell = snntorch.Synaptic(alpha=alpha, beta=beta, threshold=1.0,
                                         reset_mechanism="zero")
                scales.append((1 - alpha) * (1 - beta))
                state.append(cell.init_synaptic())
            cells.append(cell)
        n0 = stages[0].neuron
        j0 = n0.gain * stages[0].affine(xb) + n0.bias
        acc = torch.zeros(xb.shape[0], snn.n_outputs)
        for _ in range(steps):
            spikes = None
            for k, st in enumerate(stages):
                if k == 0:
                    j = j0
                else:
                    h = st.affine(spikes * (stages[k - 1].neuron.amplitude / dt))
                    if st.neuron is None:
                        acc += h
                        break
                    j = st.neuron.gain * h + st.neuron.bias
                spikes, *rest = cells[k](scales[k] * j, *state[k])
                state[k] = tuple(rest)
        outs.append(acc / steps)
    return torch.cat(outs)


def _net(name: str) -> SpikingNetwork:
    spec = NETS[name]
    return convert(build(spec, "softlif").eval(), spec.input_shape, Synapse("alpha", 0.005))


def bench_net(name: str, n_images: int, steps: int, batch: int,
              device: torch.device = CPU) -> dict:
    torch.manual_seed(0)
    spec = NETS[name]
    ann = build(spec, "softlif").eval()
    snn = convert(ann, spec.input_shape, Synapse("alpha", 0.005))
    x = torch.randn(n_images, *spec.input_shape)
    rates = scale_to_rates(snn, x[:64], TARGET_RATES[name])
    ceiling, best_bs = dense_ceiling(name, steps, device)
    row: dict = {"net": name, "rate_net_rates_hz": rates, "ceiling_img_s": ceiling,
                 "ceiling_batch": best_bs, "variants": {}}
    t_pres = steps * 0.001
    # the float64 reference: the numerical floor every path's deviation is measured against
    ref = simulate(snn, x, presentation_time=t_pres, batch_size=batch, device=device,
                   precision="float64", event_driven=False).outputs.mean(0)
    scale = float(ref.abs().mean())
    row["reference_readout_scale"] = scale
    floor = None
    gpu = [("fused fp32 no graphs", {"fused": True, "cuda_graph": False})] \
        if device.type == "cuda" else []
    for label, kw in [("eager fp32", {"event_driven": False, "block_steps": 1,
                                      "split_int8": False}),
                      ("fused fp32 stepped", {"fused": True, "closed_form": False,
                                              "event_driven": False, "block_steps": 1,
                                              "split_int8": False}),
                      ("fused fp32 dense fc", {"fused": True, "event_driven": False,
                                               "block_steps": 1, "split_int8": False}),
                      ("fused fp32 per step", {"fused": True, "block_steps": 1,
                                               "split_int8": False}),
                      ("fused fp32 float maps", {"fused": True, "split_int8": False}),
                      ("fused fp32 split int8", {"fused": True, "split_int8": True}),
                      ("fused fp32 no event-driven", {"fused": True, "event_driven": False}),
                      ("fused fp32 blocks of 5", {"fused": True, "block_steps": 5}),
                      ("fused fp32 blocks of 25", {"fused": True, "block_steps": 25}),
                      *gpu,
                      ("fused fp32", {"fused": True}),
                      ("fused bf16", {"fused": True, "precision": "bfloat16"})]:
        # warm-up (compilation) on a short run, then one timed run; compiled kernels of earlier
        # variants are dropped first: Dynamo keeps at most 8 per function and falls back to
        # eager past that, which would slow the later rows (a process normally runs one)
        torch._dynamo.reset()
        # on a GPU the warm-up runs a whole presentation, so every block length's CUDA graph
        # is recorded before the timed run
        simulate(snn, x[:batch], presentation_time=t_pres if device.type == "cuda" else 0.005,
                 batch_size=batch, device=device, **kw)
        sync(device)
        t0 = time.perf_counter()
        res = simulate(snn, x, presentation_time=t_pres, batch_size=batch, device=device, **kw)
        dt = time.perf_counter() - t0
        mean_out = res.outputs.mean(0).double()
        dev = float((mean_out - ref).abs().mean()) / scale
        floor = dev if floor is None else floor  # eager fp32's own deviation
        row["variants"][label] = {
            "img_s": n_images / dt, "ratio": n_images / dt / ceiling,
            "snn_rates_hz": res.firing_rates(),
            "argmax_agreement_vs_float64": float((mean_out.argmax(1) == ref.argmax(1))
                                                 .double().mean()),
            "readout_deviation_vs_float64": dev,  # mean |difference| / mean |readout|
            "deviation_over_eager_fp32": dev / floor if floor > 0 else float("nan"),
        }
    torch._dynamo.reset()
    bd = step_breakdown(snn, x, steps, batch, device)
    bd["linear_only_x_ceiling"] = bd["linear_only_img_s"] / ceiling
    bd["rest_only_x_ceiling"] = bd["rest_only_img_s"] / ceiling
    bd["target_x_ceiling"] = TARGET_X_CEILING[name]
    row["breakdown"] = bd
    if device.type != "cpu":  # the snnTorch runner below is written for the CPU
        row["snntorch"] = "run on CPU only"
        return row
    try:
        import snntorch  # noqa: F401 - a bench-only extra
    except ImportError:
        row["snntorch"] = "not installed (pip install snntorch -c constraints-cpu.txt)"
        return row
    for label, kind in (("snnTorch Leaky", "leaky"), ("snnTorch Synaptic", "synaptic")):
        snntorch_outputs(snn, x[:batch], 5, batch, kind)  # warm-up
        t0 = time.perf_counter()
        out = snntorch_outputs(snn, x, steps, batch, kind).double()
        dt = time.perf_counter() - t0
        dev = float((out - ref).abs().mean()) / scale
        row["variants"][label] = {
            "img_s": n_images / dt, "ratio": n_images / dt / ceiling, "snn_rates_hz": [],
            "argmax_agreement_vs_float64": float((out.argmax(1) == ref.argmax(1))
                                                 .double().mean()),
            "readout_deviation_vs_float64": dev,
            "deviation_over_eager_fp32": dev / floor if floor else float("nan"),
        }
    syn = row["variants"]["snnTorch Synaptic"]["img_s"]  # the "x snnTorch Syn" column
    for e in row["variants"].values():
        e["x_snntorch_synaptic"] = e["img_s"] / syn
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nets", nargs="+", default=["mnist", "cifar10"], choices=list(TARGET_RATES))
    ap.add_argument("--images", type=int, default=64, help="images per timed run")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N")
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args()
    device = torch.device(args.device)
    where = (torch.cuda.get_device_name(device) if device.type == "cuda"
             else f"{torch.get_num_threads()} threads, {platform.processor()}, "
                  f"{os.cpu_count()} cpus")
    print(f"torch {torch.__version__}, {where}; T = {args.steps} steps of 1 ms, "
          f"batch {args.batch}")
    print(machine().line())
    k = choose_kernels(device)
    print(f"the default here (\"fused fp32\"): split int8 maps {'on' if k.split_int8 else 'off'}, "
          f"event-driven fc maps below {k.event_crossover} input density, blocks of "
          + ", ".join(f"{n}: {auto_block_steps(_net(n), args.batch)}" for n in args.nets)
          + " steps")
    rows = []
    for name in args.nets:
        row = bench_net(name, args.images, args.steps, args.batch, device)
        row["device"] = where
        rows.append(row)
        print(f"\n{name}: per-layer rates (Hz) of the scaled rate net: "
              + ", ".join(f"{r:.1f}" for r in row["rate_net_rates_hz"]))
        print(f"  dense ceiling: {row['ceiling_img_s']:.2f} img/s "
              f"(T x ANN forward, best batch {row['ceiling_batch']})")
        print(f"  {'variant':<19} {'img/s':>8} {'x ceiling':>10} {'x snnTorch Syn':>14}  "
              f"{'vs float64: agree':>17} {'deviation':>9} {'/ eager':>7}  SNN rates (Hz)")
        for label, e in row["variants"].items():
            rates = ", ".join(f"{r:.1f}" for r in e["snn_rates_hz"])
            xs = e.get("x_snntorch_synaptic", float("nan"))
            print(f"  {label:<19} {e['img_s']:8.2f} {e['ratio']:10.2f} {xs:14.2f}  "
                  f"{e['argmax_agreement_vs_float64']:17.3f} "
                  f"{e['readout_deviation_vs_float64'] * 100:8.2f}% "
                  f"{e['deviation_over_eager_fp32']:7.2f}  [{rates}]")
        print("  deviation: mean |readout - float64 readout| / mean |float64 readout| over the "
              "presentation; / eager: relative to eager fp32's own (the noise floor)")
        bd = row["breakdown"]
        stages = ", ".join(f"stage {k}: {v:.2f}" for k, v in
                           bd["linear_maps_ms_per_stage"].items())
        print(f"  default path, ms per step (batch {args.batch}): whole step "
              f"{bd['step_ms']:.2f} = linear maps on spikes {bd['linear_maps_ms']:.2f} "
              f"({stages}) + rest {bd['rest_ms']:.2f}")
        print(f"  bound with every other cost at zero: {bd['linear_only_img_s']:.1f} img/s = "
              f"{bd['linear_only_x_ceiling']:.2f}x ceiling (target "
              f"{bd['target_x_ceiling']:g}x); with the linear maps at zero: "
              f"{bd['rest_only_img_s']:.1f} img/s = {bd['rest_only_x_ceiling']:.2f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine_record(), "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
