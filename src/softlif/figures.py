"""Figures (matplotlib, PNG + PDF, written atomically): the paper's Fig. 1-3 and the two
diagnostics users need when a conversion loses accuracy (rate histograms, ANN-vs-SNN scatter).

Every function takes data, not a model, draws one figure and returns the paths written.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import torch

from .io import atomic_path
from .neurons import LIF


def available() -> bool:
    """Whether matplotlib is installed (the ``plot`` extra): without it, commands skip their
    figures with one warning line (:func:`skip_note`)."""
    return importlib.util.find_spec("matplotlib") is not None


def skip_note() -> str:
    """The one line a command prints when it skips its figures."""
    return "matplotlib is not installed: figures skipped (pip install 'softlif[plot]')"


def _figure(**kw):  # type: ignore[no-untyped-def]
    """A matplotlib Figure (no pyplot: the user's backend and open figures are untouched)."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("figures need matplotlib: pip install 'softlif[plot]'") from None
    return Figure(**kw)


def save(fig, path_stem: Path) -> list[Path]:
    """Save ``fig`` as PNG and PDF next to each other, atomically; close it."""
    path_stem.parent.mkdir(parents=True, exist_ok=True)
    out = []
    for ext in ("png", "pdf"):
        final = path_stem.with_suffix(f".{ext}")
        with atomic_path(final, suffix=f".{ext}") as tmp:
            fig.savefig(tmp, dpi=150, bbox_inches="tight", format=ext)
        out.append(final)
    return out


def fig_rate_curves(neuron: LIF, path_stem: Path, smoothings: Sequence[float] = (0.02, 0.1),
                    j_range: tuple[float, float] = (0.0, 4.0)) -> list[Path]:
    """Paper Fig. 1: LIF and soft-LIF rate (Hz) and derivative vs input current J."""
    import dataclasses

    j = torch.linspace(*j_range, 801, dtype=torch.float64, requires_grad=True)
    fig = _figure(figsize=(10, 4))
    ax1, ax2 = fig.subplots(1, 2)
    curves = [("LIF (hard)", dataclasses.replace(neuron, smoothing=0.0), "k", "-")]
    curves += [(f"soft LIF, g = {g:g}", dataclasses.replace(neuron, smoothing=g), c, "--")
               for g, c in zip(smoothings, ("tab:blue", "tab:orange", "tab:green"), strict=False)]
    soft_peak = 0.0
    for label, n, color, ls in curves:
        r = n.soft_rate(j)
        (d,) = torch.autograd.grad(r.sum(), j)
        ax1.plot(j.detach(), r.detach(), color=color, ls=ls, label=label)
        ax2.plot(j.detach(), d, color=color, ls=ls, label=label)
        if n.smoothing > 0:
            soft_peak = max(soft_peak, float(d.max()))
    ax1.set(xlabel="input current J", ylabel="firing rate (Hz)",
            title=f"rate (tau_rc = {neuron.tau_rc * 1e3:g} ms, tau_ref = {neuron.tau_ref * 1e3:g} ms)")
    # the hard curve's derivative is unbounded at threshold: scale to the soft ones
    ax2.set(xlabel="input current J", ylabel="d rate / dJ (Hz per unit current)",
            title="derivative (hard LIF: unbounded at J = 1)", ylim=(0, 1.3 * soft_peak))
    for ax in (ax1, ax2):
        ax.axvline(1.0, color="0.8", lw=0.8)
        ax.legend(frameon=False)
    return save(fig, path_stem)


def fig_spread(stats: dict[str, torch.Tensor], path_stem: Path, title: str) -> list[Path]:
    """Paper Fig. 2: filtered spike-train spread vs input current (mean, median, quartiles,
    min/max) over the analytic rate."""
    j = stats["current"]
    fig = _figure(figsize=(6.5, 4.5))
    ax = fig.subplots()
    ax.fill_between(j, stats["min"], stats["max"], color="tab:blue", alpha=0.15, label="min-max")
    ax.fill_between(j, stats["q25"], stats["q75"], color="tab:blue", alpha=0.35,
                    label="quartiles")
    ax.plot(j, stats["median"], color="tab:blue", lw=1, label="median")
    ax.plot(j, stats["mean"], color="tab:red", lw=1, ls="--", label="mean")
    ax.plot(j, stats["rate"], color="k", lw=1, ls=":", label="analytic rate")
    ax.set(xlabel="input current J", ylabel="filtered spike train (Hz)", title=title)
    ax.legend(frameon=False, loc="upper left")
    return save(fig, path_stem)


def fig_error_vs_c1(curves: dict[float, tuple[torch.Tensor, torch.Tensor]], path_stem: Path,
                    title: str, ann_error: float | None = None) -> list[Path]:
    """Paper Fig. 3: error (%) vs window end c1 (ms) for several window starts c0."""
    fig = _figure(figsize=(6.5, 4.5))
    ax = fig.subplots()
    for c0, (c1, err) in sorted(curves.items()):
        ax.plot(c1 * 1e3, err * 100, label=f"c0 = {c0 * 1e3:g} ms")
    if ann_error is not None:
        ax.axhline(ann_error * 100, color="k", ls=":", label="ANN (hard rate)")
    ax.set(xlabel="c1: end of classification window (ms)", ylabel="error (%)", title=title)
    lo = min(float(e.min()) for _, e in curves.values()) * 100
    ax.set_ylim(max(0.0, lo * 0.8), min(100.0, max(lo * 4, lo + 5)))
    ax.legend(frameon=False)
    return save(fig, path_stem)


def fig_rate_histograms(neuron_rates: Sequence[torch.Tensor], names: Sequence[str],
                        path_stem: Path) -> list[Path]:
    """Per-layer histograms of single-neuron firing rates (Hz) in the SNN."""
    n = len(neuron_rates)
    fig = _figure(figsize=(3.2 * n, 3.2))
    axes = fig.subplots(1, n, squeeze=False)
    for ax, r, name in zip(axes[0], neuron_rates, names, strict=True):
        r = r.flatten().double()
        ax.hist(r.numpy(), bins=40, color="tab:blue", log=True)
        ax.set(title=f"{name}: mean {float(r.mean()):.1f} Hz", xlabel="rate (Hz)")
    axes[0][0].set_ylabel("neurons x images")
    return save(fig, path_stem)


def fig_ann_vs_snn(ann_rates: Sequence[torch.Tensor], snn_rates: Sequence[torch.Tensor],
                   names: Sequence[str], path_stem: Path, max_points: int = 20000) -> list[Path]:
    """Per layer: hard-rate ANN prediction vs measured SNN rate of each neuron (Hz)."""
    n = len(ann_rates)
    fig = _figure(figsize=(3.2 * n, 3.4))
    axes = fig.subplots(1, n, squeeze=False)
    g = torch.Generator().manual_seed(0)
    for ax, a, s, name in zip(axes[0], ann_rates, snn_rates, names, strict=True):
        a, s = a.flatten().double(), s.flatten().double()
        if len(a) > max_points:
            idx = torch.randperm(len(a), generator=g)[:max_points]
            a, s = a[idx], s[idx]
        hi = max(float(a.max()), float(s.max()), 1.0)
        ax.plot([0, hi], [0, hi], color="0.6", lw=0.8)
        ax.scatter(a.numpy(), s.numpy(), s=2, alpha=0.3)
        corr = float(torch.corrcoef(torch.stack([a, s]))[0, 1]) if a.std() > 0 else float("nan")
        ax.set(title=f"{name} (r = {corr:.3f})", xlabel="ANN hard rate (Hz)")
    axes[0][0].set_ylabel("SNN rate (Hz)")
    return save(fig, path_stem)


def pareto_plot(points: Sequence[dict], path_stem: Path,
                title: str = "Energy-aware training: error vs synaptic events") -> list[Path]:
    """Error (%) against synaptic events per second per image (millions) for runs with
    different rate-penalty weights; ``points`` are dicts with ``rate_penalty``, ``snn_error``
    (fraction) and ``msynops_per_s``. The Pareto front (no run both better and cheaper) is
    joined by a line."""
    from .energy import pareto_front

    pts = sorted(points, key=lambda p: p["msynops_per_s"])
    on_front = pareto_front(points)
    front = [p for p in pts if p["rate_penalty"] in on_front]
    fig = _figure(figsize=(5, 3.6))
    ax = fig.subplots()
    ax.scatter([p["msynops_per_s"] for p in pts], [p["snn_error"] * 100 for p in pts],
               color="tab:blue", zorder=3)
    ax.plot([p["msynops_per_s"] for p in front], [p["snn_error"] * 100 for p in front],
            color="tab:blue", alpha=0.5, label="Pareto front")
    for p in pts:
        ax.annotate(f"λ={p['rate_penalty']:g}", (p["msynops_per_s"], p["snn_error"] * 100),
                    textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.margins(x=0.12, y=0.12)  # room for the labels of the end points
    ax.set_xlabel("synaptic events per second per image (millions)")
    ax.set_ylabel("SNN test error (%)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save(fig, path_stem)
