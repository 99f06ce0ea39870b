"""`softlif demo`: the whole pipeline on the embedded MNIST subset."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..io import write_json_atomic
from .common import (
    EXIT_OK,
    add_device_arg,
    add_train_precision_arg,
    cli_options,
    emit,
    load_data,
    positive_int,
)
from .simulate import format_sim_summary, kernels_line


def cmd_demo(args: argparse.Namespace) -> int:
    """Train the paper's MNIST net on the embedded subset, convert, simulate, report."""
    from ..activations import use_fused_kernels
    from ..evaluate import SimSettings
    from ..networks import get_spec
    from ..report import run_experiment, save_results
    from ..train import TrainConfig

    out = Path(args.out)
    train_split, test_split, pre = load_data("embedded-mnist", None)
    cfg = TrainConfig(epochs=args.epochs, seed=args.seed,
                      precision=args.precision).resolved(args.device)
    sim = SimSettings(presentation_time=0.2, c0=0.12, c1=0.2, batch_size=50,
                      fused=not args.no_fuse, device=args.device)
    if not args.no_fuse:
        use_fused_kernels(True)
    write_json_atomic(out / "config.json", {**cli_options(args), "train_config": cfg.__dict__,
                                            "sim_settings": sim.__dict__})
    log = (lambda s: None) if args.json else (lambda s: print(s, file=sys.stderr))
    log(kernels_line(sim))
    r = run_experiment(get_spec("mnist"), "embedded MNIST subset", train_split, test_split, pre,
                       cfg, sim, out, n_test=args.images, progress=not args.no_progress, log=log,
                       eval_images=args.eval_images)
    save_results(r, out, "softlif demo: the paper's MNIST net on the embedded MNIST subset",
                 ["The embedded subset is the first 10,000 training and 2,000 test images of "
                  "MNIST; errors are not comparable to the paper's full-MNIST figures.",
                  f"Wall time: {r['total_seconds']:.0f} s (training {r['train_seconds']:.0f} "
                  f"s, including one-off kernel compilation)."])
    summary = {k: r[k] for k in ("ann_error", "ann_error_hard", "snn_error", "window_s",
                                 "snn_rates_hz", "predicted_rates_hz", "mean_rate_hz",
                                 "images", "images_per_second", "total_seconds")}
    summary["synops_per_s"] = r["energy"]["synops_per_s"]
    summary["efficiency"] = r["energy"]["efficiency"]
    summary["out"] = str(out)

    def text() -> str:
        return (format_sim_summary(r) + f"\nwrote {out}/results.json, report.md, "
                f"{', '.join(r['figures'])} in {r['total_seconds']:.0f} s")

    emit(args, summary, text)
    return EXIT_OK


def register(sub: Any, datasets: list[str]) -> None:
    """Add `demo` to the subparsers ``sub``."""
    m = sub.add_parser("demo", help="the whole pipeline on the embedded MNIST subset (offline)")
    m.add_argument("--epochs", type=positive_int("--epochs"), default=6)
    m.add_argument("--images", type=positive_int("--images"), default=1000,
                   help="test images to simulate (of 2,000; default 1,000)")
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--eval-images", type=positive_int("--eval-images"), default=500,
                   metavar="N",
                   help="test error after each epoch but the last on N test images of a fixed "
                        "shuffled order (the last epoch: all 2,000); does not change the "
                        "training (default 500: each evaluation of all 2,000 costs ~5 s on a "
                        "2-core CPU)")
    m.add_argument("--out", default="softlif-demo", help="output folder")
    m.add_argument("--no-fuse", action="store_true", help="do not torch.compile kernels")
    add_train_precision_arg(m)
    add_device_arg(m)
    m.add_argument("--no-progress", action="store_true")
    m.add_argument("--json", action="store_true")
    m.set_defaults(func=cmd_demo)
