"""Assemble results/neurons/ (results.json, README.md) from the outputs of
scripts/neurons_mnist.sh: simulate.json per neuron type, the penalty sweep's pareto.json (its
plot stays beside it, in penalty-sweep/) and the diagnose.json files. Reads RESULTS (default
results/neurons) from the environment."""

from __future__ import annotations

import json
import os
from pathlib import Path

from softlif.io import write_json_atomic, write_text_atomic

OUT = Path(os.environ.get("RESULTS", "results/neurons"))
TYPES = ("LIF", "IF", "AdaptiveLIF", "QuantizedLIF")
KEYS = ("snn_error", "ann_error", "ann_error_hard", "snn_rates_hz", "predicted_rates_hz",
        "mean_rate_hz", "images")


def _load(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def _pct(x: float) -> str:
    return f"{x * 100:.2f}%"


def main() -> None:
    results: dict = {}
    lines = ["# Neuron types on MNIST (issue 14)", "",
             "The paper's MNIST net, one recipe for every type (`scripts/neurons_mnist.sh`: "
             "Adam one-cycle, batch 128, noise 10 Hz, g 0.02 annealed to 0.002), simulated "
             "with alpha synapses of 5 ms, 200 ms per image back to back, window 120-200 ms.",
             "", "| neuron | ANN (soft) | ANN (hard rate) | SNN | rates per layer (Hz) | "
             "synops/s per image | efficiency | epochs |", "|---|---|---|---|---|---|---|---|"]
    for t in TYPES:
        s = _load(OUT / t / "simulate.json")
        if s is None:
            continue
        e = s["energy"]
        results[t] = {**{k: s[k] for k in KEYS}, "synops_per_s": e["synops_per_s"],
                      "efficiency": e["efficiency"], "epochs": s["checkpoint"]["epochs"],
                      "neuron": s["checkpoint"].get("neuron")}
        lines.append(f"| {t} | {_pct(s['ann_error'])} | {_pct(s['ann_error_hard'])} | "
                     f"{_pct(s['snn_error'])} | "
                     + ", ".join(f"{r:.1f}" for r in s["snn_rates_hz"])
                     + f" | {e['synops_per_s'] / 1e6:.1f} M | {e['efficiency']:.2f}x | "
                     f"{s['checkpoint']['epochs']} |")
    sweep = _load(OUT / "penalty-sweep" / "pareto.json")
    if sweep is not None:
        points = sweep["points"]
        results["pareto"] = points
        results["pareto_front"] = sweep["pareto_front"]
        ft = sweep["finetune"]
        lines += ["", "## Energy-aware fine-tuning (LIF net, `softlif sweep --rate-penalties`)",
                  "", f"Each point: the LIF net fine-tuned {ft['epochs']} epochs (lr {ft['lr']:g}, "
                  f"seed {ft['seed']}) with the penalty weight λ (per million synaptic events "
                  f"per second per image), simulated on {sweep['test_images']} test images; "
                  "* = on the Pareto front. Compare each point with λ = 0 (the same "
                  "fine-tuning without the penalty), not with the table above: the sweep "
                  "may start from another training of the LIF net.", "",
                  "| penalty λ | ANN error | SNN error | synops/s per image | efficiency | "
                  "rates (Hz) |", "|---|---|---|---|---|---|"]
        lines += [f"| {p['rate_penalty']:g}{' *' if p['rate_penalty'] in sweep['pareto_front'] else ''}"
                  f" | {_pct(p['ann_error'])} | {_pct(p['snn_error'])} | "
                  f"{p['msynops_per_s']:.1f} M | {p['efficiency']:.2f}x | "
                  + ", ".join(f"{r:.2f}" for r in p["snn_rates_hz"]) + " |" for p in points]
        lines += ["", "![pareto](penalty-sweep/pareto.png)"]
    diag = {}
    for name in sorted(p.name for p in OUT.glob("diagnose-*")):
        d = _load(OUT / name / "diagnose.json")
        if d is None:
            continue
        diag[name] = d
        st = d["settings"]
        lines += ["", f"## Diagnostics: {name} (tau_s {st['tau_s'] * 1e3:g} ms, window "
                  f"{d['window_s'][0] * 1e3:g}-{d['window_s'][1] * 1e3:g} ms, {d['images']} "
                  f"images each alone; SNN {_pct(d['snn_error'])}, hard-rate ANN "
                  f"{_pct(d['ann_error_hard'])})", "",
                  "| layer | predicted | rate at mean J | mean of rate(J(t)) | measured | "
                  "measured / predicted | hybrid from here |", "|---|---|---|---|---|---|---|"]
        for row in d["layers"]:
            h = row["hybrid"]
            hyb = ("(full SNN)" if h is None else "refused" if "refused" in h
                   else _pct(h["error"]))
            lines.append(f"| {row['name']} | {row['predicted_hz']:.2f} | "
                         f"{row['rate_at_mean_hz']:.2f} | {row['mean_rate_hz']:.2f} | "
                         f"{row['measured_hz']:.2f} | {row['measured_over_predicted']:.3f} | "
                         f"{hyb} |")
        cur = [(row, row["current"]) for row in d["layers"] if row.get("current")]
        if cur:
            lines += ["", "Mean input current J over neurons and images (in brackets the mean of "
                      "each neuron's hard rate at its own J, Hz) with the layer below "
                      "at its predicted rates, with only its predicted-silent or only its "
                      "predicted-active neurons at their measured rates, with all measured, "
                      "and as simulated:", "",
                      "| layer | predicted | silent measured | active measured | all measured "
                      "| simulated |", "|---|---|---|---|---|---|"]
            lines += [f"| {row['name']} | " + " | ".join(
                f"{c['j_' + w]:.3f} ({c['rate_' + w + '_hz']:.2f})"
                for w in ("predicted", "silent", "active", "both"))
                + f" | {c['j_measured']:.3f} ({row['rate_at_mean_hz']:.2f}) |"
                for row, c in cur]
    if diag:
        results["diagnostics"] = diag
    write_json_atomic(OUT / "results.json", results)
    write_text_atomic(OUT / "README.md", "\n".join(lines) + "\n")
    print(f"wrote {OUT / 'results.json'} and {OUT / 'README.md'}")


if __name__ == "__main__":
    main()
