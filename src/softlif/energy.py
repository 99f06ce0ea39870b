"""Energy model: ANN flops vs. spiking-network cost (Hunsberger & Eliasmith 2016, arXiv
1611.05141, Eq. 4-5; SPEC section 5), plus joules per image on device profiles.

Units, spelled out once:

* flops per image: 2 per synapse (multiply + add) + 1 per neuron (the nonlinearity);
* synops/s: synaptic events per second = sum over layers l and their spiking sources j of
  synapses[l, j] x mean rate (Hz) of source j (the analog input is computed conventionally).
  The paper's convention, used for the energy: after a pooling layer a layer's synapses start
  at the pooled units (a pooled unit's rate times the layer's synapses). A chip without pooling
  units delivers each spike through every pooled unit that contains it: ``chip_synops_per_s``
  counts those events (k x k times more after a k x k pool: 4x after 2/2, 9x after 3/2),
  reported beside it with its own energy and efficiency;
* updates/s: neuron state updates per second = neurons / dt (every neuron, every step);
* SNN energy per image, in flop units = 2 x synapses[0] (first layer, conventional)
  + (E_synop x synops/s + E_update x updates/s) x presentation time (s),
  with E_synop = 0.08 and E_update = 0.25 flop-equivalents (the paper's estimates);
* efficiency = ANN flops / SNN energy (> 1: the SNN is cheaper).

>>> from softlif.networks import NETS, layer_table
>>> r = energy_report(layer_table(NETS["cifar10"]), [173.3, 99.0, 9.7, 7.2], 0.2)
>>> round(r.efficiency, 2)
0.76
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from .convert import SpikingNetwork
from .layers import LocallyConnected2d
from .networks import LayerCount

if TYPE_CHECKING:
    from .simulate import SimResult

E_SYNOP = 0.08  # flop-equivalents per synaptic event (paper, sec. 4)
E_UPDATE = 0.25  # flop-equivalents per neuron update (paper, sec. 4)


@dataclass(frozen=True)
class Device:
    """Energy per event in joules. Spiking devices: per synaptic event and per neuron update;
    conventional devices: per operation (``synop`` = ``update`` = joules per flop)."""

    name: str
    joules_per_synop: float  # J per synaptic event (spiking) or per flop (conventional)
    joules_per_update: float  # J per neuron update (spiking) or per flop (conventional)
    spiking: bool
    source: str


# As tabulated in KerasSpiking's ModelEnergy (Nengo), which cites the sources below.
DEVICES: dict[str, Device] = {
    d.name: d for d in (
        Device("loihi", 27.1e-12, 81e-12, True,
               "Davies et al. 2018, IEEE Micro 38(1): 23.6 pJ/synop + 3.5 pJ/spike, 81 pJ/update"),
        Device("spinnaker", 13.3e-9, 26e-9, True,
               "Stromatias et al. 2013, IJCNN: power analysis of SpiNNaker"),
        Device("spinnaker2", 450e-12, 2.19e-9, True,
               "Hoeppner et al. 2017 (SpiNNaker 2 prototype), via KerasSpiking"),
        Device("cpu", 8.6e-9, 8.6e-9, False,
               "Degnan, Marr & Hasler 2016 (Intel i7-4960X), via KerasSpiking"),
        Device("gpu", 0.3e-9, 0.3e-9, False,
               "Degnan, Marr & Hasler 2016 (Nvidia GTX Titan Black), via KerasSpiking"),
        Device("arm", 0.9e-9, 0.9e-9, False,
               "Degnan, Marr & Hasler 2016 (ARM Cortex-A), via KerasSpiking"),
    )
}


def parse_device(text: str) -> Device:
    """A user device ``NAME:J_PER_SYNOP:J_PER_UPDATE[:spiking|conventional]`` (joules)."""
    parts = text.split(":")
    if len(parts) not in (3, 4):
        raise ValueError(f"device must be NAME:J_PER_SYNOP:J_PER_UPDATE[:spiking|conventional], "
                         f"got {text!r}")
    try:
        syn, upd = float(parts[1]), float(parts[2])
    except ValueError:
        raise ValueError(f"device energies must be numbers in joules, got {text!r}") from None
    kind = parts[3] if len(parts) == 4 else "spiking"
    finite = math.isfinite(syn) and math.isfinite(upd)
    if kind not in ("spiking", "conventional") or not finite or syn < 0 or upd < 0:
        raise ValueError(f"bad device {text!r}: energies finite and >= 0 joules, kind "
                         "spiking|conventional")
    if not parts[0]:
        raise ValueError(f"device {text!r} needs a NAME before the first ':'")
    return Device(parts[0], syn, upd, kind == "spiking", "user supplied")


@dataclass
class EnergyReport:
    """Per-image costs of an ANN and its spiking version (see module docstring for units)."""

    presentation_time: float  # s
    dt: float  # s
    layers: list[dict]  # name, neurons, synapses, flops, input_rate_hz, synops_per_s
    ann_flops: float  # flops per image
    first_layer_flops: float  # flops per image (analog input, conventional)
    synops_per_s: float  # synaptic events per second (paper convention)
    updates_per_s: float  # neuron updates per second
    snn_energy: float  # flop-equivalents per image
    efficiency: float  # ann_flops / snn_energy
    chip_synops_per_s: float = 0.0  # events per second, each spike fanned out through pooling
    chip_snn_energy: float = 0.0  # flop-equivalents per image with chip_synops_per_s
    chip_efficiency: float = 0.0  # ann_flops / chip_snn_energy
    devices: dict[str, dict] = field(default_factory=dict)  # joules per image per device
    assumptions: dict[str, float | str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def energy_report(
    layers: list[LayerCount],
    rates_hz: list[float],
    presentation_time: float,
    dt: float = 0.001,
    devices: dict[str, Device] | None = None,
) -> EnergyReport:
    """Energy per image for a net with per-layer counts ``layers`` whose hidden layers fire at
    ``rates_hz`` (one mean rate per neuron layer, Hz), shown for ``presentation_time`` s."""
    hidden = [row for row in layers if row.neurons > 0]
    if len(rates_hz) != len(hidden):
        raise ValueError(f"need one rate per neuron layer ({len(hidden)}), got {len(rates_hz)}")
    if any(not (0 <= r < math.inf) for r in rates_hz):
        raise ValueError(f"rates must be finite and >= 0 Hz, got {rates_hz}")
    if not (0 < presentation_time < math.inf and 0 < dt < math.inf):
        raise ValueError("presentation_time and dt must be finite and > 0 seconds")
    if dt > presentation_time:
        raise ValueError(f"dt ({dt:g} s) is longer than the presentation time "
                         f"({presentation_time:g} s)")
    neurons = sum(row.neurons for row in layers)
    ann_flops = float(sum(row.flops for row in layers))
    first, synops, chip = 0.0, 0.0, 0.0
    rows = []
    for i, row in enumerate(layers):
        sources = row.sources or (i - 1,)
        paper = row.source_synapses or (row.synapses,)
        on_chip = row.chip_synapses or tuple(float(x) for x in paper)
        if not len(sources) == len(paper) == len(on_chip):
            raise ValueError(f"layer {row.name}: {len(sources)} sources but "
                             f"{len(paper)}/{len(on_chip)} synapse counts")
        s = c = 0.0
        rate_in: list[float | None] = []
        for j, n_syn, n_chip in zip(sources, paper, on_chip, strict=True):
            if j < 0:  # the analog input: computed conventionally, 2 flops per synapse
                first += 2.0 * n_syn
                rate_in.append(None)
                continue
            if j >= len(rates_hz):
                raise ValueError(f"layer {row.name} reads neuron layer {j}, but only "
                                 f"{len(rates_hz)} rates were given")
            s += n_syn * rates_hz[j]
            c += n_chip * rates_hz[j]
            rate_in.append(rates_hz[j])
        synops += s
        chip += c
        rows.append({"name": row.name, "neurons": row.neurons, "synapses": row.synapses,
                     "flops": row.flops,
                     "input_rate_hz": rate_in[0] if len(rate_in) == 1 else rate_in,
                     "sources": list(sources), "synops_per_s": s, "chip_synops_per_s": c})
    updates = neurons / dt
    snn = first + (E_SYNOP * synops + E_UPDATE * updates) * presentation_time
    chip_snn = first + (E_SYNOP * chip + E_UPDATE * updates) * presentation_time
    devs = DEVICES if devices is None else devices
    joules = {}
    for d in devs.values():
        if d.spiking:
            spiking_j = (d.joules_per_synop * synops + d.joules_per_update * updates) \
                * presentation_time
            chip_j = (d.joules_per_synop * chip + d.joules_per_update * updates) \
                * presentation_time
            joules[d.name] = {"joules_per_image": spiking_j, "chip_joules_per_image": chip_j,
                              "spiking": True, "source": d.source,
                              "note": "spiking part only; the analog first layer "
                                      f"({first:.4g} flops) runs on a conventional device"}
        else:
            joules[d.name] = {"joules_per_image": d.joules_per_synop * ann_flops,
                              "spiking": False, "source": d.source,
                              "note": "the ANN, at this many joules per flop"}
    return EnergyReport(
        presentation_time=presentation_time, dt=dt, layers=rows, ann_flops=ann_flops,
        first_layer_flops=first, synops_per_s=synops, updates_per_s=updates, snn_energy=snn,
        efficiency=ann_flops / snn, chip_synops_per_s=chip, chip_snn_energy=chip_snn,
        chip_efficiency=ann_flops / chip_snn, devices=joules,
        assumptions={"E_synop (flops per synaptic event)": E_SYNOP,
                     "E_update (flops per neuron update)": E_UPDATE,
                     "ANN flops": "2 per synapse + 1 per neuron",
                     "first layer": "analog input, counted as 2 flops per synapse",
                     "synop convention": "paper: a pooled unit's rate x the next layer's "
                     "synapses (synops_per_s, the energy and efficiency); chip: every spike "
                     "delivered through each pooled unit containing it (chip_synops_per_s)",
                     "source": "Hunsberger & Eliasmith 2016 (arXiv 1611.05141), Eq. 4-5"},
    )


def format_report(r: EnergyReport) -> str:
    """A plain-text table of an :class:`EnergyReport`, assumptions included."""
    lines = [f"{'layer':<10} {'neurons':>9} {'synapses':>13} {'in rate (Hz)':>12} "
             f"{'synops/s':>15} {'chip events/s':>15}"]
    for row in r.layers:
        rin = row["input_rate_hz"]
        rate = ("analog" if rin is None else f"{rin:.2f}" if not isinstance(rin, list)
                else "+".join("analog" if x is None else f"{x:.1f}" for x in rin))
        lines.append(f"{row['name']:<10} {row['neurons']:>9,} {row['synapses']:>13,} "
                     f"{rate:>12} {row['synops_per_s']:>15,.0f} "
                     f"{row.get('chip_synops_per_s', 0.0):>15,.0f}")
    lines += [
        f"presentation time {r.presentation_time * 1e3:g} ms, dt {r.dt * 1e3:g} ms",
        f"ANN: {r.ann_flops:,.0f} flops/image",
        f"SNN: {r.synops_per_s:,.0f} synops/s, {r.updates_per_s:,.0f} updates/s, "
        f"first layer {r.first_layer_flops:,.0f} flops -> {r.snn_energy:,.0f} flop-equivalents/image",
        f"efficiency (ANN / SNN): {r.efficiency:.2f}x",
        f"chip convention (each spike through every pooled unit containing it): "
        f"{r.chip_synops_per_s:,.0f} events/s -> {r.chip_snn_energy:,.0f} flop-equivalents/"
        f"image, efficiency {r.chip_efficiency:.2f}x",
        "joules per image:",
    ]
    for name, d in r.devices.items():
        lines.append(f"  {name:<11} {d['joules_per_image']:.3e} J  "
                     f"({'SNN' if d['spiking'] else 'ANN'}; {d['source']})")
    lines.append("assumptions: " + "; ".join(f"{k} = {v}" for k, v in r.assumptions.items()))
    return "\n".join(lines)


def spiking_layer_table(snn: SpikingNetwork) -> list[LayerCount]:
    """Neurons and synapses of every stage of a converted network, counted from its graph of
    populations (any net :func:`~softlif.convert.convert` accepts; for the paper's nets this
    equals :func:`~softlif.networks.layer_table`, tested). Per source: synapses in the paper's
    convention (a layer's multiply-adds, reading pooled units) and events per unit rate in the
    chip convention (each spike through every pooled unit that contains it)."""
    from .graph import trace

    rows: list[LayerCount] = []
    for k, st in enumerate(snn.stages):
        shapes = st.in_shapes or (st.in_shape,)
        paper, chip = _stage_synapses(trace(st.linear), shapes)
        kind = "readout" if st.neuron is None else "population"
        rows.append(LayerCount(st.layer_names[-1] if st.layer_names else f"stage{k + 1}", kind,
                               st.out_shape, st.n_neurons, int(round(sum(paper))),
                               st.sources, tuple(int(round(p)) for p in paper), tuple(chip)))
    return rows


def _macs(gm: fx.GraphModule, n: fx.Node, inp: tuple[int, ...], out: tuple[int, ...]
          ) -> tuple[float, bool]:
    """(multiply-adds per sample, whether the op has weights) of a linear op, else (0, False)
    for ops that only move, add or rescale values."""
    n_out = math.prod(out)
    if n.op == "call_module":
        m = gm.get_submodule(str(n.target))
        if isinstance(m, nn.Conv2d):
            return float(n_out * (m.in_channels // m.groups) * math.prod(m.kernel_size)), True
        if isinstance(m, nn.Linear):
            return float(n_out * m.in_features), True
        if isinstance(m, LocallyConnected2d):
            return float(m.weight.numel()), True
        if isinstance(m, nn.AvgPool2d):
            k = m.kernel_size
            return float(n_out * (k * k if isinstance(k, int) else math.prod(k))), False
        if isinstance(m, nn.AdaptiveAvgPool2d):
            return float(math.prod(inp)), False
    if n.op == "call_function" and n.target is F.avg_pool2d:
        kf: Any = n.args[1] if len(n.args) > 1 else n.kwargs["kernel_size"]
        return float(n_out * (kf * kf if isinstance(kf, int) else math.prod(kf))), False
    if n.op == "call_function" and n.target is F.adaptive_avg_pool2d:
        return float(math.prod(inp)), False
    return 0.0, False


@torch.no_grad()
def _stage_synapses(gm: fx.GraphModule, shapes: tuple[tuple[int, ...], ...]
                    ) -> tuple[list[float], list[float]]:
    """Per source of one stage: (paper synapses, chip events per unit source rate).

    Propagated through the stage's graph per source j: ``rate[n]``, the mean rate of node n's
    units per unit rate of j (pooling and reshaping keep it, additions add it, concatenation
    averages it by size), ``paths[n]``, spike paths from j's units to n's units (a pooling
    window multiplies them by its fan-out), and their parts that have met no weight yet (an
    identity connection is one synapse per unit it reaches)."""
    ShapeProp(gm).propagate(*[torch.zeros((1, *s)) for s in shapes])
    n_src = len(shapes)
    zero = [0.0] * n_src
    rate: dict[fx.Node, list[float]] = {}
    raw_rate: dict[fx.Node, list[float]] = {}
    paths: dict[fx.Node, list[float]] = {}
    raw_paths: dict[fx.Node, list[float]] = {}
    paper, chip = list(zero), list(zero)
    placeholders = 0

    def numel(n: object) -> int:
        meta = n.meta.get("tensor_meta") if isinstance(n, fx.Node) else None
        return math.prod(meta.shape[1:]) if meta is not None and hasattr(meta, "shape") else 0

    for n in gm.graph.nodes:
        if n.op == "placeholder":
            one = [0.0] * n_src
            one[placeholders] = 1.0
            rate[n], raw_rate[n] = one, list(one)
            paths[n] = [float(math.prod(shapes[placeholders])) * x for x in one]
            raw_paths[n] = list(paths[n])
            placeholders += 1
            continue
        if n.op == "output":
            out = n.args[0]
            size = numel(out)
            for j in range(n_src):  # identity connections: one synapse per unit reached
                paper[j] += size * raw_rate.get(out, zero)[j]
                chip[j] += raw_paths.get(out, zero)[j]
            continue
        ins = [a for a in n.all_input_nodes if a in rate]
        if not ins:
            continue
        if n.op == "call_function" and n.target in (torch.cat, torch.concat):
            total = sum(numel(a) for a in ins) or 1
            rate[n] = [sum(numel(a) * rate[a][j] for a in ins) / total for j in range(n_src)]
            raw_rate[n] = [sum(numel(a) * raw_rate[a][j] for a in ins) / total
                           for j in range(n_src)]
            paths[n] = [sum(paths[a][j] for a in ins) for j in range(n_src)]
            raw_paths[n] = [sum(raw_paths[a][j] for a in ins) for j in range(n_src)]
            continue
        if len(ins) > 1 or n.target in (operator.add, operator.sub, torch.add, torch.sub):
            rate[n] = [sum(rate[a][j] for a in ins) for j in range(n_src)]
            raw_rate[n] = [sum(raw_rate[a][j] for a in ins) for j in range(n_src)]
            paths[n] = [sum(paths[a][j] for a in ins) for j in range(n_src)]
            raw_paths[n] = [sum(raw_paths[a][j] for a in ins) for j in range(n_src)]
            continue
        a = ins[0]
        n_in = numel(a)
        meta = n.meta.get("tensor_meta")
        out_shape = tuple(meta.shape[1:]) if meta is not None and hasattr(meta, "shape") else ()
        macs, weighted = _macs(gm, n, tuple(a.meta["tensor_meta"].shape[1:]), out_shape)
        if weighted:
            fan = macs / max(n_in, 1)
            for j in range(n_src):
                paper[j] += macs * rate[a][j]
                chip[j] += paths[a][j] * fan
            rate[n], paths[n] = list(rate[a]), [p * fan for p in paths[a]]
            raw_rate[n], raw_paths[n] = list(zero), list(zero)
        elif macs:  # pooling: the mean rate is kept, each spike reaches k x k windows
            fan = macs / max(n_in, 1)
            rate[n], raw_rate[n] = list(rate[a]), list(raw_rate[a])
            paths[n] = [p * fan for p in paths[a]]
            raw_paths[n] = [p * fan for p in raw_paths[a]]
        else:  # reshape, flatten, dropout, scaling: nothing changes
            rate[n], raw_rate[n] = rate[a], raw_rate[a]
            paths[n], raw_paths[n] = paths[a], raw_paths[a]
    return paper, chip


def energy(snn: SpikingNetwork, result: SimResult | None = None, *,
           rates_hz: list[float] | None = None, presentation_time: float | None = None,
           dt: float | None = None, devices: dict[str, Device] | None = None) -> EnergyReport:
    """Energy per image of a converted network (any net :func:`~softlif.convert.convert`
    accepts), from a simulation ``result`` (its per-layer mean rates, presentation time and
    step) or from given ``rates_hz`` (one mean rate in Hz per neuron layer) with
    ``presentation_time`` and ``dt`` in seconds (defaults 0.2 s and 1 ms)."""
    if (result is None) == (rates_hz is None):
        raise ValueError("give either a simulation result or rates_hz (one rate per neuron "
                         "layer, Hz)")
    if result is not None:
        rates_hz = result.firing_rates()
        presentation_time = result.presentation_time if presentation_time is None \
            else presentation_time
        dt = result.dt if dt is None else dt
    return energy_report(spiking_layer_table(snn), list(rates_hz),  # type: ignore[arg-type]
                         0.2 if presentation_time is None else presentation_time,
                         0.001 if dt is None else dt, devices)


def pareto_front(points: Sequence[dict[str, Any]]) -> list[float]:
    """The ``rate_penalty`` of each point no other point beats in both synaptic events
    (``msynops_per_s``, millions per second per image) and ``snn_error``, by increasing events."""
    front, best = [], math.inf
    for p in sorted(points, key=lambda p: (p["msynops_per_s"], p["snn_error"])):
        if p["snn_error"] < best:
            front.append(p["rate_penalty"])
            best = p["snn_error"]
    return front
