"""Assemble results/cifar10/{results.json, report.md} from what scripts/reproduce_cifar10.sh
has finished so far: each soft-LIF net's SNN simulation on all 10,000 test images
(``RUNS/snn-sigmaN/simulate.json``), its training metrics, the ReLU runs and the short
recipe comparison (``RUNS/recipe-*/``) if they exist.
Once ``softlif reproduce`` has run to the end, its own results.json (with the Table-4 sweep)
supersedes this one; this script keeps the same keys, so readers need not care which wrote it.

    python scripts/cifar10_report.py [RUNS_DIR]   # default runs/cifar10

The 12-epoch runs on the [0, 1] scale that these results supersede are kept as one history
entry (``history_12_epochs_unit_scale``), read from the previous results.json.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
from pathlib import Path

from softlif.io import write_json_atomic, write_text_atomic
from softlif.report import PAPER_LAYER_RATES_HZ as _PAPER_RATES
from softlif.report import PAPER_NOISE_ABLATION

OUT = Path("results/cifar10")
PAPER_LAYER_RATES_HZ = _PAPER_RATES["cifar10"]
PAPER_RELU = 16.48
# SPEC section 6, Table 4 (CIFAR-10): (tau_s in s, c0 in s, c1 in s) -> (error, efficiency)
PAPER_TABLE4 = {(0.005, 0.12, 0.2): (0.1646, 0.76), (0.0, 0.01, 0.08): (0.1663, 1.64),
                (0.0, 0.01, 0.06): (0.1747, 2.04)}


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.2f}%"


def _sweep(folder: Path, old: dict | None, models: dict) -> dict | None:
    """The Table-4 sweep of ``softlif sweep`` in ``folder`` (copied next to the results), or the
    one an earlier run recorded."""
    path = folder / "sweep.json"
    if not path.exists():
        return old
    points = json.loads(path.read_text())
    cfg = json.loads((folder / "config.json").read_text())
    dest = OUT / folder.name
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, dest / "sweep.json")
    shutil.copyfile(folder / "config.json", dest / "config.json")
    ck = json.loads(Path(cfg["checkpoint"]).with_name("train_metrics.json").read_text())
    epochs = len(ck["history"])
    # a net of the same noise and length evaluated above with another ANN error: a retraining
    same = [m for m in models.values() if m["noise_std_hz"] == 10 and m["epochs"] == epochs]
    again = "a retraining with the same config of " if same and all(
        abs(m["ann_error"] - ck["test_error"]) > 1e-9 for m in same) else ""
    return {"images": cfg["images"], "order": cfg["order"], "synapse": cfg["synapse"],
            "presentation_time_s": cfg["presentation_time"], "checkpoint_test_error":
            ck["test_error"], "note": f"{again}the sigma-10 net, {epochs} epochs "
            f"({Path(cfg['checkpoint']).parent.name}; ANN {_pct(ck['test_error'])} on 10,000 "
            "images)",
            "points": [{k: p[k] for k in ("tau_s", "c0", "c1", "error", "efficiency",
                                          "rates_hz")} for p in points],
            "file": f"{folder.name}/sweep.json"}


def _ann_run(folder: Path) -> dict:
    """One soft-LIF training (``RUNS/softlif-<name>/``) from its own config and metrics; its
    small files are copied next to the results (the checkpoint is not)."""
    tc = json.loads((folder / "config.json").read_text())["train_config"]
    m = json.loads((folder / "train_metrics.json").read_text())
    dest = OUT / folder.name
    dest.mkdir(parents=True, exist_ok=True)
    for f in ("config.json", "train_metrics.json"):
        shutil.copyfile(folder / f, dest / f)
    return {"noise_std_hz": tc["noise_std"], "epochs": len(m["history"]), "seed": tc["seed"],
            **_variant_fields(tc), "ann_error": m["test_error"], "ann_error_hard": m["test_error_hard"],
            "final_train_loss": m["history"][-1]["train_loss"],
            "train_seconds": m["train_seconds"], "files": f"{folder.name}/"}


def _variant_fields(tc: dict) -> dict:
    """What a training did besides its noise, length and seed: nets differing here are
    different recipes, not points of one noise ablation."""
    return {"recipe": tc["recipe"], "init": tc["init"], "weight_decay": tc["weight_decay"]}


def _variant(a: dict) -> str:
    """A short label of :func:`_variant_fields` (the default recipe of these runs: '')."""
    wd = ",".join(f"{w:g}" for w in a["weight_decay"])
    parts = [a["recipe"] if a["recipe"] != "adam" else "",
             f"init {a['init']}" if a["init"] != "default" else "",
             f"weight decay {wd}" if wd != "0,0,0.004,0.004,0.01" else ""]
    return ", ".join(x for x in parts if x)


def _binomial_se(p1: float, p2: float, n: int | None) -> float | None:
    """Standard error of the difference of two independent error rates, each on n images
    (None if the nets were not tested on the same number of images)."""
    return None if n is None else math.sqrt((p1 * (1 - p1) + p2 * (1 - p2)) / n)


def _noise_ablation(ann_runs: dict, models: dict, n: int | None) -> list[dict]:
    """The nets of one length and seed side by side by training noise (ANN, hard-rate ANN and,
    where simulated, SNN), with the binomial standard error of each SNN difference from the
    sigma-0 net (test-set sampling only; seed-to-seed spread is in ``seed_spread``)."""
    groups: dict[tuple[int, int, str], dict[float, dict]] = {}
    for name, a in ann_runs.items():
        net = {"run": name, "ann_error": a["ann_error"], "ann_error_hard": a["ann_error_hard"],
               "snn_error": models[name]["snn_error"] if name in models else None}
        groups.setdefault((a["epochs"], a["seed"], _variant(a)), {})[a["noise_std_hz"]] = net
    out = []
    for (epochs, seed, variant), nets in sorted(groups.items()):
        if len(nets) < 2:
            continue
        row: dict = {"epochs": epochs, "seed": seed, "variant": variant,
                     "nets": {f"{k:g}": nets[k] for k in sorted(nets)}}
        base = nets.get(0.0)
        if base is not None and base["snn_error"] is not None:
            row["snn_minus_sigma0"] = {
                f"{k:g}": {"difference": v["snn_error"] - base["snn_error"],
                           "binomial_se": _binomial_se(v["snn_error"], base["snn_error"], n)}
                for k, v in sorted(nets.items()) if k != 0.0 and v["snn_error"] is not None}
        out.append(row)
    return out


def _seed_spread(ann_runs: dict) -> list[dict]:
    """The ANN errors of every configuration (noise, length) trained with more than one seed."""
    by_cfg: dict[tuple[float, int, str], list[dict]] = {}
    for name, a in ann_runs.items():
        by_cfg.setdefault((a["noise_std_hz"], a["epochs"], _variant(a)), []).append(
            {"run": name, **a})
    return [{"noise_std_hz": k[0], "epochs": k[1], "variant": k[2],
             "runs": [{f: r[f] for f in ("run", "seed", "ann_error", "ann_error_hard")}
                      for r in sorted(v, key=lambda r: r["seed"])],
             "ann_error_range": max(r["ann_error"] for r in v) - min(r["ann_error"] for r in v)}
            for k, v in sorted(by_cfg.items()) if len({r["seed"] for r in v}) > 1]


def _recipe_run(folder: Path) -> dict:
    """One short training of the recipe comparison, from its own config and metrics."""
    tc = json.loads((folder / "config.json").read_text())["train_config"]
    m = json.loads((folder / "train_metrics.json").read_text())
    return {"run": folder.name, "recipe": tc["recipe"],
            "optimizer": "SGD, momentum 0.9, exponential decay" if tc["recipe"] == "paper"
            else "Adam, one-cycle", "lr": tc["lr"], "init": tc["init"],
            "weight_decay": tc["weight_decay"],
            "epochs": len(m["history"]), "noise_std_hz": tc["noise_std"],
            "test_error": m["test_error"], "test_error_hard": m["test_error_hard"],
            "test_error_by_epoch": [h["test_error"] for h in m["history"]],
            "final_train_loss": m["history"][-1]["train_loss"],
            "train_seconds": m["train_seconds"]}


def main() -> None:
    runs = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/cifar10")
    old_path = OUT / "results.json"
    old = json.loads(old_path.read_text()) if old_path.exists() else {}
    history = old.get("history_12_epochs_unit_scale")
    if history is None and old.get("relu_epochs") == 12:  # the superseded 12-epoch runs
        history = {
            "note": "12 epochs per net, inputs on the [0, 1] scale, SNN on 2,000 shuffled test "
                    "images (issue 4); superseded",
            "relu_error": old.get("relu_error"),
            "models": {k: {f: m.get(f) for f in ("ann_error", "ann_error_hard", "snn_error",
                                                   "snn_rates_hz", "epochs")}
                       for k, m in old.get("models", {}).items()}}
    models: dict = {}
    for sim_path in sorted(runs.glob("snn-sigma*/simulate.json")):
        name = sim_path.parent.name.removeprefix("snn-")
        s = json.loads(sim_path.read_text())
        ck = s["checkpoint"]
        hist = ck["metrics"]["history"]
        models[name] = {
            "noise_std_hz": ck["config"]["noise_std"],
            "ann_error": s["ann_error"], "ann_error_hard": s["ann_error_hard"],
            "snn_error": s["snn_error"], "snn_minus_ann": s["snn_error"] - s["ann_error"],
            "snn_rates_hz": s["snn_rates_hz"], "predicted_rates_hz": s["predicted_rates_hz"],
            "mean_rate_hz": s["mean_rate_hz"], "efficiency": s["energy"]["efficiency"],
            "epochs": ck["epochs"], "train_seconds": ck["metrics"]["train_seconds"],
            "final_train_loss": hist[-1]["train_loss"],
            "train_loss_last5": [h["train_loss"] for h in hist[-5:]],
            "images_per_second": s["images_per_second"], "window_s": s["window_s"],
            "error_vs_c1_end": {c0: cur["error"][-1] for c0, cur in s["error_vs_c1"].items()},
            "train_config": ck["config"], "simulation": f"snn-{name}/simulate.json"}
        dest = OUT / f"snn-{name}"
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(sim_path, dest / "simulate.json")
    if "history_12_epochs_unit_scale" in old:  # keep nets evaluated earlier, not rerun here
        models = {**old.get("models", {}), **models}
    images = {json.loads((OUT / m["simulation"]).read_text())["images"] for m in models.values()}
    # every soft-LIF training, simulated or not (the ANN-only ones: more seeds, nets whose SNN
    # is still to run), by run name; those recorded earlier are kept
    ann_runs: dict = {name: {"noise_std_hz": m["noise_std_hz"], "epochs": m["epochs"],
                             "seed": m["train_config"]["seed"],
                             **_variant_fields(m["train_config"]), "ann_error": m["ann_error"],
                             "ann_error_hard": m["ann_error_hard"],
                             "final_train_loss": m["final_train_loss"],
                             "train_seconds": m["train_seconds"]}
                      for name, m in models.items()}
    ann_runs = {**old.get("ann_runs", {}), **ann_runs}
    for d in sorted(runs.glob("softlif-sigma*")):
        if (d / "train_metrics.json").exists() and (d / "config.json").exists():
            ann_runs[d.name.removeprefix("softlif-")] = {
                **_ann_run(d), **ann_runs.get(d.name.removeprefix("softlif-"), {})}
    # every ReLU training of this scale, by length (runs recorded earlier are kept); the
    # top-level relu_error / relu_epochs are the longest of them
    relu_runs = {r["epochs"]: r for r in old.get("relu_runs", [])}
    if history is not None and old.get("relu_epochs") not in (None, 12):
        relu_runs.setdefault(old["relu_epochs"], {"epochs": old["relu_epochs"],
                                                  "test_error": old["relu_error"]})
    for p in runs.glob("relu*/train_metrics.json"):
        m = json.loads(p.read_text())
        relu_runs[len(m["history"])] = {"epochs": len(m["history"]),
                                        "test_error": m["test_error"],
                                        "train_seconds": m.get("train_seconds"),
                                        "final_train_loss": m["history"][-1]["train_loss"]}
    if relu_runs:
        relu_error, relu_epochs = relu_runs[max(relu_runs)]["test_error"], max(relu_runs)
    else:  # keep a ReLU run recorded earlier (None if there is none)
        relu_error, relu_epochs = old.get("relu_error"), old.get("relu_epochs")
    # the sweep of the longest-trained sigma-10 net (sweep-sigma10-<N>ep/, else sweep-sigma10/)
    sweeps = sorted(runs.glob("sweep-sigma10*/sweep.json"),
                    key=lambda p: int(p.parent.name.removeprefix("sweep-sigma10")
                                      .strip("-").removesuffix("ep") or 0))
    sweep = _sweep(sweeps[-1].parent if sweeps else runs / "sweep-sigma10",
                   old.get("table4_sweep"), models)
    # the two training recipes once on a short budget (recipe-<name>-<N>ep/), else as recorded
    recipes = [_recipe_run(d) for d in sorted(runs.glob("recipe-*"))
               if (d / "train_metrics.json").exists()] or old.get("recipe_comparison", [])
    n_test = images.pop() if len(images) == 1 else None  # None: none yet, or unequal counts
    r = {"dataset": "cifar10 (JPEG-decoded copy, lossy)", "net": "cifar10",
         "train_images": 50000, "test_images": n_test,
         "test_order": "shuffled", "input_scale": "0-255 less the training mean image",
         "relu_error": relu_error, "relu_epochs": relu_epochs,
         "relu_runs": [relu_runs[k] for k in sorted(relu_runs)],
         "models": models, "ann_runs": ann_runs,
         "noise_ablation": _noise_ablation(ann_runs, models, n_test),
         "seed_spread": _seed_spread(ann_runs),
         "paper_layer_rates_hz": PAPER_LAYER_RATES_HZ,
         "command": "scripts/reproduce_cifar10.sh (then python scripts/cifar10_report.py RUNS)",
         "table4_sweep": sweep, "recipe_comparison": recipes,
         "history_12_epochs_unit_scale": history}
    write_json_atomic(OUT / "results.json", r)

    lines = ["# CIFAR-10 on the authors' input scale (JPEG copy, lossy)", "",
             "Made by `scripts/reproduce_cifar10.sh` and `scripts/cifar10_report.py`; every "
             "number below is in `results.json`. SNN: alpha synapse 5 ms, 200 ms per image, "
             "window 120-200 ms, images back to back in a fixed shuffled order, all "
             f"{r['test_images']:,} test images. Absolute errors are not comparable with "
             "the paper's (lossy data, 40-80 epochs of Adam where the paper trained hundreds).", "",
             "| net | epochs | ANN | hard-rate ANN | SNN | SNN - ANN | paper ANN / SNN |",
             "|---|---|---|---|---|---|---|"]
    for run in r["relu_runs"]:
        lines.append(f"| ReLU | {run['epochs']} | {_pct(run['test_error'])} | - | - | - | "
                     f"{PAPER_RELU}% / - |")
    for m in sorted(models.values(), key=lambda v: (-v["noise_std_hz"], v["epochs"])):
        pa, ps = PAPER_NOISE_ABLATION["cifar10"].get(m["noise_std_hz"], (None, None))
        v = _variant(_variant_fields(m["train_config"]))
        lines.append(f"| soft LIF, noise {m['noise_std_hz']:g} Hz{', ' + v if v else ''} | "
                     f"{m['epochs']} | "
                     f"{_pct(m['ann_error'])} | {_pct(m['ann_error_hard'])} | "
                     f"{_pct(m['snn_error'])} | {100 * m['snn_minus_ann']:+.2f} pt | "
                     f"{pa}% / {ps}% |")
    lines += ["", "Per-layer rates (Hz), SNN measured vs hard-rate ANN predicted, and the "
              "paper's:", "", "| net | SNN | predicted | paper | mean | efficiency |",
              "|---|---|---|---|---|---|"]
    for m in sorted(models.values(), key=lambda v: (-v["noise_std_hz"], v["epochs"])):
        fmt = ", ".join
        v = _variant(_variant_fields(m["train_config"]))
        lines.append(f"| soft LIF {m['noise_std_hz']:g} Hz, {m['epochs']} epochs"
                     f"{', ' + v if v else ''} | "
                     f"{fmt(f'{v:.1f}' for v in m['snn_rates_hz'])} | "
                     f"{fmt(f'{v:.1f}' for v in m['predicted_rates_hz'])} | "
                     f"{fmt(f'{v:g}' for v in PAPER_LAYER_RATES_HZ)} | "
                     f"{m['mean_rate_hz']:.1f} (paper 148) | {m['efficiency']:.2f}x "
                     "(paper 0.76x) |")
    if r["noise_ablation"]:
        lines += ["", "The noise ablation: nets of one length and seed by training noise, errors "
                  "as ANN / hard-rate ANN / SNN (SNN minus the sigma-0 net's, with the binomial "
                  "standard error of that difference from the test set alone):", "",
                  "| epochs | seed | 0 Hz | 10 Hz | 20 Hz | SNN vs 0 Hz |", "|---|---|---|---|---|---|"]
        for row in r["noise_ablation"]:
            cells = [" / ".join(_pct(n[k]) for k in ("ann_error", "ann_error_hard", "snn_error"))
                     if (n := row["nets"].get(s)) else "-" for s in ("0", "10", "20")]
            diff = "; ".join(f"{s} Hz {100 * d['difference']:+.2f} pt"
                             + ("" if d["binomial_se"] is None
                                else f" (se {100 * d['binomial_se']:.2f})")
                             for s, d in row.get("snn_minus_sigma0", {}).items()) or "-"
            lines.append(f"| {row['epochs']}{', ' + row['variant'] if row['variant'] else ''} | "
                         f"{row['seed']} | {' | '.join(cells)} | {diff} |")
    if r["seed_spread"]:
        lines += ["", "The same configuration trained with other seeds (ANN / hard-rate ANN):", ""]
        lines += [f"- noise {c['noise_std_hz']:g} Hz, {c['epochs']} epochs"
                  f"{', ' + c['variant'] if c['variant'] else ''}: " + "; ".join(
            f"seed {x['seed']} {_pct(x['ann_error'])} / {_pct(x['ann_error_hard'])}"
            for x in c["runs"]) + f" (range {100 * c['ann_error_range']:.2f} pt)"
            for c in r["seed_spread"]]
    if sweep:
        lines += ["", f"Table-4 trade-off on the sigma-10 net ({sweep['images']:,} shuffled test "
                  f"images; {sweep['note']}):", "",
                  "| tau_s | window | SNN error | efficiency | paper error | paper efficiency |",
                  "|---|---|---|---|---|---|"]
        for p in sweep["points"]:
            pe, pf = PAPER_TABLE4.get((p["tau_s"], p["c0"], p["c1"]), (None, None))
            lines.append(f"| {1000 * p['tau_s']:g} ms | {1000 * p['c0']:g}-{1000 * p['c1']:g} ms "
                         f"| {_pct(p['error'])} | {p['efficiency']:.2f}x | {_pct(pe)} | "
                         f"{'-' if pf is None else f'{pf:.2f}x'} |")
    if recipes:
        lines += ["", "The two training recipes at equal length (soft LIF, noise 10 Hz, same seed, "
                  "all 50,000 training images, ANN test error on all 10,000):", "",
                  "| recipe | optimiser | peak lr | init | weight decay | epochs | test error | "
                  "hard-rate | final train loss | seconds |", "|---|---|---|---|---|---|---|---|---|---|"]
        lines += [f"| {c['recipe']} | {c['optimizer']} | {c['lr']:g} | {c['init']} | "
                  f"{','.join(f'{w:g}' for w in c.get('weight_decay', [])) or '-'} | "
                  f"{c['epochs']} | {_pct(c['test_error'])} | {_pct(c['test_error_hard'])} | "
                  f"{c['final_train_loss']:.3f} | {c['train_seconds']:.0f} |" for c in recipes]
    if history:
        hm = history["models"]
        lines += ["", "History (superseded): 12 epochs per net on the [0, 1] input scale, 2,000 "
                  "test images: ReLU " + _pct(history["relu_error"]) + "; " + "; ".join(
                      f"{k} ANN {_pct(v['ann_error'])}, SNN {_pct(v['snn_error'])}"
                      for k, v in hm.items()) + "."]
    write_text_atomic(OUT / "report.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
