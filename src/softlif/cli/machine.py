"""`softlif machine`: what this machine computes natively and what softlif picks on it."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from .common import EXIT_OK, add_device_arg, emit


def cmd_machine(args: argparse.Namespace) -> int:
    from ..hardware import calibration, calibration_path, machine, resolve_precision
    from ..simulate import choose_kernels

    info = machine()
    kernels = choose_kernels(args.device)
    cal = calibration() if kernels.event_crossover is not None else None
    payload: dict[str, Any] = {
        "machine": info.to_dict(),
        "device": args.device,
        "training_precision_auto": resolve_precision("auto", args.device),
        "simulation_kernels": dataclasses.asdict(kernels),
        "calibration": dataclasses.asdict(cal) if cal is not None else None,
        "calibration_cache": str(calibration_path()) if cal is not None else None,
    }

    def text() -> str:
        lines = [info.line(),
                 f"on {args.device}: training precision auto -> "
                 f"{payload['training_precision_auto']}; simulation {kernels.describe()}"]
        if cal is not None:
            lines.append(f"calibration ({cal.seconds * 1e3:.0f} ms when measured): dense "
                         f"{cal.dense_ms:.2f} ms, sparse {cal.sparse_ms:.2f} ms; cached in "
                         f"{payload['calibration_cache']}")
        return "\n".join(lines)

    emit(args, payload, text)
    return EXIT_OK


def register(sub: Any, datasets: list[str]) -> None:
    """Add `machine` to the subparsers ``sub``."""
    m = sub.add_parser("machine", help="the CPU/GPU as torch sees it, and the precision and "
                                       "kernels softlif picks on it")
    add_device_arg(m)
    m.add_argument("--json", action="store_true")
    m.set_defaults(func=cmd_machine)
