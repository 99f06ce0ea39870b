"""The ``softlif`` command line: ``softlif demo``, ``train``, ``simulate``, ``sweep``, ``energy``,
``info``, ``figures``, ``calibrate``, ``reproduce``, ``download``.

Every command prints a short human-readable table, or JSON with ``--json``. Errors (see
:mod:`softlif.errors`): bad arguments or configuration exit with status 2 and one line naming
the argument; bad data, files or checkpoints with status 1 and one line naming the file; an
interrupted run with 130. Any other exception is a bug and prints its traceback; ``softlif
--debug COMMAND`` shows the traceback of the one-line errors too.
Outputs are written atomically (temporary file, then rename), each run with its resolved
configuration (``config.json``) beside them.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .errors import SoftlifError
from .io import json_default, write_json_atomic, write_text_atomic

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


class CliError(SoftlifError):
    """An error to report as one line (exit status 1: data and files)."""


class UsageError(CliError):
    """Arguments that do not fit together (exit status 2)."""

    exit_code = EXIT_USAGE


def cli_options(args: argparse.Namespace) -> dict[str, Any]:
    """The resolved options of a command, for the config.json written beside its outputs."""
    return {k: v for k, v in vars(args).items() if not callable(v)}


def emit(args: argparse.Namespace, payload: dict[str, Any], text: Callable[[], str]) -> None:
    """Print ``payload`` as JSON with --json, else the human-readable ``text()``."""
    if getattr(args, "json", False):
        print(json.dumps(payload, indent=2, default=json_default))
    else:
        print(text())


# ---------------------------------------------------------------------------------------------
# argument types with clear messages


def number(name: str, kind: type = float, minimum: float = 0.0, strict: bool = True
           ) -> Callable[[str], Any]:
    """argparse type: a finite ``kind`` (int or float) > minimum (strict) or >= minimum."""
    what = "a whole number" if kind is int else "a number"

    def parse(s: str) -> Any:
        try:
            v = kind(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be {what}, got {s!r}") from None
        ok = (v > minimum if strict else v >= minimum) and v < float("inf")
        if not ok:
            raise argparse.ArgumentTypeError(
                f"{name} must be {what} {'>' if strict else '>='} {minimum:g}, got {s!r}")
        return v

    return parse


def positive_float(name: str) -> Callable[[str], float]:
    return number(name, float, 0.0, strict=True)


def nonneg_float(name: str) -> Callable[[str], float]:
    return number(name, float, 0.0, strict=False)


def positive_int(name: str) -> Callable[[str], int]:
    return number(name, int, 1, strict=False)


def torch_device(value: str) -> str:
    """``--device``: a torch device that exists here (cpu, cuda, cuda:N, mps)."""
    import torch

    try:
        d = torch.device(value)
    except (RuntimeError, ValueError):
        raise argparse.ArgumentTypeError(
            f"--device must be a torch device such as cpu, cuda or cuda:1; got {value!r}") from None
    if d.type == "cuda":
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n == 0:
            raise argparse.ArgumentTypeError(
                f"--device {value}: no CUDA device is available here (this PyTorch build or "
                "machine has none); use --device cpu")
        if d.index is not None and d.index >= n:
            raise argparse.ArgumentTypeError(
                f"--device {value}: only {n} CUDA device(s) here (cuda:0 to cuda:{n - 1})")
    elif d.type == "mps" and not torch.backends.mps.is_available():
        raise argparse.ArgumentTypeError(f"--device {value}: MPS is not available here")
    elif d.type not in ("cpu", "cuda", "mps"):
        raise argparse.ArgumentTypeError(f"--device {value}: use cpu, cuda[:N] or mps")
    return str(d)


def _add_order_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--order", choices=["dataset", "shuffled"], default="dataset",
                   help="test images in the data set's order (default) or a fixed shuffled "
                   "order (for test sets sorted by class)")


def _add_device_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", type=torch_device, default="cpu",
                   help="torch device that trains/simulates: cpu (default), cuda, cuda:N")


def float_list(name: str) -> Callable[[str], list[float]]:
    def parse(s: str) -> list[float]:
        try:
            vals = [float(v) for v in s.split(",") if v.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{name} must be comma-separated numbers, got {s!r}") from None
        if not vals or any(not (v >= 0 and v < float("inf")) for v in vals):
            raise argparse.ArgumentTypeError(f"{name} must be numbers >= 0, got {s!r}")
        return vals

    return parse


# ---------------------------------------------------------------------------------------------
# data


def load_data(dataset: str, data_dir: str | None, limit_train: int | None = None,
              limit_test: int | None = None):
    """(train, test, preprocess) for a data set name; ``embedded-mnist`` needs no folder."""
    from .data import ArraySplit, load_embedded_mnist, load_split, paper_preprocess

    if dataset == "embedded-mnist":
        train_split, test_split = load_embedded_mnist()
        dataset = "mnist"
    else:
        loaded = (load_split(dataset, data_dir, "train"), load_split(dataset, data_dir, "test"))
        if not all(isinstance(s, ArraySplit) for s in loaded):
            raise CliError(f"{dataset}: training from lazily loaded image folders is not "
                           "supported by `softlif train` yet; convert the data to .npz first")
        train_split, test_split = loaded  # type: ignore[assignment]
    if limit_train:
        train_split = train_split.subset(list(range(min(limit_train, len(train_split)))))
    if limit_test:
        test_split = test_split.subset(list(range(min(limit_test, len(test_split)))))
    pre = paper_preprocess(dataset, train_split)
    return train_split, test_split, pre


NET_FOR_DATASET = {"mnist": "mnist", "embedded-mnist": "mnist", "fashion-mnist": "mnist",
                   "svhn": "svhn", "cifar10": "cifar10", "cifar100": "cifar100",
                   "imagenet": "imagenet"}


# ---------------------------------------------------------------------------------------------
# commands


def cmd_train(args: argparse.Namespace) -> int:
    from .activations import use_fused_kernels
    from .networks import get_spec
    from .train import TrainConfig, train

    net = args.net or NET_FOR_DATASET.get(args.dataset)
    if net is None:
        raise UsageError(f"--net is required for data set {args.dataset!r}")
    spec = get_spec(net)
    cfg = TrainConfig(
        epochs=args.epochs, batch_size=args.batch_size, recipe=args.recipe, lr=args.lr,
        noise_std=args.noise, noise_model=args.noise_model, noise_tau=args.noise_tau,
        smoothing=args.smoothing,
        anneal_to=None if args.no_anneal else args.anneal_to,
        anneal_fraction=args.anneal_fraction, seed=args.seed,
        weight_decay=tuple(args.weight_decay), init_from=args.init_from, init=args.init,
        **({"precision": args.precision} if args.precision else {}),
    )
    out = Path(args.out)
    train_split, test_split, pre = load_data(args.dataset, args.data_dir, args.limit_train,
                                             args.limit_test)
    if tuple(train_split.images.shape[1:2]) != spec.input_shape[:1]:
        raise CliError(f"net {net} expects {spec.input_shape[0]} input channels, data has "
                       f"{train_split.images.shape[1]}")
    if not args.no_fuse:
        use_fused_kernels(True)
    write_json_atomic(out / "config.json", {**cli_options(args), "train_config": cfg.__dict__})
    log = (lambda s: None) if args.json else (lambda s: print(s, file=sys.stderr))
    ck = train(spec, train_split, test_split, pre, cfg, activation=args.activation,
               checkpoint_path=out / "checkpoint.pt", resume=args.resume,
               progress=not args.no_progress, log=log, device=args.device)
    summary = {"checkpoint": str(out / "checkpoint.pt"), "net": net,
               "activation": args.activation, "epochs": ck.epoch, **ck.metrics}
    summary.pop("history", None)
    write_json_atomic(out / "train_metrics.json", ck.metrics)
    short = dict(summary)
    if "init_from" in short:  # the text form names the start, the JSON has all of it
        short["init_from"] = f"{args.init_from} (after {short['init_from']['epochs']} epochs)"
    emit(args, summary, lambda: "\n".join(f"{k:>18}: {v}" for k, v in short.items()))
    return EXIT_OK


def _sim_settings(args: argparse.Namespace) -> Any:
    from .evaluate import SimSettings

    t = args.presentation_time
    c1 = t if args.c1 is None else args.c1
    c0 = args.c0 if args.c0 is not None else max(0.0, c1 - 0.08)  # never clamped
    if not 0 <= c0 < c1 <= t + 1e-12:
        raise UsageError(f"window must satisfy 0 <= --c0 < --c1 <= --presentation-time ({t} s); "
                         f"got c0={c0}, c1={c1}")
    return SimSettings(
        synapse=args.synapse if args.tau_s > 0 else "none", tau_s=args.tau_s,
        presentation_time=t, dt=args.dt, c0=c0, c1=c1, reset=args.reset, init=args.init,
        batch_size=args.batch_size, fused=not args.no_fuse, precision=args.precision,
        device=args.device)


def _test_data(args: argparse.Namespace, ck: Any):
    """uint8 test images and labels: --images of them, in --order."""
    from .data import ArraySplit, load_embedded_mnist, load_split

    if args.dataset == "embedded-mnist":
        test = load_embedded_mnist()[1]
    else:
        loaded = load_split(args.dataset, args.data_dir, "test")
        if not isinstance(loaded, ArraySplit):
            raise CliError(f"{args.dataset}: simulating lazily loaded image folders is not "
                           "supported by the command line yet; convert the test set to .npz")
        test = loaded
    if tuple(test.images.shape[1:]) != ck.preprocess.input_shape:
        raise CliError(f"test images have shape {tuple(test.images.shape[1:])}, the checkpoint "
                       f"expects {ck.preprocess.input_shape}: wrong --dataset?")
    return _select(args, test.images, test.labels)


def _select(args: argparse.Namespace, images: Any, labels: Any) -> tuple[Any, Any]:
    """--images and --order applied to a test split; warns about a class-sorted order."""
    from .evaluate import select_test, sorted_by_class

    x, y = select_test(images, labels, args.images, args.order)
    if args.order == "dataset" and sorted_by_class(y):
        print("warning: the test images are sorted by class, so --images takes few classes "
              "and back-to-back streams see one class; use --order shuffled", file=sys.stderr)
    return x, y


def _load_ck(path: str) -> Any:
    from .checkpoint import load_checkpoint

    return load_checkpoint(path)


def cmd_simulate(args: argparse.Namespace) -> int:
    from .evaluate import ann_errors, run_snn

    s = _sim_settings(args)  # arguments first: they fail before anything is loaded
    if args.figures and not args.out:
        raise UsageError("--figures needs --out")
    ck = _load_ck(args.checkpoint)
    x, y = _test_data(args, ck)
    keep = min(100, len(x)) if args.figures else 0
    res, summary, snn = run_snn(ck, x, y, s, keep_neuron_counts=keep,
                                progress=not args.no_progress)
    summary = {**ann_errors(ck, x, y, s.device), **summary,
               "checkpoint": {"path": args.checkpoint, "epochs": ck.epoch,
                              "config": ck.config, "metrics": ck.metrics}}
    curves = {}
    for c0 in args.curve_c0:
        if c0 < s.presentation_time:
            c1, err = res.error_vs_c1(y, c0)
            curves[str(c0)] = {"c1_s": c1.tolist(), "error": err.tolist()}
    summary["error_vs_c1"] = curves
    if args.figures:
        from .report import write_figures

        summary["figures"] = write_figures(ck, res, summary, snn, x[:keep], y, Path(args.out),
                                           args.curve_c0)
    if args.out:
        out = Path(args.out)
        write_json_atomic(out / "config.json", cli_options(args))
        write_json_atomic(out / "simulate.json", summary)
    emit(args, summary, lambda: format_sim_summary(summary))
    return EXIT_OK


def format_sim_summary(s: dict[str, Any]) -> str:
    e = s["energy"]
    lines = []
    if "relu_error" in s:
        lines.append(f"ReLU ANN error        {s['relu_error'] * 100:6.2f} %")
    lines.append(f"soft-LIF ANN error    {s['ann_error'] * 100:6.2f} %")
    if "ann_error_hard" in s:
        lines.append(f"hard-LIF ANN error    {s['ann_error_hard'] * 100:6.2f} %  "
                     "(rate net with the spiking neuron's curve: predicts the SNN)")
    c0, c1 = s["window_s"]
    st = s["settings"]
    lines.append(f"LIF SNN error         {s['snn_error'] * 100:6.2f} %  ({s['images']} images, "
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


def _window_list(s: str) -> list[tuple[float, float]]:
    out = []
    for item in s.split(","):
        try:
            a, b = (float(v) for v in item.split(":"))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"--windows must be C0:C1 pairs in seconds, comma-separated; got {item!r}"
            ) from None
        if not 0 <= a < b:
            raise argparse.ArgumentTypeError(f"--windows: need 0 <= c0 < c1, got {item!r}")
        out.append((a, b))
    return out


def cmd_sweep(args: argparse.Namespace) -> int:
    from .evaluate import sweep

    ck = _load_ck(args.checkpoint)
    base = _sim_settings(args)
    x, y = _test_data(args, ck)
    rows = sweep(ck, x, y, base, args.taus, args.times, args.windows,
                 progress=not args.no_progress)
    if args.out:
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


def cmd_energy(args: argparse.Namespace) -> int:
    from .energy import DEVICES, energy_report, format_report, parse_device
    from .networks import get_spec, layer_table

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
    from .networks import get_spec, layer_table, spec_to_dict

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
    import dataclasses

    from .calibrate import calibrate_noise, filtered_spread
    from .figures import fig_spread
    from .networks import get_spec
    from .synapses import Synapse

    neuron = get_spec(args.net).neuron
    if args.tau_rc is not None:
        neuron = dataclasses.replace(neuron, tau_rc=args.tau_rc)
    if args.tau_ref is not None:
        neuron = dataclasses.replace(neuron, tau_ref=args.tau_ref)
    syn = Synapse(args.synapse, args.tau_s)
    c = calibrate_noise(neuron, syn, j_max=args.j_max)
    if args.out:
        import torch

        stats = filtered_spread(neuron, syn, torch.linspace(0.0, args.j_max, 121,
                                                            dtype=torch.float64))
        fig_spread(stats, Path(args.out) / "fig2_spread",
                   f"LIF tau_rc {neuron.tau_rc * 1e3:g} ms, {syn.kind} tau_s {syn.tau * 1e3:g} ms")
        write_json_atomic(Path(args.out) / "calibration.json", c)
    emit(args, c, lambda: (f"train with noise sigma = {c['sigma_hz']:.2f} Hz  (median spread of "
                           f"the filtered spike train over J in (1, {args.j_max:g}]; {c['synapse']}"
                           f"; RMS spread {c['rms_spread_hz']:.2f} Hz)"))
    return EXIT_OK


def cmd_download(args: argparse.Namespace) -> int:
    from .data import download

    path = download(args.name, args.dir)
    emit(args, {"name": args.name, "path": str(path)}, lambda: f"{args.name}: {path}")
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    """Train the paper's MNIST net on the embedded subset, convert, simulate, report."""
    from .activations import use_fused_kernels
    from .evaluate import SimSettings
    from .networks import get_spec
    from .report import run_experiment, save_results
    from .train import TrainConfig

    out = Path(args.out)
    train_split, test_split, pre = load_data("embedded-mnist", None)
    cfg = TrainConfig(epochs=args.epochs, seed=args.seed)
    sim = SimSettings(presentation_time=0.2, c0=0.12, c1=0.2, batch_size=50,
                      fused=not args.no_fuse, device=args.device)
    if not args.no_fuse:
        use_fused_kernels(True)
    write_json_atomic(out / "config.json", {**cli_options(args), "train_config": cfg.__dict__,
                                            "sim_settings": sim.__dict__})
    log = (lambda s: None) if args.json else (lambda s: print(s, file=sys.stderr))
    r = run_experiment(get_spec("mnist"), "embedded MNIST subset", train_split, test_split, pre,
                       cfg, sim, out, n_test=args.images, progress=not args.no_progress, log=log)
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


