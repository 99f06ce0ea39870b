"""`softlif energy`, `info` and `calibrate`: counts, energy, noise calibration."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..io import write_json_atomic
from .common import (
    EXIT_OK,
    CliError,
    UsageError,
    emit,
    float_list,
    nonneg_float,
    positive_float,
)


def cmd_energy(args: argparse.Namespace) -> int:
    from ..energy import DEVICES, energy_report, format_report, parse_device
    from ..networks import get_spec, layer_table

    rates = args.rates
    if args.from_results:
        try:
            data = json.loads(Path(args.from_results).read_text())
            rates = data["snn_rates_hz"]
            if not isinstance(rates, list) or not all(
                    isinstance(r, (int, float)) and not isinstance(r, bool) for r in rates):
                raise ValueError(f"snn_rates_hz is {rates!r:.60}, not a list of numbers")
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise CliError(f"--from-results {args.from_results}: need a simulate.json or "
                           f"results.json with snn_rates_hz ({e})") from None
    if rates is None:
        raise UsageError("give per-layer rates with --rates R1,R2,... (Hz) or --from-results")
    devices = dict(DEVICES)
    if args.old_device:
        print("warning: `softlif energy --device` is now --hardware (--device names the torch "
              "device on the commands that compute)", file=sys.stderr)
    for d in args.hardware + args.old_device:
        try:
            dev = parse_device(d)
        except ValueError as e:
            raise UsageError(f"--hardware: {e}") from None
        devices[dev.name] = dev
    try:
        report = energy_report(layer_table(get_spec(args.net)), rates, args.presentation_time,
                               args.dt, devices)
    except ValueError as e:
        raise UsageError(str(e)) from None
    emit(args, report.to_dict(), lambda: format_report(report))
    return EXIT_OK


def cmd_info(args: argparse.Namespace) -> int:
    from ..networks import get_spec, layer_table, spec_to_dict

    spec = get_spec(args.net)
    rows = layer_table(spec)
    payload = {"net": spec_to_dict(spec),
               "layers": [{"name": r.name, "kind": r.kind, "out_shape": list(r.out_shape),
                           "neurons": r.neurons, "synapses": r.synapses, "flops": r.flops}
                          for r in rows],
               "neurons": sum(r.neurons for r in rows),
               "synapses": sum(r.synapses for r in rows),
               "flops": sum(r.flops for r in rows)}

    def text() -> str:
        lines = [f"{args.net}: input {spec.input_shape}, neuron {spec.neuron}",
                 f"{'layer':<8} {'out shape':<16} {'neurons':>9} {'synapses':>13} {'flops':>13}"]
        lines += [f"{r.name:<8} {str(r.out_shape):<16} {r.neurons:>9,} {r.synapses:>13,} "
                  f"{r.flops:>13,}" for r in rows]
        lines.append(f"{'total':<8} {'':<16} {payload['neurons']:>9,} {payload['synapses']:>13,}"
                     f" {payload['flops']:>13,}")
        return "\n".join(lines)

    emit(args, payload, text)
    return EXIT_OK


def cmd_calibrate(args: argparse.Namespace) -> int:
    from ..calibrate import calibrate_noise, filtered_spread
    from ..figures import available, fig_spread, skip_note
    from ..networks import get_spec
    from ..neurons import with_params
    from ..synapses import Synapse

    neuron = get_spec(args.net).neuron  # the paper's nets: LIF
    if args.tau_rc is not None:
        neuron = with_params(neuron, tau_rc=args.tau_rc)
    if args.tau_ref is not None:
        neuron = with_params(neuron, tau_ref=args.tau_ref)
    syn = Synapse(args.synapse, args.tau_s)
    c = calibrate_noise(neuron, syn, j_max=args.j_max)
    if args.out:
        import torch

        stats = filtered_spread(neuron, syn, torch.linspace(0.0, args.j_max, 121,
                                                            dtype=torch.float64))
        if available():
            fig_spread(stats, Path(args.out) / "fig2_spread",
                       f"LIF tau_rc {getattr(neuron, 'tau_rc', 0) * 1e3:g} ms, {syn.kind} "
                       f"tau_s {syn.tau * 1e3:g} ms")
        else:
            print(skip_note(), file=sys.stderr)
        write_json_atomic(Path(args.out) / "calibration.json", c)
    emit(args, c, lambda: (f"train with noise sigma = {c['sigma_hz']:.2f} Hz  (median spread of "
                           f"the filtered spike train over J in (1, {args.j_max:g}]; {c['synapse']}"
                           f"; RMS spread {c['rms_spread_hz']:.2f} Hz)"))
    return EXIT_OK


def register(sub: Any, datasets: list[str]) -> None:
    """Add `energy`, `info`, `calibrate` to the subparsers ``sub``."""
    from ..networks import NETS

    e = sub.add_parser("energy", help="ANN flops vs SNN energy from per-layer rates")
    e.add_argument("--net", choices=list(NETS), required=True)
    e.add_argument("--rates", type=float_list("--rates"), help="Hz per neuron layer, e.g. "
                   "173.3,99.0,9.7,7.2")
    e.add_argument("--from-results", help="take the rates from a simulate.json/results.json")
    e.add_argument("--presentation-time", type=positive_float("--presentation-time"),
                   default=0.2, help="seconds")
    e.add_argument("--dt", type=positive_float("--dt"), default=0.001, help="seconds")
    e.add_argument("--hardware", action="append", default=[], metavar="SPEC",
                   help="extra hardware NAME:J_PER_SYNOP:J_PER_UPDATE[:spiking|conventional] "
                        "(joules per synaptic event and per neuron update; repeatable)")
    e.add_argument("--device", dest="old_device", action="append", default=[],
                   help=argparse.SUPPRESS)  # the old name of --hardware
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=cmd_energy)
    i = sub.add_parser("info", help="neurons, synapses and flops per layer of a paper net")
    i.add_argument("--net", choices=list(NETS), required=True)
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=cmd_info)
    c = sub.add_parser("calibrate", help="training-noise sigma from filtered spike trains")
    c.add_argument("--net", choices=list(NETS), default="cifar10",
                   help="take the neuron parameters of this net")
    c.add_argument("--tau-rc", type=positive_float("--tau-rc"), help="seconds")
    c.add_argument("--tau-ref", type=nonneg_float("--tau-ref"), help="seconds")
    c.add_argument("--synapse", choices=["alpha", "lowpass"], default="alpha")
    c.add_argument("--tau-s", type=positive_float("--tau-s"), default=0.005, help="seconds")
    c.add_argument("--j-max", type=positive_float("--j-max"), default=20.0)
    c.add_argument("--out", help="also write calibration.json and the Fig. 2 plot here")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_calibrate)
