"""Scaling with torch.distributed: 1 process vs N processes (torchrun), side by side in one run.

Runs the command line as a user would, in subprocesses, on the embedded MNIST subset:

* **simulation**: `softlif simulate` of a freshly trained checkpoint on ``--images`` test
  images (alpha synapse 5 ms, 200 ms per image, back to back): the spiking simulation's own
  seconds (``simulation_seconds``, rank 0's, which include gathering every rank's readouts)
  and the whole command's wall time (start-up, conversion and ANN evaluations included);
  also checks that the N-process errors and spike rates equal the 1-process ones;
* **training**: `softlif train` for ``--epochs`` on ``--limit-train`` images: the training
  seconds the checkpoint records and the command's wall time.

A 1-process run uses every core with intra-op threads; torchrun gives each of its processes
one thread (its default), so on a machine with few cores little gain is expected: the figures
say how much. Run it alone (one torch job at a time).

    python benchmarks/bench_distributed.py [--procs 2] [--images 400] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from softlif.hardware import record as machine_record


def _softlif(procs: int, argv: list[str]) -> tuple[float, str]:
    cmd = [sys.executable, "-m", "softlif", *argv] if procs == 1 else [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        f"--nproc_per_node={procs}", "-m", "softlif", *argv]
    t0 = time.perf_counter()
    run = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if run.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{run.stderr[-3000:]}")
    return wall, run.stdout


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--images", type=int, default=400)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--limit-train", type=int, default=5000)
    ap.add_argument("--json", help="also write the figures to this JSON file")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="softlif-bench-dist-"))
    out: dict[str, Any] = {"cores": os.cpu_count(), "procs": args.procs, "simulation": {},
                           "training": {}}
    train = ["train", "--limit-train", str(args.limit_train), "--limit-test", "500",
             "--epochs", str(args.epochs), "--no-progress", "--json"]
    for procs in (1, args.procs):
        wall, _ = _softlif(procs, [*train, "--out", str(work / f"train{procs}")])
        metrics = json.loads((work / f"train{procs}" / "train_metrics.json").read_text())
        out["training"][str(procs)] = {
            "wall_s": round(wall, 2), "train_s": round(metrics["train_seconds"], 2),
            "images_per_s": round(args.limit_train * args.epochs / metrics["train_seconds"], 1),
            "test_error": metrics["test_error"]}
    ck = str(work / "train1" / "checkpoint.pt")
    sim = ["simulate", ck, "--images", str(args.images), "--no-progress", "--json"]
    results = {}
    for procs in (1, args.procs):
        wall, stdout = _softlif(procs, sim)
        r = json.loads(stdout)
        results[procs] = r
        out["simulation"][str(procs)] = {
            "wall_s": round(wall, 2), "simulation_s": round(r["simulation_seconds"], 2),
            "images_per_s": round(r["images"] / r["simulation_seconds"], 1)}
    same = all(results[1][k] == results[args.procs][k]
               for k in ("snn_error", "ann_error", "ann_error_hard", "snn_rates_hz"))
    out["simulation"]["identical_errors_and_rates"] = same
    for part in ("simulation", "training"):
        one, many = out[part]["1"], out[part][str(args.procs)]
        out[part]["speedup"] = round(many["images_per_s"] / one["images_per_s"], 2)
    print(f"{'':12}{'procs':>6}{'images/s':>10}{'own s':>8}{'wall s':>8}")
    for part, own in (("simulation", "simulation_s"), ("training", "train_s")):
        for procs in ("1", str(args.procs)):
            r = out[part][procs]
            print(f"{part:12}{procs:>6}{r['images_per_s']:>10}{r[own]:>8}{r['wall_s']:>8}")
        print(f"{'':12}{'':6}speed-up {out[part]['speedup']}x")
    print(f"simulation errors and rates identical: {same}")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine_record(), **out}, indent=2)
                                   + "\n")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
