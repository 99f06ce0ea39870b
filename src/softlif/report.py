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
from .evaluate import SimSettings, ann_errors, neuron_hard_rates, run_snn
from .figures import (
    fig_ann_vs_snn,
    fig_error_vs_c1,
    fig_rate_curves,
    fig_rate_histograms,
    fig_spread,
)
from .io import write_json_atomic, write_text_atomic
from .networks import NetSpec
from .neurons import LIF
from .train import Checkpoint, TrainConfig, train

# SPEC section 6: the paper's error rates (%) and Table-4 trade-offs.
PAPER_ERRORS = {
    "mnist": {"relu": 0.79, "softlif": 0.84, "snn": 0.88},
    "svhn": {"relu": 5.65, "softlif": 5.79, "snn": 6.08},
    "cifar10": {"relu": 16.48, "softlif": 16.28, "snn": 16.46},
    "cifar100": {"relu": 50.05, "softlif": 44.35, "snn": 44.87},
    "imagenet": {"relu": 45.4, "softlif": 48.3, "snn": 48.2},
}
PAPER_MEAN_RATE_HZ = {"mnist": 9.67, "cifar10": 148.0, "imagenet": 93.3}


def write_figures(ck: Checkpoint, res: Any, summary: dict, snn: Any, x_kept: torch.Tensor,
                  labels: torch.Tensor, out: Path, c0s: list[float]) -> list[str]:
    """All figures for one simulated checkpoint; returns their file names (PNG)."""
    names = []
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
    device: str = "cpu",
) -> dict[str, Any]:
    """Train a soft-LIF net, evaluate it as ANN (soft and hard rate) and SNN, measure energy,
    draw the figures; returns the results dict (also the basis of the Markdown report)."""
    t0 = time.perf_counter()
    ck = train(spec, train_split, test_split, pre, cfg, checkpoint_path=out / "checkpoint.pt",
               progress=progress, log=log, device=device)
    t_train = time.perf_counter() - t0
    n = len(test_split) if n_test is None else min(n_test, len(test_split))
    x = torch.from_numpy(test_split.images[:n])
    y = torch.from_numpy(test_split.labels[:n])
    results: dict[str, Any] = {"dataset": dataset, "net": spec.name, "train_images":
                               len(train_split), "test_images": n, "epochs": ck.epoch,
                               "train_seconds": t_train, "train_config": ck.config}
    results.update(ann_errors(ck, x, y, device))
    keep = min(100, n)
    res, summary, snn = run_snn(ck, x, y, sim, keep_neuron_counts=keep, progress=progress)
    results.update(summary)
    results["error_vs_c1"] = {str(c0): [v.tolist() for v in res.error_vs_c1(y, c0)]
                              for c0 in c0s if c0 < res.presentation_time}
    results["figures"] = write_figures(ck, res, results, snn, x[:keep], y, out, list(c0s))
    results["noise_calibration_hz"] = calibrate_noise(
        ck.neuron or spec.neuron, snn.synapse, n_currents=30)["sigma_hz"] if snn.synapse.order \
        else None
    results["total_seconds"] = time.perf_counter() - t0
    return results


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v * 100:.2f}%"


def markdown_report(r: dict[str, Any], title: str, notes: list[str] | None = None) -> str:
    """The results of :func:`run_experiment` as Markdown, with the paper's figures beside."""
    paper = PAPER_ERRORS.get(r["net"], {})
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
    lines.append(f"| soft-LIF ANN | {_pct(r['ann_error'])} | {paper.get('softlif', '-')}% |")
    lines.append(f"| same ANN, hard LIF rate | {_pct(r.get('ann_error_hard'))} | - |")
    lines.append(f"| LIF SNN | {_pct(r['snn_error'])} | {paper.get('snn', '-')}% |")
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
        lines += ["", "| tau_s (ms) | c0 (ms) | c1 (ms) | error | efficiency |",
                  "|---|---|---|---|---|"]
        lines += [f"| {w['tau_s'] * 1e3:g} | {w['c0'] * 1e3:g} | {w['c1'] * 1e3:g} | "
                  f"{_pct(w['error'])} | {w['efficiency']:.2f}x |" for w in r["sweep"]]
    if r.get("figures"):
        lines += [""] + [f"![{f}]({f})" for f in r["figures"]]
    if notes:
        lines += [""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def save_results(r: dict[str, Any], out: Path, title: str, notes: list[str] | None = None
                 ) -> None:
    write_json_atomic(out / "results.json", r)
    write_text_atomic(out / "report.md", markdown_report(r, title, notes))


def load_results(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())
