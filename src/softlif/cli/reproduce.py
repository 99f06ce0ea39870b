"""`softlif reproduce`: the paper's experiment for a data set, with a report."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

from ..io import write_json_atomic
from .common import (
    EXIT_OK,
    NET_FOR_DATASET,
    add_order_arg,
    cli_options,
    emit,
    float_list,
    is_main,
    load_data,
    positive_int,
    select_images,
    torch_device,
)


def cmd_reproduce(args: argparse.Namespace) -> int:
    """The paper's experiment for a data set: ReLU ANN, soft-LIF ANN(s), SNN, Table-4 sweep,
    and a Markdown report beside the paper's numbers. Finished models are reused (resume)."""
    from ..activations import use_fused_kernels
    from ..config import load_experiment_config
    from ..networks import get_spec
    from ..reproduce import reproduce

    # the whole configuration, file and flags, is validated before any work starts
    flags: dict[str, dict[str, Any]] = {"train": {}, "simulate": {}}
    for key, val in (("epochs", args.epochs), ("relu_epochs", args.relu_epochs),
                     ("noises", args.noises)):
        if val is not None:
            flags["train"][key] = val
    if args.device is not None:
        flags["simulate"]["device"] = args.device
    if args.no_fuse:
        flags["simulate"]["fused"] = False
    conf = load_experiment_config(args.config or args.dataset, overrides=flags)
    out = Path(args.out)
    spec = get_spec(conf.train.net or NET_FOR_DATASET.get(args.dataset, args.dataset))
    train_split, test_split, pre = load_data(args.dataset, args.data_dir, args.limit_train,
                                             args.limit_test, args)
    x, y = select_images(args, test_split)
    if not args.no_fuse:
        use_fused_kernels(True)
    log = (lambda s: None) if args.json or not is_main() else (
        lambda s: print(s, file=sys.stderr))
    if is_main():
        write_json_atomic(out / "config.json", {**conf.to_dict(), **cli_options(args)})
    results = reproduce(conf, spec, args.dataset, train_split, test_split, pre, x, y, out,
                        order=args.order, notes=_reproduce_notes(args, len(test_split)),
                        progress=not args.no_progress and is_main(), log=log)
    relu_error = results["relu_error"]

    def text() -> str:
        lines = [f"ReLU ANN error {relu_error * 100:.2f}%"]
        for name, m in results["models"].items():
            lines.append(f"soft-LIF {name}: ANN {m['ann_error'] * 100:.2f}%, hard-rate ANN "
                         f"{(m['ann_error_hard'] or 0) * 100:.2f}%, SNN "
                         f"{m['snn_error'] * 100:.2f}%, efficiency {m['efficiency']:.2f}x "
                         f"-> {out / m['report']}")
        lines.append(f"report: {out / 'report.md'}")
        return "\n".join(lines)

    emit(args, results, text)
    return EXIT_OK


def _reproduce_notes(args: argparse.Namespace, n_test_total: int) -> list[str]:
    argv, skip = [], False
    for a in sys.argv[2:]:  # the command as run, without the --note texts (listed below)
        if not skip and not a.startswith("--note"):
            argv.append(a)
        skip = a == "--note"
    notes = [f"Command: `softlif reproduce {shlex.join(argv)}`" if sys.argv[1:2] == [
        "reproduce"] else f"Dataset {args.dataset} from {args.data_dir}."]
    if args.images is not None and args.images < n_test_total:
        which = "first" if args.order == "dataset" else "first (in a fixed shuffled order)"
        notes.append(f"ANN and SNN errors in the tables are on the {which} {args.images} of "
                     f"{n_test_total} test images (the 'all test images' column uses all).")
    if args.order == "shuffled":
        notes.append("Test images were shown in a fixed pseudo-random order (`--order "
                     "shuffled`, seed 0), back to back.")
    notes += args.note
    return notes


def register(sub: Any, datasets: list[str]) -> None:
    """Add `reproduce` to the subparsers ``sub``."""
    r = sub.add_parser("reproduce", help="the paper's experiment for a data set, with a report")
    r.add_argument("--dataset", choices=["mnist", "svhn", "cifar10", "cifar100"], required=True)
    r.add_argument("--data-dir", help="folder with the data set's official files")
    r.add_argument("--config", help="TOML config (default: the bundled one for the data set)")
    r.add_argument("--epochs", type=positive_int("--epochs"), help="override [train] epochs")
    r.add_argument("--relu-epochs", type=positive_int("--relu-epochs"))
    r.add_argument("--noises", type=float_list("--noises"), help="sigmas (Hz), comma-separated")
    r.add_argument("--images", type=positive_int("--images"), help="first N test images")
    add_order_arg(r)
    r.add_argument("--limit-train", type=positive_int("--limit-train"))
    r.add_argument("--limit-test", type=positive_int("--limit-test"))
    r.add_argument("--out", default="runs/reproduce")
    r.add_argument("--no-fuse", action="store_true", help="do not torch.compile kernels")
    r.add_argument("--note", action="append", default=[],
                   help="a line for the report's notes (about the data, say); repeatable")
    r.add_argument("--device", type=torch_device, default=None,
                   help="torch device (default: [simulate] device of the config, cpu)")
    r.add_argument("--no-progress", action="store_true")
    r.add_argument("--json", action="store_true")
    r.set_defaults(func=cmd_reproduce)