def cmd_reproduce(args: argparse.Namespace) -> int:
    """The paper's experiment for a data set: ReLU ANN, soft-LIF ANN(s), SNN, Table-4 sweep,
    and a Markdown report beside the paper's numbers. Finished models are reused (resume)."""
    import dataclasses

    from .activations import use_fused_kernels
    from .config import load_experiment_config
    from .networks import get_spec
    from .report import evaluate_checkpoint, markdown_report, reproduction_report
    from .train import TrainConfig, train

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
    tr = {k: v for k, v in dataclasses.asdict(conf.train).items() if v is not None}
    tr["weight_decay"], tr["noises"] = list(conf.train.weight_decay), list(conf.train.noises)
    sim = conf.simulate
    sw: dict[str, Any] = {} if conf.sweep.empty else {
        "taus": list(conf.sweep.taus), "times": list(conf.sweep.times),
        "windows": [list(w) for w in conf.sweep.windows]}
    out = Path(args.out)
    spec = get_spec(tr.get("net", NET_FOR_DATASET.get(args.dataset, args.dataset)))
    train_split, test_split, pre = load_data(args.dataset, args.data_dir, args.limit_train,
                                             args.limit_test)
    x, y = _select(args, test_split.images, test_split.labels)
    n = len(x)
    if not args.no_fuse:
        use_fused_kernels(True)
    log = (lambda s: None) if args.json else (lambda s: print(s, file=sys.stderr))
    common = {k: tr[k] for k in ("batch_size", "recipe", "lr", "anneal_fraction", "seed",
                                 "init", "precision") if k in tr}
    wd = tuple(tr.get("weight_decay", [0.0]))
    resolved = {"train": tr, "simulate": sim.__dict__, "sweep": sw, **cli_options(args)}
    write_json_atomic(out / "config.json", resolved)

    relu_cfg = TrainConfig(epochs=int(tr.get("relu_epochs", tr.get("epochs", 15))),
                           weight_decay=wd, anneal_to=None, **common)
    relu = train(spec, train_split, test_split, pre, relu_cfg, activation="relu",
                 checkpoint_path=out / "relu" / "checkpoint.pt", resume=True,
                 progress=not args.no_progress, log=log, device=sim.device)
    from .ann import error_rate, predict

    relu_error = error_rate(predict(relu.build_model().to(sim.device), x, pre), y)
    results: dict[str, Any] = {
        "dataset": args.dataset, "net": spec.name, "train_images": len(train_split),
        "test_images": n, "test_order": args.order, "relu_error": relu_error, "relu_epochs": relu.epoch,
        "relu_train_seconds": relu.metrics.get("train_seconds", 0.0), "settings": sim.__dict__,
        "models": {}}
    noises = tr.get("noises", [10.0])
    finetune_epochs = int(tr.get("finetune_epochs", 0))
    finetune_lr = float(tr.get("finetune_lr", float(tr.get("lr", 2e-3)) / 10))
    main_sigma = 10.0 if 10.0 in noises else noises[0]
    for sigma in noises:
        cfg = TrainConfig(epochs=int(tr.get("epochs", 15)), weight_decay=wd, noise_std=sigma,
                          anneal_to=tr.get("anneal_to", 0.002), **common)
        folder = out / f"softlif-sigma{sigma:g}"
        ck = train(spec, train_split, test_split, pre, cfg, checkpoint_path=folder /
                   "checkpoint.pt", resume=True, progress=not args.no_progress, log=log,
                   device=sim.device)
        if finetune_epochs:  # then a few epochs at the final g, fresh optimizer and schedule
            ft_cfg = TrainConfig(epochs=finetune_epochs, weight_decay=wd, noise_std=sigma,
                                 anneal_to=None, init_from=str(folder / "checkpoint.pt"),
                                 **{**common, "lr": finetune_lr})
            ck = train(spec, train_split, test_split, pre, ft_cfg, checkpoint_path=folder /
                       "finetuned.pt", resume=True, progress=not args.no_progress, log=log,
                       device=sim.device)
        grid = sw if sigma == main_sigma and sw else None
        r = _reusable_results(folder / "results.json", ck.config, sim.__dict__, n, args.order,
                              grid)
        if r is None:
            r = evaluate_checkpoint(ck, args.dataset, len(train_split), x, y, sim, folder,
                                    sweep_grid=grid, progress=not args.no_progress)
            r.update(relu_error=relu_error, noise_std_hz=sigma, test_order=args.order)
            write_json_atomic(folder / "results.json", r)
        else:
            log(f"reusing {folder / 'results.json'} (same checkpoint, settings and images)")
        write_text_atomic(folder / "report.md", markdown_report(
            r, f"{args.dataset}: soft-LIF net trained with noise sigma = {sigma:g} Hz"))
        results["models"][f"sigma{sigma:g}"] = {
            "noise_std_hz": sigma, **{k: r.get(k) for k in (
                "ann_error", "ann_error_hard", "snn_error", "snn_rates_hz", "predicted_rates_hz",
                "mean_rate_hz", "epochs", "finetune_epochs", "train_seconds", "sweep",
                "images_per_second")},
            "efficiency": r["energy"]["efficiency"],
            "test_error_full": ck.metrics.get("test_error"),
            "test_error_hard_full": ck.metrics.get("test_error_hard"),
            "report": f"softlif-sigma{sigma:g}/report.md"}
    results["relu_test_error_full"] = relu.metrics.get("test_error")
    write_json_atomic(out / "results.json", results)
    write_text_atomic(out / "report.md", reproduction_report(results, _reproduce_notes(
        args, len(test_split))))

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


