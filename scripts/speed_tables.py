"""Render the README's per-machine speed tables from the benchmark JSON files.

Every figure in the tables between the README's ``<!-- speed-tables: begin -->`` and
``<!-- speed-tables: end -->`` markers comes from ``results/<machine>/bench_training.json``
and ``results/<machine>/bench_simulation.json`` (each naming the machine that ran it), so the
README cannot drift from the measurements.

    python scripts/speed_tables.py            # rewrite the README's tables
    python scripts/speed_tables.py --check    # exit 1 if the README differs (tests run this)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
#: result folders, in the order the tables list them
MACHINES = ("amx", "zen4", "avx2")
BEGIN, END = "<!-- speed-tables: begin -->", "<!-- speed-tables: end -->"
NETS = {"cifar10": "CIFAR-10", "mnist": "MNIST"}


def _load(machine: str, name: str) -> dict[str, Any] | None:
    path = ROOT / "results" / machine / name
    return json.loads(path.read_text()) if path.exists() else None


def _who(m: dict[str, Any]) -> str:
    bf16 = "bf16 native" if m.get("native_bf16") else "bf16 emulated"
    return f"{m['cpu_model'].split(' (')[0]} ({m['capability']}, {bf16})"


def _img(v: float | None) -> str:
    return "-" if v is None else f"{v:,.0f}" if v >= 100 else f"{v:.1f}"


def training_table() -> str:
    rows = ["| machine | net | ReLU fp32 | soft LIF fp32 | soft LIF / ReLU, fp32 | ReLU bf16 "
            "| soft LIF bf16 | soft LIF bf16 / fp32 | `auto` picks |",
            "|---|---|---|---|---|---|---|---|---|"]
    for machine in MACHINES:
        d = _load(machine, "bench_training.json")
        if d is None:
            continue
        m = d["machine"]
        auto = d.get("auto_precision") or ("bfloat16" if m.get("native_bf16") else "float32")
        for net, label in NETS.items():
            by = {r["activation"]: r for r in d["throughput"] if r["net"] == net}
            if not by:
                continue
            # earlier runs named the channels-last set-ups "fp32 CL" / "bf16 CL"
            f32 = {a: r.get("float32", r.get("fp32 CL")) for a, r in by.items()}
            b16 = {a: r.get("bfloat16", r.get("bf16 CL")) for a, r in by.items()}
            paired = d.get("summary", {}).get(net, {}).get("softlif_over_relu float32")
            ratio = paired if paired is not None else f32["softlif"] / f32["relu"]
            rows.append(
                f"| {_who(m)} | {label} | {_img(f32['relu'])} | {_img(f32['softlif'])} | "
                f"{ratio:.2f}x | {_img(b16['relu'])} | {_img(b16['softlif'])} | "
                f"{b16['softlif'] / f32['softlif']:.2f}x | {auto} |")
    return "\n".join(rows)


SIM_COLUMNS = (("fused fp32", "default here"), ("fused fp32 float maps", "float maps"),
               ("fused fp32 split int8", "split int8"),
               ("fused fp32 no event-driven", "no event-driven"),
               ("fused fp32 blocks of 5", "blocks of 5"),
               ("fused fp32 blocks of 25", "blocks of 25"), ("fused bf16", "bf16 maps"),
               ("eager fp32", "eager, one step at a time"))


def simulation_table() -> str:
    head = " | ".join(label for _, label in SIM_COLUMNS)
    rows = [f"| machine | net | dense ceiling | default's maps | {head} |",
            "|---|---|---|---|" + "---|" * len(SIM_COLUMNS)]
    for machine in MACHINES:
        d = _load(machine, "bench_simulation.json")
        if d is None:
            continue
        m = d["machine"]
        for row in sorted(d["rows"], key=lambda r: list(NETS).index(r["net"])):
            cells = []
            for key, _ in SIM_COLUMNS:
                v = row["variants"].get(key)
                cells.append("-" if v is None else f"{v['img_s']:.1f}")
            maps = "split int8" if m.get("native_int8_dot") else "float32"
            rows.append(f"| {_who(m)} | {NETS[row['net']]} | {row['ceiling_img_s']:.1f} | "
                        f"{maps} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def render() -> str:
    return "\n".join([
        BEGIN,
        "Training, img/s (`benchmarks/bench_training.py`; batch 128, forward + backward + SGD "
        "step, channels-last, fused soft-LIF kernels, noise on; the soft LIF / ReLU ratio is "
        "the median of alternating rounds where the file has them):",
        "",
        training_table(),
        "",
        "Simulation, img/s (`benchmarks/bench_simulation.py`; the paper's nets at the paper's "
        "rates, T = 200 steps of 1 ms, batch 32, one run; each column turns one part of the "
        "default on or off; \"-\": not measured in that run):",
        "",
        simulation_table(),
        END,
    ])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if the README is stale")
    ap.add_argument("--readme", default=str(ROOT / "README.md"))
    args = ap.parse_args()
    path = Path(args.readme)
    text = path.read_text()
    if BEGIN not in text or END not in text:
        print(f"{path}: no {BEGIN} ... {END} markers", file=sys.stderr)
        return 1
    a, rest = text.split(BEGIN, 1)
    _, b = rest.split(END, 1)
    new = a + render() + b
    if args.check:
        if new != text:
            print(f"{path}: the speed tables differ from results/*/bench_*.json; run python "
                  "scripts/speed_tables.py", file=sys.stderr)
            return 1
        return 0
    path.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
