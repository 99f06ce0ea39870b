"""Conversion diagnostics: where, and why, a spiking net departs from its rate net.

* :func:`layer_statistics`: one simulation that records, per neuron and hidden layer over a
  window ``[c0, c1]`` of each presentation, the measured rate, the mean input current J, the
  rate curve at that mean (what a steady current of that size gives) and the rate curve
  averaged over the current's fluctuations (the quasi-static estimate of what the
  fluctuations cost on a curved rate function). Beside the hard-rate prediction of the rate
  net, the gaps split a layer's rate error into three parts:

  - ``prediction -> rate at mean J``: the layer's mean input is off (layers below fire other
    rates than predicted);
  - ``rate at mean J -> measured``: the fluctuations of the filtered spike input, on the
    curved rate function (and the onset transient that the window leaves in);
  - ``mean of rate(J(t))`` shows how much of the second part a static curve explains.

* :func:`rate_bins`: the per-neuron comparison of measured and predicted rates, binned by the
  predicted rate (Hz), so a deficit can be located on the rate curve.
* :func:`current_attribution`: a layer's mean input current split by where its error comes
  from: the layer below's rate errors in the neurons the rate net predicts silent and in
  those it predicts active (each put through the layer's own weights alone, the other group
  held at its prediction), and a residual (the synaptic filter's lag over the window); with
  the rate each part alone would give.
* :func:`hybrid_network` / :func:`hybrid_input`: the spiking net from hidden layer ``k`` on,
  driven by layer ``k - 1``'s rate-net output as a constant input (the layers before ``k`` run
  exactly as rates). The errors for ``k = 0 .. L`` attribute the SNN's error to the layers
  that spike.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .convert import SpikingNetwork, Stage
from .errors import SoftlifError
from .simulate import Simulator

Tensor = torch.Tensor

#: Default bin edges (Hz) of the predicted rate for :func:`rate_bins`.
RATE_EDGES = (0.0, 1e-9, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, math.inf)


@dataclass
class LayerStatistics:
    """Per-neuron figures of one hidden layer over the window, each ``(N, *out_shape)``.

    measured_hz: spikes in the window / its length. predicted_hz: the rate net's hard rate
    (the SNN's prediction). mean_current: the time-averaged input current J (threshold 1).
    rate_at_mean_hz: the hard rate curve at that mean. mean_rate_hz: the hard rate curve
    averaged over the window's steps, ``mean_t rate(J(t))``.
    """

    name: str
    measured_hz: Tensor
    predicted_hz: Tensor
    mean_current: Tensor
    rate_at_mean_hz: Tensor
    mean_rate_hz: Tensor

    def summary(self) -> dict[str, float]:
        """Layer means (Hz) and the measured rate relative to the prediction."""
        out = {k: float(getattr(self, k).double().mean()) for k in
               ("predicted_hz", "rate_at_mean_hz", "mean_rate_hz", "measured_hz")}
        out["measured_over_predicted"] = (out["measured_hz"] / out["predicted_hz"]
                                          if out["predicted_hz"] > 0 else math.nan)
        return out


@torch.no_grad()
def layer_statistics(snn: SpikingNetwork, images: Tensor, presentation_time: float = 0.2,
                     c0: float = 0.12, c1: float | None = None, dt: float = 0.001,
                     batch_size: int = 50) -> tuple[list[LayerStatistics], Tensor]:
    """Simulate each image alone (reset before it) and collect :class:`LayerStatistics` for
    every hidden layer over the window ``c0 < t <= c1`` (s; default: to the end); also
    returns the predicted class per image (mean readout over the window)."""
    c1 = presentation_time if c1 is None else c1
    steps = int(round(presentation_time / dt))
    lo, hi = int(round(c0 / dt)), int(round(c1 / dt))
    if not 0 <= lo < hi <= steps:
        raise ValueError(f"window must satisfy 0 <= c0 < c1 <= presentation_time "
                         f"({presentation_time} s), got c0={c0}, c1={c1}")
    if not snn.synapse.order:
        raise ValueError("layer_statistics reads currents from the synapse state: use a "
                         "lowpass or alpha synapse")
    width = (hi - lo) * dt
    predicted: list[Tensor] = []
    snn.rate_forward(images, mode="hard", rates=predicted)
    stages = snn.hidden_stages
    acc: dict[str, list[list[Tensor]]] = {k: [[] for _ in stages] for k in
                                          ("count", "j", "rate")}
    preds = []
    for first in range(0, images.shape[0], batch_size):
        x = images[first:first + batch_size]
        sim = Simulator(snn, batch_size=x.shape[0], dt=dt)
        sim.set_input(x)
        sums = {k: [torch.zeros((x.shape[0], *st.out_shape), dtype=torch.float64)
                    for st in stages] for k in acc}
        readout = torch.zeros((x.shape[0], snn.n_outputs), dtype=torch.float64)
        for t in range(hi):
            out = sim.step()
            if t < lo:
                continue
            readout += out.double()
            for k, st in enumerate(stages):
                j = sim.current(k)
                sums["count"][k] += sim.spikes[k].double()
                sums["j"][k] += j.double()
                sums["rate"][k] += st.neuron.rate(j).double()  # type: ignore[union-attr]
        preds.append(readout.argmax(1))
        for key in acc:
            for k in range(len(stages)):
                acc[key][k].append(sums[key][k])
    result = []
    for k, st in enumerate(stages):
        mean_j = torch.cat(acc["j"][k]) / (hi - lo)
        neuron = st.neuron
        assert neuron is not None
        result.append(LayerStatistics(
            name="+".join(st.layer_names), measured_hz=torch.cat(acc["count"][k]) / width,
            predicted_hz=predicted[k].double(), mean_current=mean_j,
            rate_at_mean_hz=neuron.rate(mean_j.float()).double(),
            mean_rate_hz=torch.cat(acc["rate"][k]) / (hi - lo)))
    return result, torch.cat(preds)


def rate_bins(predicted_hz: Tensor, measured_hz: Tensor,
              edges: Sequence[float] = RATE_EDGES) -> list[dict[str, float]]:
    """Per-neuron measured vs predicted rates (Hz, same shape), binned by the predicted rate:
    per bin ``[lo, hi)`` the number of neuron-images, their mean predicted and measured rates
    and the ratio of the means. Empty bins are left out."""
    p, m = predicted_hz.double().flatten(), measured_hz.double().flatten()
    rows = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        sel = (p >= lo) & (p < hi)
        n = int(sel.sum())
        if n == 0:
            continue
        mp, mm = float(p[sel].mean()), float(m[sel].mean())
        rows.append({"lo_hz": lo, "hi_hz": hi, "neurons": n, "predicted_hz": mp,
                     "measured_hz": mm, "ratio": mm / mp if mp > 0 else math.nan})
    return rows


@torch.no_grad()
def current_attribution(snn: SpikingNetwork, stats: Sequence[LayerStatistics],
                        images: Tensor) -> list[dict[str, float] | None]:
    """For each hidden layer fed by spiking layers (None for the others), its mean input current's
    departure from the rate net's, split by source: ``J(x) = current(affine(x))`` with the
    source layers' outputs ``x`` at their predicted rates (``predicted``), with only the
    predicted-silent source neurons at their measured rates (``silent``), with only the
    predicted-active ones measured (``active``), and with all measured (``both``); the
    ``residual`` is the simulated mean current minus ``J(both)``. Means over neurons and
    images of J (threshold 1) and of the hard rate (Hz) at each, from :func:`layer_statistics`'
    figures on the same preprocessed ``images``."""
    stages = snn.stages
    hidden = [k for k, st in enumerate(stages) if st.neuron is not None]
    out: list[dict[str, float] | None] = []
    for k in hidden:
        st, neuron = stages[k], stages[k].neuron
        assert neuron is not None
        if all(j < 0 for j in st.sources):
            out.append(None)
            continue
        rates = {j: _source_rates(stats[hidden.index(j)]) for j in st.sources if j >= 0}
        lin, bias = copy.deepcopy(st.linear).double(), st.bias.double()
        row: dict[str, float] = {}
        for which in ("predicted", "silent", "active", "both"):
            xs = [images.double() if j < 0
                  else stages[j].neuron.amplitude * rates[j][which]  # type: ignore[union-attr]
                  for j in st.sources]
            j_now = neuron.current(lin(*xs) + bias)
            row[f"j_{which}"] = float(j_now.mean())
            row[f"rate_{which}_hz"] = float(neuron.rate(j_now.float()).double().mean())
        row["j_measured"] = float(stats[hidden.index(k)].mean_current.mean())
        row["j_residual"] = row["j_measured"] - row["j_both"]
        out.append(row)
    return out


def _source_rates(s: LayerStatistics) -> dict[str, Tensor]:
    """A source layer's rates (Hz, float64) for :func:`current_attribution`: as predicted, with
    only its predicted-silent neurons at their measured rates, with only the predicted-active
    ones measured, and all measured."""
    p, m = s.predicted_hz.double(), s.measured_hz.double()
    silent = p == 0
    return {"predicted": p, "silent": torch.where(silent, m, p),
            "active": torch.where(silent, p, m), "both": m}


def hybrid_network(snn: SpikingNetwork, k: int) -> SpikingNetwork:
    """The spiking net from hidden layer ``k`` on (1 <= k < L, the number of hidden layers),
    whose analog input is layer ``k - 1``'s output (see :func:`hybrid_input`). Refused where a
    later stage also reads from below ``k - 1`` (a skip connection across the cut)."""
    n = len(snn.hidden_stages)
    if not 1 <= k < n:
        raise ValueError(f"k must be in 1..{n - 1} (a hidden layer after the first), got {k}")
    stages = []
    for i, st in enumerate(snn.stages[k:], start=k):
        if any(j < k - 1 for j in st.sources):
            raise SoftlifError(f"stage {i} ({', '.join(st.layer_names)}) reads from below "
                               f"stage {k - 1}: the cut at {k} crosses a skip connection")
        sources = tuple(-1 if j == k - 1 else j - k for j in st.sources)
        stages.append(dataclasses.replace(st, sources=sources))
    first: Stage = snn.stages[k - 1]
    return SpikingNetwork(stages, snn.synapse, first.out_shape)


@torch.no_grad()
def hybrid_input(snn: SpikingNetwork, images: Tensor, k: int) -> Tensor:
    """Layer ``k - 1``'s output in the rate net (``amplitude * hard rate``): the constant
    input of :func:`hybrid_network` ``(snn, k)``."""
    return snn.rate_forward(images, mode="hard", upto=k - 1)


@torch.no_grad()
def diagnose(snn: SpikingNetwork, images: Tensor, labels: Tensor, presentation_time: float = 0.2,
             c0: float = 0.12, c1: float | None = None, dt: float = 0.001,
             batch_size: int = 50, edges: Sequence[float] = RATE_EDGES) -> dict:
    """Everything above on preprocessed ``images``, each shown alone: per hidden layer the
    rate split, the per-neuron bins and the hybrid net cut before it; as plain data (JSON)."""
    from .simulate import simulate

    c1 = presentation_time if c1 is None else c1
    labels = labels.to(torch.int64)
    stats, pred = layer_statistics(snn, images, presentation_time, c0, c1, dt, batch_size)
    ann_pred = snn.rate_forward(images, mode="hard").argmax(1)
    attribution = current_attribution(snn, stats, images)
    layers = []
    for k, st in enumerate(stats):
        row: dict = {"name": st.name, **st.summary(),
                     "bins": rate_bins(st.predicted_hz, st.measured_hz, edges),
                     "current": attribution[k]}
        if k == 0:
            row["hybrid"] = None  # the full SNN
        else:
            try:
                net = hybrid_network(snn, k)
            except SoftlifError as e:
                row["hybrid"] = {"refused": str(e)}
            else:
                res = simulate(net, hybrid_input(snn, images, k), presentation_time, dt,
                               batch_size=batch_size, reset=True)
                row["hybrid"] = {"error": res.error(labels, c0, c1),
                                 "rates_window_hz": res.firing_rates(c0, c1)}
        layers.append(row)
    return {"images": int(images.shape[0]), "window_s": [c0, c1],
            "presentation_time": presentation_time, "dt": dt,
            "snn_error": float((pred != labels).double().mean()),
            "ann_error_hard": float((ann_pred != labels).double().mean()),
            "layers": layers}
