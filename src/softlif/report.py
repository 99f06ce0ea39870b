"""End-to-end experiment (train -> convert -> simulate -> energy -> figures) and its Markdown
report with the paper's numbers beside the measured ones. Used by ``softlif demo`` and
``softlif reproduce``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch

from .calibrate import calibrate_noise, filtered_spread
from .data import ArraySplit, Preprocess
from .distributed import current
from .evaluate import SimSettings, ann_errors, neuron_hard_rates, run_snn, sweep
from .figures import (
    available,
    fig_ann_vs_snn,
    fig_error_vs_c1,
    fig_rate_curves,
    fig_rate_histograms,
    fig_spread,
    skip_note,
)
from .io import write_json_atomic, write_text_atomic
from .networks import NetSpec
from .neurons import LIF
from .train import Checkpoint, TrainConfig, train, training_totals

# SPEC section 6: the paper's error rates (%) and Table-4 trade-offs.
PAPER_ERRORS = {
    "mnist": {"relu": 0.79, "softlif": 0.84, "snn": 0.88},
    "svhn": {"relu": 5.65, "softlif": 5.79, "snn": 6.08},
    "cifar10": {"relu": 16.48, "softlif": 16.28, "snn": 16.46},
    "cifar100": {"relu": 50.05, "softlif": 44.35, "snn": 44.87},
    "imagenet": {"relu": 45.4, "softlif": 48.3, "snn": 48.2},
}
PAPER_MEAN_RATE_HZ = {"mnist": 9.67, "cifar10": 148.0, "imagenet": 93.3}
# SPEC section 5: the paper's per-layer mean rates (Hz) of its CIFAR-10 net
PAPER_LAYER_RATES_HZ = {"cifar10": [173.3, 99.0, 9.7, 7.2]}
# CIFAR-10 noise ablation: training-noise sigma (Hz) -> (ANN error %, SNN error %).
PAPER_NOISE_ABLATION = {"cifar10": {0.0: (15.89, 17.06), 10.0: (16.28, 16.46),
                                    20.0: (16.92, 17.04)}}
# Table 4: (tau_s, c0, c1) in seconds -> (error %, efficiency); ILSVRC rows are top-5 errors.
PAPER_TRADEOFFS = {
    "cifar10": {(0.005, 0.12, 0.2): (16.46, 0.76), (0.0, 0.01, 0.08): (16.63, 1.64),
                (0.0, 0.01, 0.06): (17.47, 2.04)},
    "mnist": {(0.005, 0.12, 0.2): (0.88, 5.94), (0.002, 0.04, 0.1): (0.92, 11.98),
              (0.002, 0.05, 0.06): (1.14, 14.42), (0.0, 0.02, 0.06): (3.67, 14.42)},
    "imagenet": {(0.003, 0.14, 0.2): (23.80, 1.39), (0.0, 0.03, 0.08): (25.33, 2.88),
                 (0.0, 0.03, 0.06): (25.36, 3.51)},
}


def paper_softlif_errors(net: str, sigma: float | None = None
                         ) -> tuple[float | None, float | None]:
    """The paper's (soft-LIF ANN error %, SNN error %) for a net trained with noise ``sigma``
    (Hz; None: the paper's default, 10 Hz): its ablation figures where it has them, its main
    table for 10 Hz, else (None, None)."""
    ablation = PAPER_NOISE_ABLATION.get(net, {})
    if sigma is not None and sigma in ablation:
        return ablation[sigma]
    if sigma is None or sigma == 10.0:
        main = PAPER_ERRORS.get(net, {})
        return main.get("softlif"), main.get("snn")
    return None, None


def _paper_pct(v: float | None) -> str:
    return "-" if v is None else f"{v}%"


def paper_tradeoff(net: str, tau_s: float, c0: float, c1: float) -> tuple[float, float] | None:
    """The paper's (error %, efficiency) for this net, synapse tau (s) and window (s), if listed."""
    for (t, a, b), v in PAPER_TRADEOFFS.get(net, {}).items():
        if abs(t - tau_s) < 1e-9 and abs(a - c0) < 1e-9 and abs(b - c1) < 1e-9:
            return v
    return None


def sweep_table(net: str, rows: list[dict[str, Any]]) -> list[str]:
    """Markdown rows of a Table-4 sweep, with the paper's figures where it lists the setting."""
    lines = ["| tau_s (ms) | c0 (ms) | c1 (ms) | error | efficiency | paper error | paper "
             "efficiency |", "|---|---|---|---|---|---|---|"]
    for w in rows:
        p = paper_tradeoff(net, w["tau_s"], w["c0"], w["c1"])
        lines.append(f"| {w['tau_s'] * 1e3:g} | {w['c0'] * 1e3:g} | {w['c1'] * 1e3:g} | "
                     f"{_pct(w['error'])} | {w['efficiency']:.2f}x | "
                     + (f"{p[0]:.2f}% | {p[1]:.2f}x |" if p else "- | - |"))
    return lines


def write_figures(ck: Checkpoint, res: Any, summary: dict, snn: Any, x_kept: torch.Tensor,
                  labels: torch.Tensor, out: Path, c0s: list[float]) -> list[str]:
    """All figures for one simulated checkpoint; returns their file names (PNG); none (and no
    error) without matplotlib (:func:`softlif.figures.available`)."""
    names: list[str] = []
    if not available():
        return names
    neuron = ck.spec.neuron if ck.neuron is None else ck.neuron
    if isinstance(neuron, LIF):  # Fig. 1 is the LIF's rate curve
        names.append(fig_rate_curves(neuron, out / "fig1_rate_curves")[0].name)
    syn = snn.synapse
    if syn.order:
        stats = filtered_spread(neuron, syn, torch.linspace(0.0, 20.0, 121, dtype=torch.float64))
        names.append(fig_spread(stats, out / "fig2_spread",
                                f"{syn.kind} synapse, tau_s = {syn.tau * 1e3:g} ms")[0].name)
    curves = {c0: res.error_vs_c1(labels, c0) for c0 in c0s if c0 < res.presentation_time}
    names.append(fig_error_vs_c1(curves, out / "fig3_error_vs_c1",
                                 f"{ck.spec.name}: SNN error vs window end",
                                 summary.get("ann_error_hard"))[0].name)
    if res.neuron_counts is not None:
        layer_names = [f"layer {k + 1}" for k in range(len(res.neuron_counts))]
        snn_rates = [c / res.presentation_time for c in res.neuron_counts]
        names.append(fig_rate_histograms(snn_rates, layer_names, out / "rates_hist")[0].name)
        ann_rates = neuron_hard_rates(snn, ck.preprocess.test(x_kept))
        names.append(fig_ann_vs_snn(ann_rates, snn_rates, layer_names,
                                    out / "ann_vs_snn_rates")[0].name)
    return names


def run_experiment(
    spec: NetSpec,
    dataset: str,
    train_split: ArraySplit,
    test_split: ArraySplit,
    pre: Preprocess,
    cfg: TrainConfig,
    sim: SimSettings,
    out: Path,
    n_test: int | None = None,
    c0s: tuple[float, ...] = (0.0, 0.02, 0.05, 0.1),
    progress: bool = True,
    log=print,
    eval_images: int | None = None,
) -> dict[str, Any]:
    """Train a soft-LIF net on ``sim.device``, then :func:`evaluate_checkpoint` it; returns the
    results dict (also the basis of the Markdown report). ``eval_images``: test images of the
    per-epoch evaluations but the last (:func:`softlif.train.train`; None: all)."""
    t0 = time.perf_counter()
    if not available():  # said before the long work, not after it
        log(skip_note())
    ck = train(spec, train_split, test_split, pre, cfg, checkpoint_path=out / "checkpoint.pt",
               progress=progress, log=log, device=sim.device, eval_images=eval_images)
    n = len(test_split) if n_test is None else min(n_test, len(test_split))
    results = evaluate_checkpoint(ck, dataset, len(train_split),
                                  torch.from_numpy(test_split.images[:n]),
                                  torch.from_numpy(test_split.labels[:n]), sim, out, c0s,
                                  progress=progress)
    results["total_seconds"] = time.perf_counter() - t0
    return results


def evaluate_checkpoint(
    ck: Checkpoint,
    dataset: str,
    train_images: int,
    x: torch.Tensor,
    y: torch.Tensor,
    sim: SimSettings,
    out: Path,
    c0s: tuple[float, ...] = (0.0, 0.02, 0.05, 0.1),
    sweep_grid: dict[str, Any] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Evaluate a trained soft-LIF checkpoint on uint8 test images ``x`` (labels ``y``): ANN
    errors (soft and hard rate), the SNN (error, per-layer rates, energy), error-vs-c1 curves,
    figures into ``out``, the noise calibration for its neuron and synapse and, with
    ``sweep_grid`` ({"taus": [s], "times": [s], "windows": [[c0, c1] in s]}), the Table-4 sweep."""
    n = len(x)
    epochs, seconds = training_totals(ck)  # a fine-tune counts with what it started from
    results: dict[str, Any] = {"dataset": dataset, "net": ck.spec.name,
                               "train_images": train_images, "test_images": n,
                               "epochs": epochs, "train_seconds": seconds,
                               "finetune_epochs": ck.epoch if epochs != ck.epoch else None,
                               "train_config": ck.config, "history": ck.metrics.get("history")}
    results.update(ann_errors(ck, x, y, sim.device))
    keep = min(100, n)
    res, summary, snn = run_snn(ck, x, y, sim, keep_neuron_counts=keep, progress=progress)
    results.update(summary)
    results["error_vs_c1"] = {str(c0): [v.tolist() for v in res.error_vs_c1(y, c0)]
                              for c0 in c0s if c0 < res.presentation_time}
    # under torchrun rank 0 alone draws (every rank holds the gathered results)
    results["figures"] = write_figures(ck, res, results, snn, x[:keep], y, out, list(c0s)) \
        if current().main else []
    results["noise_calibration_hz"] = calibrate_noise(
        ck.neuron or ck.spec.neuron, snn.synapse, n_currents=30)["sigma_hz"] \
        if snn.synapse.order else None
    if sweep_grid:
        results["sweep"] = sweep(ck, x, y, sim, list(sweep_grid.get("taus", [0.0, sim.tau_s])),
                                 list(sweep_grid.get("times", [sim.presentation_time])),
                                 [(float(a), float(b)) for a, b in sweep_grid.get("windows", [])],
                                 progress=progress)
    return results


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v * 100:.2f}%"


def markdown_report(r: dict[str, Any], title: str, notes: list[str] | None = None) -> str:
    """The results of :func:`run_experiment` as Markdown, with the paper's figures beside."""
    paper = PAPER_ERRORS.get(r["net"], {})
    paper_ann, paper_snn = paper_softlif_errors(r["net"], r.get("noise_std_hz"))
    st = r["settings"]
    e = r["energy"]
    lines = [f"# {title}", ""]
    lines += [f"- data: {r['dataset']} ({r['train_images']} training / {r['test_images']} "
              f"test images), net: {r['net']}, {r['epochs']} epochs in "
              f"{r['train_seconds']:.0f} s",
              f"- SNN: {st['synapse']} synapse tau_s = {st['tau_s'] * 1e3:g} ms, dt = "
              f"{st['dt'] * 1e3:g} ms, presentation {st['presentation_time'] * 1e3:g} ms, window "
              f"{r['window_s'][0] * 1e3:g}-{r['window_s'][1] * 1e3:g} ms, "
              f"{'reset per image' if st['reset'] else 'images back to back'}, initial "
              f"voltages {st['init']}", ""]
    lines += ["| model | error (measured) | error (paper) |", "|---|---|---|"]
    if "relu_error" in r:
        lines.append(f"| ReLU ANN | {_pct(r['relu_error'])} | {paper.get('relu', '-')}% |")
    lines.append(f"| soft-LIF ANN | {_pct(r['ann_error'])} | {_paper_pct(paper_ann)} |")
    lines.append(f"| same ANN, hard LIF rate | {_pct(r.get('ann_error_hard'))} | - |")
    lines.append(f"| LIF SNN | {_pct(r['snn_error'])} | {_paper_pct(paper_snn)} |")
    lines += ["", "| layer | SNN rate (Hz) | ANN hard-rate prediction (Hz) |", "|---|---|---|"]
    for k, (a, b) in enumerate(zip(r["snn_rates_hz"], r["predicted_rates_hz"], strict=True)):
        lines.append(f"| {k + 1} | {a:.2f} | {b:.2f} |")
    pm = PAPER_MEAN_RATE_HZ.get(r["net"])
    lines += ["", f"Mean rate {r['mean_rate_hz']:.2f} Hz" + (f" (paper: {pm} Hz)" if pm else "")
              + f"; synops/s {e['synops_per_s']:,.0f}; updates/s {e['updates_per_s']:,.0f}; "
              f"efficiency {e['efficiency']:.2f}x the ANN at {st['presentation_time'] * 1e3:g} "
              f"ms ({e['ann_flops']:,.0f} ANN flops vs {e['snn_energy']:,.0f} flop-equivalents)."]
    if r.get("noise_calibration_hz") is not None:
        lines.append(f"Noise calibration for this neuron and synapse: sigma = "
                     f"{r['noise_calibration_hz']:.2f} Hz (trained with "
                     f"{r['train_config'].get('noise_std') or 10} Hz).")
    lines.append(f"Simulation: {r['images_per_second']:.1f} images/s on this machine.")
    if r.get("sweep"):
        lines += [""] + sweep_table(r["net"], r["sweep"])
    if r.get("figures"):
        lines += [""] + [f"![{f}]({f})" for f in r["figures"]]
    if notes:
        lines += [""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def reproduction_report(r: dict[str, Any], notes: list[str] | None = None) -> str:
    """The Markdown report of ``softlif reproduce`` (its top-level results.json): ReLU and the
    soft-LIF nets per training-noise sigma as ANN, hard-rate ANN and SNN, beside the paper's
    figures; what the noise did to the ANN-to-SNN gap; the Table-4 sweep."""
    net = r["net"]
    paper = PAPER_ERRORS.get(net, {})
    ablation = PAPER_NOISE_ABLATION.get(net, {})
    st = r["settings"]
    models = sorted(r["models"].values(), key=lambda m: m["noise_std_hz"])
    lines = [f"# Reproduction: {r['dataset']} ({net} net)", ""]
    lines += [f"- data: {r['train_images']} training images; errors on {r['test_images']} test "
              f"images",
              f"- ReLU ANN: {r.get('relu_epochs', '?')} epochs; soft-LIF ANNs: "
              + ", ".join(f"sigma {m['noise_std_hz']:g} Hz {m['epochs']} epochs "
                          + (f"(the last {m['finetune_epochs']} a fine-tune at the final g) "
                             if m.get("finetune_epochs") else "")
                          + f"({_duration(m['train_seconds'])})" for m in models),
              f"- SNN: {st['synapse']} synapse tau_s = {st['tau_s'] * 1e3:g} ms, dt = "
              f"{st['dt'] * 1e3:g} ms, presentation {st['presentation_time'] * 1e3:g} ms, window "
              f"{st['c0'] * 1e3:g}-{st['c1'] * 1e3:g} ms, "
              f"{'reset per image' if st['reset'] else 'images back to back'}, initial "
              f"voltages {st['init']}", ""]
    lines += ["| model | ANN | ANN, hard LIF rate | LIF SNN | SNN - ANN | paper ANN | paper SNN "
              "| ANN, all test images |", "|---|---|---|---|---|---|---|---|"]
    lines.append(f"| ReLU | {_pct(r['relu_error'])} | - | - | - | {paper.get('relu', '-')}% | - "
                 f"| {_pct(r.get('relu_test_error_full'))} |")
    for m in models:
        sigma = m["noise_std_hz"]
        pa, ps = paper_softlif_errors(net, sigma)
        lines.append(
            f"| soft LIF, sigma {sigma:g} Hz | {_pct(m['ann_error'])} | "
            f"{_pct(m.get('ann_error_hard'))} | {_pct(m['snn_error'])} | "
            f"{(m['snn_error'] - m['ann_error']) * 100:+.2f} pt | "
            f"{_paper_pct(pa)} | {_paper_pct(ps)} | "
            f"{_pct(m.get('test_error_full'))} |")
    if len(models) > 1:
        gaps = {m["noise_std_hz"]: (m["snn_error"] - m["ann_error"]) * 100 for m in models}
        best = min(models, key=lambda m: m["snn_error"])
        lines += ["", "Measured here: the ANN-to-SNN gap is "
                  + ", ".join(f"{g:+.2f} pt at sigma {s:g} Hz" for s, g in gaps.items())
                  + f"; the lowest SNN error is the sigma {best['noise_std_hz']:g} Hz net's "
                  f"({_pct(best['snn_error'])})."]
        if ablation:
            lines.append("The paper: gaps " + ", ".join(
                f"{v[1] - v[0]:+.2f} pt at sigma {s:g} Hz" for s, v in ablation.items())
                + "; noise pays off in the SNN.")
    lines += ["", "| model | SNN rates per layer (Hz) | ANN hard-rate prediction (Hz) | mean (Hz) "
              "| efficiency |", "|---|---|---|---|---|"]
    for m in models:
        lines.append(f"| sigma {m['noise_std_hz']:g} Hz | "
                     + ", ".join(f"{v:.1f}" for v in m["snn_rates_hz"]) + " | "
                     + ", ".join(f"{v:.1f}" for v in m.get("predicted_rates_hz") or []) + " | "
                     f"{m['mean_rate_hz']:.1f} | {m['efficiency']:.2f}x |")
    pm = PAPER_MEAN_RATE_HZ.get(net)
    if pm:
        lines.append(f"\nThe paper's mean rate for this net: {pm} Hz.")
    for m in models:
        if m.get("sweep"):
            lines += ["", f"Trade-off (Table 4), sigma {m['noise_std_hz']:g} Hz net, one "
                      "simulation per (tau_s, presentation time); efficiency at presentation "
                      "time c1:", ""] + sweep_table(net, m["sweep"])
    lines += ["", "Per-model reports with figures: "
              + ", ".join(f"[sigma {m['noise_std_hz']:g}]({m['report']})" for m in models)]
    if notes:
        lines += [""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def save_results(r: dict[str, Any], out: Path, title: str, notes: list[str] | None = None
                 ) -> None:
    write_json_atomic(out / "results.json", r)
    write_text_atomic(out / "report.md", markdown_report(r, title, notes))


def load_results(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())
