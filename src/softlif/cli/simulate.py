"""`softlif simulate`, `softlif sweep` and `softlif diagnose`: the spiking net of a
checkpoint."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..io import write_json_atomic
from .common import (
    EXIT_OK,
    UsageError,
    add_data_args,
    add_sim_args,
    cli_options,
    emit,
    float_list,
    is_main,
    load_ck,
    load_data,
    load_test_data,
    nonneg_int,
    positive_float,
    positive_int,
    sim_settings,
    window_list,
)

# `softlif sweep` has two kinds: the tau/time/window sweep of one net, and the rate-penalty
# sweep (--rate-penalties) that fine-tunes it; each kind's own options and their defaults
SWEEP_DEFAULTS: dict[str, Any] = {
    "taus": [0.0, 0.002, 0.005],
    "times": [0.2],
    "windows": [(0.12, 0.2), (0.04, 0.1), (0.05, 0.06), (0.02, 0.06), (0.01, 0.08)],
}
PENALTY_DEFAULTS: dict[str, Any] = {"finetune_epochs": 4, "lr": 2e-4, "seed": 10,
                                    "limit_train": None}


def _fmt(v: Any) -> str:
    return ",".join(f"{x:g}" for x in v) if isinstance(v, list) else f"{v:g}"


def _sweep_kind_options(args: argparse.Namespace) -> None:
    """Refuse the other kind's options (they would be ignored), then fill this kind's defaults."""
    penalty = args.rate_penalties is not None
    own, other = (PENALTY_DEFAULTS, SWEEP_DEFAULTS) if penalty else (SWEEP_DEFAULTS,
                                                                      PENALTY_DEFAULTS)
    given = ["--" + k.replace("_", "-") for k in other if getattr(args, k) is not None]
    if given:
        raise UsageError(
            f"{', '.join(given)} {'belong' if len(given) > 1 else 'belongs'} to the "
            + ("tau/window sweep, not to --rate-penalties (the penalty sweep simulates each "
               "point with the simulate options: --tau-s, --presentation-time, --c0, --c1)"
               if penalty else "rate-penalty sweep: add --rate-penalties W,W,... or drop "
               "them"))
    for k, v in own.items():
        if getattr(args, k) is None:
            setattr(args, k, v)


def cmd_simulate(args: argparse.Namespace) -> int:
    from ..evaluate import ann_errors, run_snn
    from ..figures import available as figures_available
    from ..figures import skip_note
    from ..neurons import neuron_to_dict

    s = sim_settings(args)  # arguments first: they fail before anything is loaded
    if args.figures and not args.out:
        raise UsageError("--figures needs --out")
    if args.figures and is_main() and not figures_available():  # said before the long work
        print(skip_note(), file=sys.stderr)
    ck = load_ck(args.checkpoint)
    x, y = load_test_data(args, ck)
    if is_main():
        print(kernels_line(s), file=sys.stderr)
    keep = min(100, len(x)) if args.figures else 0
    res, summary, snn = run_snn(ck, x, y, s, keep_neuron_counts=keep,
                                progress=not args.no_progress)
    summary = {**ann_errors(ck, x, y, s.device), **summary,
               "checkpoint": {"path": args.checkpoint, "epochs": ck.epoch,
                              "config": ck.config, "metrics": ck.metrics,
                              "neuron": None if ck.neuron is None
                              else neuron_to_dict(ck.neuron)}}
    curves = {}
    for c0 in args.curve_c0:
        if c0 < s.presentation_time:
            c1, err = res.error_vs_c1(y, c0)
            curves[str(c0)] = {"c1_s": c1.tolist(), "error": err.tolist()}
    summary["error_vs_c1"] = curves
    if args.figures and is_main():
        from ..report import write_figures

        summary["figures"] = write_figures(ck, res, summary, snn, x[:keep], y, Path(args.out),
                                           args.curve_c0)
    if args.out and is_main():
        out = Path(args.out)
        write_json_atomic(out / "config.json", cli_options(args))
        write_json_atomic(out / "simulate.json", summary)
    emit(args, summary, lambda: format_sim_summary(summary))
    return EXIT_OK


def kernels_line(s: Any) -> str:
    """One line for the start of a simulation: the arithmetic and kernels chosen here."""
    from ..hardware import machine
    from ..simulate import choose_kernels

    k = choose_kernels(s.device, s.precision, split_int8=False if s.float_maps else None)
    return f"simulation: {k.describe()}; {machine().line()}"


def format_sim_summary(s: dict[str, Any]) -> str:
    e = s["energy"]
    lines = []
    if "relu_error" in s:
        lines.append(f"ReLU ANN error        {s['relu_error'] * 100:6.2f} %")
    # the neuron type's name (LIF, IF, AdaptiveLIF, ...), where the summary records it
    kind = ((s.get("checkpoint") or {}).get("neuron") or {}).get("type", "LIF")
    lines.append(f"{'soft ' + kind + ' ANN error':<22}{s['ann_error'] * 100:6.2f} %")
    if "ann_error_hard" in s:
        lines.append(f"{'hard ' + kind + ' ANN error':<22}{s['ann_error_hard'] * 100:6.2f} %  "
                     "(rate net with the spiking neuron's curve: predicts the SNN)")
    c0, c1 = s["window_s"]
    st = s["settings"]
    lines.append(f"{kind + ' SNN error':<22}{s['snn_error'] * 100:6.2f} %  ({s['images']} images, "
                 f"{st['synapse']} tau_s {st['tau_s'] * 1e3:g} ms, window {c0 * 1e3:g}-"
                 f"{c1 * 1e3:g} ms of {st['presentation_time'] * 1e3:g} ms)")
    lines.append("rates per layer (Hz)  SNN " + ", ".join(f"{r:.1f}" for r in s["snn_rates_hz"])
                 + "; ANN hard-rate prediction "
                 + ", ".join(f"{r:.1f}" for r in s["predicted_rates_hz"]))
    lines.append(f"mean rate             {s['mean_rate_hz']:.2f} Hz")
    lines.append(f"synops/s              {e['synops_per_s']:,.0f}   updates/s "
                 f"{e['updates_per_s']:,.0f}")
    lines.append(f"efficiency            {e['efficiency']:.2f}x the ANN's flops "
                 f"({e['ann_flops']:,.0f} vs {e['snn_energy']:,.0f} flop-equivalents per image)")
    lines.append(f"simulation            {s['images_per_second']:.1f} images/s")
    return "\n".join(lines)


def cmd_sweep(args: argparse.Namespace) -> int:
    from ..evaluate import sweep

    _sweep_kind_options(args)
    if args.rate_penalties is not None:
        return _penalty_sweep(args)
    ck = load_ck(args.checkpoint)
    base = sim_settings(args)
    x, y = load_test_data(args, ck)
    rows = sweep(ck, x, y, base, args.taus, args.times, args.windows,
                 progress=not args.no_progress)
    if args.out and is_main():
        write_json_atomic(Path(args.out) / "config.json", cli_options(args))
        write_json_atomic(Path(args.out) / "sweep.json", rows)

    def text() -> str:
        lines = [f"{'tau_s (ms)':>10} {'c0 (ms)':>8} {'c1 (ms)':>8} {'error (%)':>10} "
                 f"{'efficiency':>10}"]
        lines += [f"{r['tau_s'] * 1e3:10g} {r['c0'] * 1e3:8g} {r['c1'] * 1e3:8g} "
                  f"{r['error'] * 100:10.2f} {r['efficiency']:9.2f}x" for r in rows]
        return "\n".join(lines)

    emit(args, {"rows": rows}, text)
    return EXIT_OK


def _penalty_sweep(args: argparse.Namespace) -> int:
    """`softlif sweep CKPT --rate-penalties ...`: fine-tune per penalty weight, simulate each,
    the accuracy-vs-synaptic-events Pareto front (softlif.penalty_sweep)."""
    from ..penalty_sweep import penalty_sweep

    s = sim_settings(args)  # arguments first: they fail before anything is loaded
    if len(set(args.rate_penalties)) != len(args.rate_penalties):
        raise UsageError(f"--rate-penalties: each weight once, got {args.rate_penalties}")
    if not args.out:
        raise UsageError("--rate-penalties needs --out (the fine-tuned checkpoints, "
                         "pareto.json and pareto.png go there)")
    ck = load_ck(args.checkpoint)
    if ck.activation == "relu":
        raise UsageError(f"{args.checkpoint} holds a ReLU net: the penalty sweep fine-tunes a "
                         "spiking (soft-LIF, LIF or IF) net")
    x, y = load_test_data(args, ck)
    train_split, test_split, pre = load_data(args.dataset, args.data_dir, args.limit_train,
                                             None, args)
    out = Path(args.out)
    if is_main():
        write_json_atomic(out / "config.json", cli_options(args))
    if not args.no_fuse:
        from ..activations import use_fused_kernels

        use_fused_kernels(True)
    log = (lambda m: None) if args.json or not is_main() else (
        lambda m: print(m, file=sys.stderr))
    result = penalty_sweep(args.checkpoint, args.rate_penalties, train_split, test_split, pre,
                           x, y, s, out, epochs=args.finetune_epochs, lr=args.lr,
                           seed=args.seed, progress=not args.no_progress and is_main(),
                           log=log)

    def text() -> str:
        lines = [f"{'penalty':>8} {'SNN error (%)':>13} {'ANN error (%)':>13} "
                 f"{'M synops/s':>10} {'efficiency':>10}  rates (Hz)"]
        for p in result["points"]:
            front = " *" if p["rate_penalty"] in result["pareto_front"] else ""
            lines.append(f"{p['rate_penalty']:8g} {p['snn_error'] * 100:13.2f} "
                         f"{p['ann_error'] * 100:13.2f} {p['msynops_per_s']:10.2f} "
                         f"{p['efficiency']:9.2f}x  "
                         + ", ".join(f"{r:.2f}" for r in p["snn_rates_hz"]) + front)
        lines.append(f"* on the Pareto front; {result['test_images']} test images; "
                     f"pareto.json and pareto.png in {out}")
        return "\n".join(lines)

    emit(args, result, text)
    return EXIT_OK


def cmd_diagnose(args: argparse.Namespace) -> int:
    from ..diagnose import diagnose
    from ..evaluate import spiking_net

    s = sim_settings(args)
    if s.synapse == "none":
        raise UsageError("diagnose reads currents from the synapse state: --tau-s must be > 0")
    ck = load_ck(args.checkpoint)
    x, y = load_test_data(args, ck)
    _, snn = spiking_net(ck, s.synapse_obj())
    report = diagnose(snn, ck.preprocess.test(x), y, s.presentation_time, s.c0, s.c1, s.dt,
                      s.batch_size)
    report["settings"] = s.__dict__
    report["checkpoint"] = args.checkpoint
    if args.out and is_main():
        write_json_atomic(Path(args.out) / "config.json", cli_options(args))
        write_json_atomic(Path(args.out) / "diagnose.json", report)
    emit(args, report, lambda: format_diagnosis(report))
    return EXIT_OK


def format_diagnosis(r: dict[str, Any]) -> str:
    c0, c1 = r["window_s"]
    lines = [f"{r['images']} images, each alone, window {c0 * 1e3:g}-{c1 * 1e3:g} ms: SNN error "
             f"{r['snn_error'] * 100:.2f} %, hard-rate ANN {r['ann_error_hard'] * 100:.2f} %",
             f"{'layer':<14} {'predicted':>9} {'rate(mean J)':>12} {'mean rate(J)':>12} "
             f"{'measured':>9} {'ratio':>6}  hybrid from here (SNN error)"]
    for row in r["layers"]:
        h = row["hybrid"]
        hyb = ("the full SNN" if h is None else h["refused"] if "refused" in h
               else f"{h['error'] * 100:.2f} %")
        lines.append(f"{row['name'][:14]:<14} {row['predicted_hz']:9.2f} "
                     f"{row['rate_at_mean_hz']:12.2f} {row['mean_rate_hz']:12.2f} "
                     f"{row['measured_hz']:9.2f} {row['measured_over_predicted']:6.3f}  {hyb}")
    lines.append("rates in Hz; ratio = measured / predicted; per-neuron bins in the JSON")
    cur = [(row["name"], row["current"]) for row in r["layers"] if row.get("current")]
    if cur:
        lines.append("mean input current J (mean per-neuron rate at it, Hz) with the layer "
                     "below at its predicted "
                     "rates, with only its predicted-silent / predicted-active neurons measured, "
                     "with all measured; the simulated mean J; residual = simulated - all")
        for name, c in cur:
            lines.append(f"{name[:14]:<14} " + "  ".join(
                f"{w} {c['j_' + w]:.4f} ({c['rate_' + w + '_hz']:.2f})"
                for w in ("predicted", "silent", "active", "both"))
                + f"  simulated {c['j_measured']:.4f}  residual {c['j_residual']:+.4f}")
    return "\n".join(lines)


def register(sub: Any, datasets: list[str]) -> None:
    """Add `simulate`, `sweep` to the subparsers ``sub``."""
    s = sub.add_parser("simulate", help="convert a checkpoint and simulate it as a spiking net")
    s.add_argument("checkpoint", help="checkpoint written by `softlif train`, or "
                                      "pretrained:NAME for a net of the model zoo")
    add_data_args(s, datasets)
    add_sim_args(s)
    s.add_argument("--curve-c0", type=float_list("--curve-c0"), default=[0.0, 0.02, 0.05, 0.1],
                   help="window starts (s) for the error-vs-c1 curves")
    s.add_argument("--out", help="write simulate.json and config.json here")
    s.add_argument("--figures", action="store_true", help="also draw the figures into --out")
    s.add_argument("--no-progress", action="store_true")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_simulate)
    w = sub.add_parser("sweep", help="error vs efficiency over tau_s, presentation time, window")
    w.add_argument("checkpoint")
    add_data_args(w, datasets)
    add_sim_args(w)
    # defaults None: each family of options belongs to one kind of sweep, and giving one to the
    # other kind is refused (_sweep_kind_options) rather than silently ignored
    w.add_argument("--taus", type=float_list("--taus"),
                   help="synaptic time constants (s); default " + _fmt(SWEEP_DEFAULTS["taus"]))
    w.add_argument("--times", type=float_list("--times"),
                   help="presentation times (s), one simulation each per tau; default "
                        + _fmt(SWEEP_DEFAULTS["times"]))
    w.add_argument("--windows", type=window_list,
                   help="C0:C1 pairs in seconds; default " + ",".join(
                       f"{a:g}:{b:g}" for a, b in SWEEP_DEFAULTS["windows"]))
    w.add_argument("--rate-penalties", type=float_list("--rate-penalties"),
                   help="instead of the tau/window sweep: fine-tune the net once per "
                        "rate-penalty weight (0 = the same fine-tune without penalty), simulate "
                        "each with the simulate options, and write the error-vs-synaptic-events "
                        "Pareto plot and JSON")
    w.add_argument("--finetune-epochs", type=positive_int("--finetune-epochs"),
                   help="with --rate-penalties: epochs of each fine-tune; default "
                        + _fmt(PENALTY_DEFAULTS["finetune_epochs"]))
    w.add_argument("--lr", type=positive_float("--lr"),
                   help="with --rate-penalties: the fine-tunes' learning rate; default "
                        + _fmt(PENALTY_DEFAULTS["lr"]))
    w.add_argument("--seed", type=nonneg_int("--seed"),
                   help="with --rate-penalties: the fine-tunes' seed; default "
                        + _fmt(PENALTY_DEFAULTS["seed"]))
    w.add_argument("--limit-train", type=positive_int("--limit-train"),
                   help="with --rate-penalties: fine-tune on the first N training images")
    w.add_argument("--out")
    w.add_argument("--no-progress", action="store_true")
    w.add_argument("--json", action="store_true")
    w.set_defaults(func=cmd_sweep)
    d = sub.add_parser("diagnose", help="locate conversion error: per-layer rate split, "
                       "per-neuron bins by predicted rate, hybrid nets cut at each layer")
    d.add_argument("checkpoint")
    add_data_args(d, datasets)
    add_sim_args(d)
    d.add_argument("--out", help="write diagnose.json and config.json here")
    d.add_argument("--json", action="store_true")
    d.set_defaults(func=cmd_diagnose)