def _reusable_results(path: Path, train_config: dict[str, Any], settings: dict[str, Any],
                      n: int, order: str, grid: dict[str, Any] | None) -> dict[str, Any] | None:
    """A model's earlier results.json, if it evaluated a checkpoint trained with the same
    configuration (so: the same checkpoint, training being repeatable) with the same settings
    on the same test images (and holds the sweep when one is asked for)."""
    try:
        r = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    def key(st: Any) -> Any:  # the torch device does not change what is simulated
        return {k: v for k, v in st.items() if k != "device"} if isinstance(st, dict) else st

    same = (isinstance(r, dict) and r.get("train_config") == json.loads(json.dumps(train_config))
            and r.get("test_images") == n
            and r.get("test_order") == order
            and key(r.get("settings")) == key(json.loads(json.dumps(settings))))
    return r if same and (not grid or r.get("sweep")) else None


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


def _add_sim_args(p: argparse.ArgumentParser, c0_default: float | None = None) -> None:
    p.add_argument("--synapse", choices=["alpha", "lowpass", "none"], default="alpha")
    p.add_argument("--tau-s", type=nonneg_float("--tau-s"), default=0.005,
                   help="synaptic time constant in seconds (default 0.005; 0 = none)")
    p.add_argument("--presentation-time", type=positive_float("--presentation-time"),
                   default=0.2, help="seconds per image (default 0.2)")
    p.add_argument("--dt", type=positive_float("--dt"), default=0.001, help="seconds")
    p.add_argument("--c0", type=nonneg_float("--c0"), default=c0_default,
                   help="classification window start in seconds (default c1 - 0.08)")
    p.add_argument("--c1", type=positive_float("--c1"), default=None,
                   help="window end in seconds (default: the presentation time)")
    p.add_argument("--reset", action="store_true", help="reset the state before every image")
    p.add_argument("--init", choices=["zero", "uniform"], default="zero",
                   help="initial membrane voltages")
    p.add_argument("--batch-size", type=positive_int("--batch-size"), default=50)
    p.add_argument("--precision", choices=["float32", "bfloat16"], default="float32")
    p.add_argument("--no-fuse", action="store_true", help="do not torch.compile the updates")
    p.add_argument("--images", type=positive_int("--images"), help="first N test images")
    _add_order_arg(p)
    _add_device_arg(p)


