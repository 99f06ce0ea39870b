"""Energy model: ANN flops vs. spiking-network cost (Hunsberger & Eliasmith 2016, arXiv
1611.05141, Eq. 4-5; SPEC section 5), plus joules per image on device profiles.

Units, spelled out once:

* flops per image: 2 per synapse (multiply + add) + 1 per neuron (the nonlinearity);
* synops/s: synaptic events per second = sum over layers l >= 1 of synapses[l] x mean rate (Hz)
  of the neurons feeding layer l (the first layer's input is analog: computed conventionally);
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
from dataclasses import asdict, dataclass, field

from .networks import LayerCount

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
    synops_per_s: float  # synaptic events per second
    updates_per_s: float  # neuron updates per second
    snn_energy: float  # flop-equivalents per image
    efficiency: float  # ann_flops / snn_energy
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
    first = 2.0 * layers[0].synapses
    rows, synops = [], 0.0
    for i, row in enumerate(layers):
        rate_in = None if i == 0 else rates_hz[i - 1]
        s = 0.0 if rate_in is None else row.synapses * rate_in
        synops += s
        rows.append({"name": row.name, "neurons": row.neurons, "synapses": row.synapses,
                     "flops": row.flops, "input_rate_hz": rate_in, "synops_per_s": s})
    updates = neurons / dt
    snn = first + (E_SYNOP * synops + E_UPDATE * updates) * presentation_time
    devs = DEVICES if devices is None else devices
    joules = {}
    for d in devs.values():
        if d.spiking:
            spiking_j = (d.joules_per_synop * synops + d.joules_per_update * updates) \
                * presentation_time
            joules[d.name] = {"joules_per_image": spiking_j, "spiking": True, "source": d.source,
                              "note": "spiking part only; the analog first layer "
                                      f"({first:.4g} flops) runs on a conventional device"}
        else:
            joules[d.name] = {"joules_per_image": d.joules_per_synop * ann_flops,
                              "spiking": False, "source": d.source,
                              "note": "the ANN, at this many joules per flop"}
    return EnergyReport(
        presentation_time=presentation_time, dt=dt, layers=rows, ann_flops=ann_flops,
        first_layer_flops=first, synops_per_s=synops, updates_per_s=updates, snn_energy=snn,
        efficiency=ann_flops / snn, devices=joules,
        assumptions={"E_synop (flops per synaptic event)": E_SYNOP,
                     "E_update (flops per neuron update)": E_UPDATE,
                     "ANN flops": "2 per synapse + 1 per neuron",
                     "first layer": "analog input, counted as 2 flops per synapse",
                     "source": "Hunsberger & Eliasmith 2016 (arXiv 1611.05141), Eq. 4-5"},
    )


def format_report(r: EnergyReport) -> str:
    """A plain-text table of an :class:`EnergyReport`, assumptions included."""
    lines = [f"{'layer':<10} {'neurons':>9} {'synapses':>13} {'in rate (Hz)':>12} "
             f"{'synops/s':>15}"]
    for row in r.layers:
        rate = "analog" if row["input_rate_hz"] is None else f"{row['input_rate_hz']:.2f}"
        lines.append(f"{row['name']:<10} {row['neurons']:>9,} {row['synapses']:>13,} "
                     f"{rate:>12} {row['synops_per_s']:>15,.0f}")
    lines += [
        f"presentation time {r.presentation_time * 1e3:g} ms, dt {r.dt * 1e3:g} ms",
        f"ANN: {r.ann_flops:,.0f} flops/image",
        f"SNN: {r.synops_per_s:,.0f} synops/s, {r.updates_per_s:,.0f} updates/s, "
        f"first layer {r.first_layer_flops:,.0f} flops -> {r.snn_energy:,.0f} flop-equivalents/image",
        f"efficiency (ANN / SNN): {r.efficiency:.2f}x",
        "joules per image:",
    ]
    for name, d in r.devices.items():
        lines.append(f"  {name:<11} {d['joules_per_image']:.3e} J  "
                     f"({'SNN' if d['spiking'] else 'ANN'}; {d['source']})")
    lines.append("assumptions: " + "; ".join(f"{k} = {v}" for k, v in r.assumptions.items()))
    return "\n".join(lines)
