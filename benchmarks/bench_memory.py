"""Speed and peak memory of the simulation, each variant in a fresh process so that its peak
resident memory is its own: the ImageNet net (493,184 neurons) at batch 4, or another paper
net at batch 32.

Random weights scaled so each layer fires at the paper's rates (SPEC section 5), one batch of
random images, T = 200 steps of 1 ms, alpha synapse 5 ms; the dense ceiling is T x one plain
ReLU ANN forward of the same batch. Prints img/s, x ceiling and peak RSS per variant.

    python benchmarks/bench_memory.py [--net imagenet|cifar10|mnist] [--steps 200] [--json F]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench_simulation import TARGET_RATES, scale_to_rates  # noqa: E402

from softlif.hardware import record as machine_record

# Hz, the paper's (SPEC section 5)
RATES = {**TARGET_RATES, "imagenet": [178.1, 48.8, 26.6, 30.6, 35.6, 19.1, 10.7]}
BATCH = {"imagenet": 4, "cifar10": 32, "mnist": 32}
VARIANTS = {"eager fp32, dense fc": {"event_driven": False, "block_steps": 1,
                                     "split_int8": False},
            "fused fp32 (default)": {"fused": True}}


def run_variant(net: str, label: str, steps: int) -> dict:
    from softlif.convert import convert
    from softlif.networks import NETS, build
    from softlif.simulate import simulate
    from softlif.synapses import Synapse

    torch.manual_seed(0)
    spec, b = NETS[net], BATCH[net]
    ann = build(spec, "softlif").eval()
    snn = convert(ann, spec.input_shape, Synapse("alpha", 0.005))
    x = torch.randn(b, *spec.input_shape)
    rates = scale_to_rates(snn, x, RATES[net])
    out: dict = {"variant": label, "rate_net_rates_hz": rates}
    if label == "ceiling":
        relu = build(spec, "relu").eval()
        with torch.no_grad():
            relu(x)
            t0 = time.perf_counter()
            relu(x)
            out["img_s"] = b / ((time.perf_counter() - t0) * steps)
    else:
        kw = VARIANTS[label]
        # warm-up / compile: 10 steps run the compiled block updates at the length the timed
        # run uses (UNROLL_STEPS), so no compilation falls into the timing
        simulate(snn, x, presentation_time=0.01, batch_size=b, **kw)
        t0 = time.perf_counter()
        res = simulate(snn, x, presentation_time=steps * 0.001, batch_size=b, **kw)
        out["img_s"] = b / (time.perf_counter() - t0)
        out["snn_rates_hz"] = res.firing_rates()
    out["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--net", default="imagenet", choices=list(BATCH))
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--json")
    ap.add_argument("--variant", help=argparse.SUPPRESS)  # one variant, in this process
    args = ap.parse_args()
    if args.variant:
        print(json.dumps(run_variant(args.net, args.variant, args.steps)))
        return
    rows = []
    for label in ["ceiling", *VARIANTS]:
        done = subprocess.run([sys.executable, __file__, "--net", args.net, "--variant", label,
                               "--steps", str(args.steps)], check=True, capture_output=True,
                              text=True)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    ceiling = rows[0]["img_s"]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {args.net} net, "
          f"batch {BATCH[args.net]}, T = {args.steps} steps; rate-net rates (Hz): "
          + ", ".join(f"{r:.1f}" for r in rows[0]["rate_net_rates_hz"]))
    for r in rows:
        extra = "" if r["variant"] == "ceiling" else \
            "  SNN rates " + ", ".join(f"{v:.1f}" for v in r["snn_rates_hz"])
        print(f"  {r['variant']:<22} {r['img_s']:8.4f} img/s {r['img_s'] / ceiling:6.2f}x "
              f"ceiling, peak RSS {r['peak_rss_gb']:.2f} GB{extra}")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine_record(), "rows": rows},
                                              indent=2))


if __name__ == "__main__":
    main()
