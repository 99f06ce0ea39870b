"""Is the default simulation path exact on a trained net? (issue 10's exactness target)

Simulates a checkpoint's SNN on the same test images twice: the default path (compiled
blocks of steps, closed-form first layer, event-driven fc maps, split-int8 maps) and the
float32 noise floor of the benchmarks ("eager fp32": uncompiled, one step at a time, dense
float32 maps), and reports both SNN errors, their difference in
points, how many images' predictions differ, per-layer rates and the speed of each. Writes
JSON. Takes `softlif simulate`'s data and simulation options, for example::

    python scripts/exactness_trained.py runs/x/checkpoint.pt --dataset cifar10 \\
        --data-dir /tmp/softlif-cifar10 --images 1000 --json-out results/exactness/cifar10.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from softlif.cli import build_parser
from softlif.cli.common import load_ck, load_test_data, sim_settings
from softlif.evaluate import spiking_net
from softlif.io import write_json_atomic
from softlif.simulate import simulate

PATHS = {
    "default": {"fused": True},
    "eager fp32": {"fused": False, "block_steps": 1, "event_driven": False,
                   "split_int8": False},
}


def main() -> int:
    argv = sys.argv[1:]
    if "--json-out" not in argv:
        print("usage: exactness_trained.py CHECKPOINT [softlif simulate options] --json-out F",
              file=sys.stderr)
        return 2
    i = argv.index("--json-out")
    out = Path(argv[i + 1])
    args: argparse.Namespace = build_parser().parse_args(["simulate", *argv[:i], *argv[i + 2:]])
    s = sim_settings(args)
    ck = load_ck(args.checkpoint)
    x, y = load_test_data(args, ck)
    _, snn = spiking_net(ck, s.synapse_obj())
    xp = ck.preprocess.test(x)
    rows = {}
    preds = {}
    for name, kw in PATHS.items():
        t0 = time.perf_counter()
        res = simulate(snn, xp, presentation_time=s.presentation_time, dt=s.dt,
                       batch_size=s.batch_size, reset=s.reset, init=s.init, **kw)
        wall = time.perf_counter() - t0
        preds[name] = res.predictions(s.c0, s.c1)
        rows[name] = {"snn_error": res.error(y, s.c0, s.c1), "snn_rates_hz": res.firing_rates(),
                      "seconds": wall, "images_per_second": len(x) / wall, "options": kw}
        print(f"{name}: error {rows[name]['snn_error'] * 100:.2f}%  rates "
              f"{[round(r, 2) for r in rows[name]['snn_rates_hz']]}  {wall:.0f} s", flush=True)
    diff = rows["default"]["snn_error"] - rows["eager fp32"]["snn_error"]
    payload = {"checkpoint": args.checkpoint, "images": len(x),
               "window_s": [s.c0, s.c1], "presentation_time_s": s.presentation_time,
               "paths": rows, "error_difference_points": diff * 100,
               "predictions_differing": int((preds["default"] != preds["eager fp32"]).sum()),
               "target_points": 0.05}
    write_json_atomic(out, payload)
    print(f"default - eager: {diff * 100:+.2f} points; {payload['predictions_differing']} of "
          f"{len(x)} predictions differ")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
