"""Assemble results/mnist/report.md and results.json from the outputs of
scripts/reproduce_mnist.sh (simulate.json files and the ReLU run's metrics)."""

from __future__ import annotations

import json
from pathlib import Path

from softlif.energy import energy_report
from softlif.io import write_json_atomic, write_text_atomic
from softlif.networks import NETS, layer_table
from softlif.report import markdown_report

OUT = Path("results/mnist")
PAPER_SNN = 0.88  # %, the paper's MNIST LIF SNN error (SPEC section 6)


def main() -> None:
    snn = json.loads((OUT / "snn" / "simulate.json").read_text())
    relu = json.loads(Path("runs/mnist-relu/train_metrics.json").read_text())
    ck = snn["checkpoint"]
    r = {**snn, "dataset": "MNIST (official, full)", "net": "mnist", "train_images": 60000,
         "test_images": snn["images"], "epochs": ck["epochs"],
         "train_seconds": ck["metrics"]["train_seconds"], "train_config": ck["config"],
         "relu_error": relu["test_error"],
         "figures": [f"snn/{f}" for f in snn.get("figures", [])]}
    notes = [
        "Commands: `scripts/reproduce_mnist.sh ../shared/data/mnist` (training: `softlif train "
        "--dataset mnist --data-dir DIR --epochs 25`; fine-tune: `softlif train --dataset "
        "mnist --data-dir DIR --init-from CHECKPOINT --epochs 4 --lr 2e-4 --no-anneal --seed "
        "10`; SNN: `softlif simulate CHECKPOINT --dataset mnist --data-dir DIR --tau-s 0.005 "
        "--presentation-time 0.2 --c0 0.12`).",
        "Training recipe: Adam, one-cycle learning rate (peak 2e-3), batch 128, "
        f"{ck['epochs']} epochs, noise sigma 10 Hz, soft-LIF g = 0.02 annealed geometrically "
        "to 0.002 over the last 30% of training; ReLU baseline: same recipe, "
        f"{len(relu['history'])} epochs, {relu['train_seconds']:.0f} s.",
        "Training wall time includes a second job sharing the 2 CPU cores for part of the run.",
    ]
    early_path = OUT / "snn-epoch17-g0.02" / "simulate.json"
    late_path = OUT / "snn-2000" / "simulate.json"
    if early_path.exists() and late_path.exists():
        e, f = json.loads(early_path.read_text()), json.loads(late_path.read_text())
        keys = ("ann_error", "ann_error_hard", "snn_error", "snn_rates_hz", "mean_rate_hz",
                "images")
        r["remedy_comparison"] = {"epoch17_g0.02": {k: e[k] for k in keys},
                                  "epoch25_annealed": {k: f[k] for k in keys}}
        notes.append(
            "Remedy for the sub-threshold tail (SPEC section 2), on the first "
            f"{e['images']} test images: the same run's checkpoint after epoch 17, before g was "
            f"annealed (g = 0.02): soft-LIF ANN {e['ann_error'] * 100:.2f}%, hard-rate ANN "
            f"{e['ann_error_hard'] * 100:.2f}%, SNN {e['snn_error'] * 100:.2f}%; after "
            f"annealing g to 0.002 (epoch 25): soft {f['ann_error'] * 100:.2f}%, hard "
            f"{f['ann_error_hard'] * 100:.2f}%, SNN {f['snn_error'] * 100:.2f}%. The epoch-17 "
            "net had also trained 8 epochs less, so this compares states of one run, not two "
            "runs of equal length.")
    curves = snn.get("error_vs_c1", {})
    if curves:
        notes.append("SNN error over windows ending at 200 ms, from the same simulation (c0: "
                     "error): " + ", ".join(f"{float(c0) * 1e3:g} ms: {cur['error'][-1] * 100:.2f}%"
                                            for c0, cur in curves.items())
                     + ". The paper's window is 120-200 ms; the others are shown, not chosen.")
    sweep_path = OUT / "sweep" / "sweep.json"
    if sweep_path.exists():
        rows = json.loads(sweep_path.read_text())
        st = snn["settings"]
        c0, c1 = snn["window_s"]
        main_row = {"tau_s": st["tau_s"], "presentation_time": st["presentation_time"],
                    "c0": c0, "c1": c1, "error": snn["snn_error"],
                    "efficiency": energy_report(layer_table(NETS["mnist"]), snn["snn_rates_hz"],
                                                c1, st["dt"]).efficiency,
                    "rates_hz": snn["snn_rates_hz"]}
        r["sweep"] = sorted([*rows, main_row], key=lambda w: (-w["tau_s"], -w["c1"], w["c0"]))
        notes.append(
            "Trade-off table: `softlif sweep CHECKPOINT --taus 0,0.002 --windows "
            "0.12:0.2,0.04:0.1,0.05:0.06,0.02:0.06` on all 10,000 test images (one 200 ms "
            "simulation per tau_s, every window read off it; efficiency at presentation time "
            "c1 with the rates measured in that simulation); the tau_s = 5 ms row is the main "
            "simulation above.")
    runs = _runs_table()
    if len(runs) > 1:
        r["runs"] = runs
        notes.insert(0, _runs_markdown(runs))
    hist = ck["metrics"]["history"]
    notes.append("Per-epoch test error (soft / hard rate, %): " + ", ".join(
        f"{h['epoch']}: {h['test_error'] * 100:.2f}/{h.get('test_error_hard', 0) * 100:.2f}"
        for h in hist))
    r.pop("checkpoint", None)
    write_json_atomic(OUT / "results.json", r)
    write_text_atomic(OUT / "report.md", markdown_report(
        r, "MNIST: the paper's network on the full official MNIST", notes))