def build_parser() -> argparse.ArgumentParser:
    from .data import DATASETS
    from .networks import NETS

    p = argparse.ArgumentParser(prog="softlif", description=__doc__.split("\n")[0])
    p.add_argument("--debug", action="store_true",
                   help="show the traceback of every error (for bug reports)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    datasets = ["embedded-mnist", *DATASETS]

    m = sub.add_parser("demo", help="the whole pipeline on the embedded MNIST subset (offline)")
    m.add_argument("--epochs", type=positive_int("--epochs"), default=6)
    m.add_argument("--images", type=positive_int("--images"), default=1000,
                   help="test images to simulate (of 2,000; default 1,000)")
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--out", default="softlif-demo", help="output folder")
    m.add_argument("--no-fuse", action="store_true", help="do not torch.compile kernels")
    _add_device_arg(m)
    m.add_argument("--no-progress", action="store_true")
    m.add_argument("--json", action="store_true")
    m.set_defaults(func=cmd_demo)

    t = sub.add_parser("train", help="train a rate network (soft LIF, ReLU or IF)")
    t.add_argument("--dataset", choices=datasets, default="embedded-mnist")
    t.add_argument("--data-dir", help="folder with the data set's official files")
    t.add_argument("--net", choices=list(NETS), help="network (default: the data set's)")
    t.add_argument("--activation", choices=["softlif", "lif", "relu", "if"], default="softlif")
    t.add_argument("--epochs", type=positive_int("--epochs"), default=15)
    t.add_argument("--batch-size", type=positive_int("--batch-size"), default=128)
    t.add_argument("--recipe", choices=["adam", "paper"], default="adam")
    t.add_argument("--lr", type=positive_float("--lr"), default=2e-3)
    t.add_argument("--weight-decay", type=float_list("--weight-decay"), default=[0.0],
                   help="per weight layer, comma-separated (last value repeats)")
    t.add_argument("--noise", type=nonneg_float("--noise"), default=None,
                   help="training noise sigma in Hz (default: the neuron's, 10 Hz)")
    t.add_argument("--noise-model", choices=["gaussian", "alpha", "lowpass"],  # NOISE_MODELS
                   help="training noise: gaussian (sigma = --noise, the paper's) or the rate's "
                        "spike train through an alpha/lowpass synapse of --noise-tau at a "
                        "random phase (default gaussian)")
    t.add_argument("--noise-tau", type=positive_float("--noise-tau"),
                   help="synapse time constant (s) of the alpha/lowpass noise (default 0.005)")
    t.add_argument("--smoothing", type=positive_float("--smoothing"), default=None,
                   help="soft-LIF smoothing g (default 0.02)")
    t.add_argument("--anneal-to", type=nonneg_float("--anneal-to"), default=0.002,
                   help="anneal g to this over the last epochs (default 0.002)")
    t.add_argument("--anneal-fraction", type=nonneg_float("--anneal-fraction"), default=0.3)
    t.add_argument("--no-anneal", action="store_true", help="keep g constant")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--init", choices=["default", "paper"],
                   help="initial weights: PyTorch's default, or the authors' Gaussian initW per "
                        "layer (default: paper for --recipe paper, else default)")
    t.add_argument("--precision", choices=["float32", "bfloat16"],
                   help="arithmetic of the training steps: bfloat16 autocast for the linear "
                        "layers (default; the rate nonlinearity, weights and evaluation stay "
                        "float32) or float32 throughout")
    t.add_argument("--limit-train", type=positive_int("--limit-train"))
    t.add_argument("--limit-test", type=positive_int("--limit-test"))
    t.add_argument("--out", default="runs/train", help="output folder")
    t.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    t.add_argument("--init-from", metavar="CHECKPOINT",
                   help="start from this checkpoint's weights and neuron (fine-tuning) with a "
                        "fresh optimizer and schedule; g starts where it ended unless --smoothing")
    t.add_argument("--no-fuse", action="store_true", help="do not torch.compile the activations")
    _add_device_arg(t)
    t.add_argument("--no-progress", action="store_true")
    t.add_argument("--json", action="store_true")
    t.set_defaults(func=cmd_train)

    def data_args(q: argparse.ArgumentParser) -> None:
        q.add_argument("--dataset", choices=datasets, default="embedded-mnist")
        q.add_argument("--data-dir", help="folder with the data set's official files")

    s = sub.add_parser("simulate", help="convert a checkpoint and simulate it as a spiking net")
    s.add_argument("checkpoint", help="checkpoint.pt written by `softlif train`")
    data_args(s)
    _add_sim_args(s)
    s.add_argument("--curve-c0", type=float_list("--curve-c0"), default=[0.0, 0.02, 0.05, 0.1],
                   help="window starts (s) for the error-vs-c1 curves")
    s.add_argument("--out", help="write simulate.json and config.json here")
    s.add_argument("--figures", action="store_true", help="also draw the figures into --out")
    s.add_argument("--no-progress", action="store_true")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_simulate)

    w = sub.add_parser("sweep", help="error vs efficiency over tau_s, presentation time, window")
    w.add_argument("checkpoint")
    data_args(w)
    _add_sim_args(w)
    w.add_argument("--taus", type=float_list("--taus"), default=[0.0, 0.002, 0.005],
                   help="synaptic time constants (s)")
    w.add_argument("--times", type=float_list("--times"), default=[0.2],
                   help="presentation times (s), one simulation each per tau")
    w.add_argument("--windows", type=_window_list,
                   default=[(0.12, 0.2), (0.04, 0.1), (0.05, 0.06), (0.02, 0.06), (0.01, 0.08)],
                   help="C0:C1 pairs in seconds")
    w.add_argument("--out")
    w.add_argument("--no-progress", action="store_true")
    w.add_argument("--json", action="store_true")
    w.set_defaults(func=cmd_sweep)

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

    r = sub.add_parser("reproduce", help="the paper's experiment for a data set, with a report")
    r.add_argument("--dataset", choices=["mnist", "svhn", "cifar10", "cifar100"], required=True)
    r.add_argument("--data-dir", help="folder with the data set's official files")
    r.add_argument("--config", help="TOML config (default: the bundled one for the data set)")
    r.add_argument("--epochs", type=positive_int("--epochs"), help="override [train] epochs")
    r.add_argument("--relu-epochs", type=positive_int("--relu-epochs"))
    r.add_argument("--noises", type=float_list("--noises"), help="sigmas (Hz), comma-separated")
    r.add_argument("--images", type=positive_int("--images"), help="first N test images")
    _add_order_arg(r)
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

    d = sub.add_parser("download", help="download a public data set (checksum-verified)")
    d.add_argument("name", choices=["mnist", "fashion-mnist", "cifar10", "cifar100", "svhn"])
    d.add_argument("--dir", help="target folder (default ~/.cache/softlif/NAME or $SOFTLIF_DATA)")
    d.add_argument("--json", action="store_true")
    d.set_defaults(func=cmd_download)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or EXIT_OK)
    except KeyboardInterrupt:
        print(f"softlif {args.command}: interrupted; finished outputs and checkpoints are kept "
              "(train: rerun with --resume)", file=sys.stderr)
        return 130
    except SoftlifError as e:  # foreseen: bad arguments, data, files, checkpoints
        if args.debug:
            raise
        print(f"softlif {args.command}: error: {e}", file=sys.stderr)
        return e.exit_code
    except (ValueError, OSError) as e:
        # OSError: the file system (permissions, a full disk, a missing folder); ValueError:
        # a value checked deep inside a library call. RuntimeErrors and the rest are bugs and
        # keep their traceback.
        if args.debug:
            raise
        print(f"softlif {args.command}: error: {e} (softlif --debug {args.command} ... shows "
              "where)", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