# every full-test-set simulation of a trained soft-LIF net (alpha 5 ms, 120-200 ms), in the
# order they were run: (folder under results/mnist, what was trained)
RUNS = [
    ("snn", "seed 0, 25 epochs (the main run above)"),
    ("snn-seed1", "seed 1, 25 epochs, same recipe"),
    ("snn-finetune", "seed 0 + 4 epochs at g = 0.002, Gaussian noise 10 Hz (`--init-from`, "
                     "lr 2e-4, no anneal)"),
    ("snn-finetune-phase", "seed 0 + 4 epochs at g = 0.002, alpha-filtered spike-train noise "
                           "(`--noise-model alpha`, otherwise as above)"),
    ("snn-finetune-seed1", "seed 1 + 4 epochs at g = 0.002, Gaussian noise 10 Hz"),
    ("snn-finetune-g0.02", "seed 0 + 4 epochs at g = 0.02 (`--smoothing 0.02`: more training "
                           "without the small g; control)"),
]


def _runs_table() -> list[dict]:
    rows = []
    for folder, what in RUNS:
        path = OUT / folder / "simulate.json"
        if not path.exists():
            continue
        s = json.loads(path.read_text())
        m = s["checkpoint"]["metrics"]
        rows.append({"folder": folder, "run": what, "images": s["images"],
                     "ann_error": s["ann_error"], "ann_error_hard": s["ann_error_hard"],
                     "snn_error": s["snn_error"], "mean_rate_hz": s["mean_rate_hz"],
                     "epochs": s["checkpoint"]["epochs"], "train_seconds": m["train_seconds"],
                     "init_from_epochs": m.get("init_from", {}).get("epochs")})
    return rows


def _runs_markdown(rows: list[dict]) -> str:
    met = [w["run"].split(" (")[0] for w in rows if round(w["snn_error"] * 100, 2) <= PAPER_SNN]
    lines = ["Every trained soft-LIF net, simulated on all 10,000 test images (alpha 5 ms, "
             "200 ms per image, window 120-200 ms), none left out. The paper's LIF SNN error, "
             f"{PAPER_SNN:.2f}%, is reached by {len(met)} of {len(rows)}"
             + (f": {'; '.join(met)}." if met else "."), "",
             "| run | soft-LIF ANN | hard-rate ANN | LIF SNN | SNN - hard | mean rate (Hz) "
             "| train time |",
             "|---|---|---|---|---|---|---|"]
    for w in rows:
        extra = "+" if w["init_from_epochs"] else ""
        lines.append(f"| {w['run']} | {w['ann_error'] * 100:.2f}% | "
                     f"{w['ann_error_hard'] * 100:.2f}% | {w['snn_error'] * 100:.2f}% | "
                     f"{(w['snn_error'] - w['ann_error_hard']) * 100:+.2f} pt | "
                     f"{w['mean_rate_hz']:.2f} | {extra}{w['train_seconds'] / 60:.0f} min |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
