"""`softlif train`: train a rate network."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..io import write_json_atomic
from ..recipes import RECIPE_LR, RECIPES
from .common import (
    EXIT_OK,
    NET_FOR_DATASET,
    UsageError,
    add_data_args,
    add_device_arg,
    add_train_precision_arg,
    cli_options,
    emit,
    float_list,
    is_main,
    load_data,
    nonneg_float,
    positive_float,
    positive_int,
)


def checkpoint_file(out: Path, fmt: str | None) -> Path:
    """The checkpoint a training in ``out`` writes: ``checkpoint.<fmt>``; with no format, the
    safetensors one if ``out`` holds it, else ``checkpoint.pt``."""
    if fmt is None:
        st = out / "checkpoint.safetensors"
        return st if st.exists() else out / "checkpoint.pt"
    return out / f"checkpoint.{fmt}"


def cmd_train(args: argparse.Namespace) -> int:
    from ..activations import use_fused_kernels
    from ..networks import get_spec
    from ..train import TrainConfig, check_rate_penalty, train

    net = args.net or NET_FOR_DATASET.get(args.dataset)
    if net is None:
        raise UsageError(f"--net is required for data set {args.dataset!r}")
    spec = _with_neuron(get_spec(net), args)
    cfg = TrainConfig(
        epochs=args.epochs, batch_size=args.batch_size, recipe=args.recipe, lr=args.lr,
        noise_std=args.noise, noise_model=args.noise_model, noise_tau=args.noise_tau,
        smoothing=args.smoothing,
        anneal_to=None if args.no_anneal else args.anneal_to,
        anneal_fraction=args.anneal_fraction, seed=args.seed,
        weight_decay=tuple(args.weight_decay), init_from=args.init_from, init=args.init,
        rate_penalty=args.rate_penalty,
        precision=args.precision, label_smoothing=args.label_smoothing,
        ema_decay=args.ema_decay, mean_crop=args.mean_crop,
    ).resolved(args.device)  # config.json records the precision used and the one asked
    try:  # before any data is read
        check_rate_penalty(args.rate_penalty, args.activation)
    except ValueError as e:
        raise UsageError(f"--rate-penalty: {e}") from None
    out = Path(args.out)
    train_split, test_split, pre = load_data(args.dataset, args.data_dir, args.limit_train,
                                             args.limit_test, args)
    if pre.output_shape != spec.input_shape:
        hint = (" (pass --crop to crop larger images)" if pre.output_shape[1] > spec.input_shape[1]
                else "")
        raise UsageError(f"net {net} takes inputs of shape {spec.input_shape} (C, H, W); the "
                         f"data give {pre.output_shape}{hint}")
    if train_split.num_classes > spec.classes:
        raise UsageError(f"the data have {train_split.num_classes} classes, net {net} has "
                         f"{spec.classes} outputs; pick a net with at least as many (cifar100)")
    if not args.no_fuse:
        use_fused_kernels(True)
    if is_main():
        write_json_atomic(out / "config.json",
                          {**cli_options(args), "train_config": cfg.__dict__})
    log = (lambda s: None) if args.json or not is_main() else (
        lambda s: print(s, file=sys.stderr))
    path = checkpoint_file(out, args.format)
    ck = train(spec, train_split, test_split, pre, cfg, activation=args.activation,
               checkpoint_path=path, resume=args.resume,
               progress=not args.no_progress and is_main(), log=log, device=args.device,
               workers=args.workers, eval_images=args.eval_images)
    summary = {"checkpoint": str(path), "net": net,
               "activation": args.activation, "epochs": ck.epoch, **ck.metrics}
    summary.pop("history", None)
    if is_main():
        write_json_atomic(out / "train_metrics.json", ck.metrics)
    short = dict(summary)
    short.pop("machine", None)  # in the JSON; the log's first line named it
    if "init_from" in short:  # the text form names the start, the JSON has all of it
        short["init_from"] = f"{args.init_from} (after {short['init_from']['epochs']} epochs)"
    emit(args, summary, lambda: "\n".join(f"{k:>18}: {v}" for k, v in short.items()))
    return EXIT_OK


def _with_neuron(spec: Any, args: argparse.Namespace) -> Any:
    """The net with the neuron type of ``--neuron`` / ``--neuron-param`` (checked before any
    data is read): the net's own neuron if it is of that type, else the type's defaults."""
    import dataclasses

    from ..neurons import NEURON_TYPES

    if args.neuron is None:
        if args.neuron_param:
            raise UsageError("--neuron-param needs --neuron (the neuron type to set it on)")
        return spec
    if args.activation not in ("softlif", "lif"):
        raise UsageError(f"--neuron trains with the type's soft (--activation softlif) or hard "
                         f"(--activation lif) rate curve, not with --activation {args.activation}")
    cls = NEURON_TYPES.get(args.neuron)
    if cls is None:
        raise UsageError(f"unknown --neuron {args.neuron!r}; registered types: "
                         f"{', '.join(NEURON_TYPES)}")
    base = spec.neuron if type(spec.neuron) is cls else cls()
    fields = {f.name: getattr(base, f.name) for f in dataclasses.fields(cls)}
    changes: dict[str, Any] = {}
    for item in args.neuron_param:
        key, sep, value = item.partition("=")
        if not sep or key not in fields:
            raise UsageError(f"--neuron-param {item!r}: expected KEY=VALUE with KEY one of "
                             f"{', '.join(fields)} ({args.neuron})")
        old = fields[key]
        try:
            changes[key] = (int(value) if isinstance(old, int) and not isinstance(old, bool)
                            else float(value) if isinstance(old, float) else value)
        except ValueError:
            raise UsageError(f"--neuron-param {key}={value}: not a number "
                             f"({type(old).__name__})") from None
    try:
        neuron = dataclasses.replace(base, **changes)  # type: ignore[type-var]
    except (ValueError, TypeError) as e:
        raise UsageError(f"--neuron {args.neuron}: {e}") from None
    return dataclasses.replace(spec, neuron=neuron)


def register(sub: Any, datasets: list[str]) -> None:
    """Add `train` to the subparsers ``sub``."""
    from ..networks import NETS

    t = sub.add_parser("train", help="train a rate network (soft LIF, ReLU or IF)")
    add_data_args(t, datasets)
    t.add_argument("--net", choices=list(NETS), help="network (default: the data set's)")
    t.add_argument("--activation", choices=["softlif", "lif", "relu", "if"], default="softlif")
    t.add_argument("--neuron", metavar="TYPE",
                   help="neuron type by its registered name (LIF, IF, AdaptiveLIF, "
                        "QuantizedLIF): the net's own neuron if of that "
                        "type, else the type's defaults (default: the net's LIF)")
    t.add_argument("--neuron-param", metavar="KEY=VALUE", action="append", default=[],
                   help="set one parameter of --neuron, in SI units (repeatable), e.g. "
                        "tau_n=0.1 or vth_mant=512")
    t.add_argument("--epochs", type=positive_int("--epochs"), default=15)
    t.add_argument("--batch-size", type=positive_int("--batch-size"), default=128)
    t.add_argument("--recipe", choices=list(RECIPES), default="adam",
                   help="paper: the authors' CIFAR-10 schedule (cuda-convnet SGD, 350 epochs on "
                        "80%% of the images, 150 on all, 10 at lr/10, 10 at lr/100; --epochs "
                        "scales each phase); paper-exp: their MNIST one (lr decays 100x "
                        "exponentially); adam: Adam, one-cycle (default); modern: Nesterov SGD "
                        "with decoupled weight decay, one-cycle, label smoothing 0.1 and a "
                        "moving average of the weights (the one saved)")
    t.add_argument("--lr", type=positive_float("--lr"), default=None,
                   help="peak (one-cycle) or initial learning rate (default: the recipe's: "
                        + ", ".join(f"{k} {v:g}" for k, v in RECIPE_LR.items()) + ")")
    t.add_argument("--label-smoothing", type=nonneg_float("--label-smoothing"), default=None,
                   help="label smoothing of the cross-entropy (default: the recipe's)")
    t.add_argument("--ema-decay", type=nonneg_float("--ema-decay"), default=None,
                   help="decay of the moving average of the weights, 0 = off (default: the "
                        "recipe's; modern 0.999)")
    t.add_argument("--mean-crop", choices=["aligned", "centre"], default=None,
                   help="what a random training crop has subtracted: the mean image under it "
                        "(aligned) or its centre crop (centre, the authors'; default for "
                        "--recipe paper)")
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
    t.add_argument("--rate-penalty", type=nonneg_float("--rate-penalty"), default=0.0,
                   metavar="LAMBDA",
                   help="energy-aware training: add LAMBDA x the expected synaptic events per "
                        "second per image, in millions (rates x fan-out, the energy model's "
                        "count), to the loss (default 0: off)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--init", choices=["default", "paper"],
                   help="initial weights: PyTorch's default, or the authors' Gaussian initW per "
                        "layer (default: paper for --recipe paper, else default)")
    add_train_precision_arg(t)
    t.add_argument("--crop", type=positive_int("--crop"),
                   help="random crops of this side in training, the centre crop at test "
                        "(default: the paper's for its data sets, none for your own)")
    t.add_argument("--flip", action="store_true",
                   help="random horizontal flips in training (default: the paper's)")
    t.add_argument("--input-scale", choices=["unit", "0-255"],
                   help="pixels in [0, 1] (unit, the default for your own data and MNIST) or "
                        "0-255 (the authors' CIFAR/SVHN/ImageNet scale); the training mean image "
                        "is subtracted either way")
    t.add_argument("--limit-train", type=positive_int("--limit-train"))
    t.add_argument("--limit-test", type=positive_int("--limit-test"))
    t.add_argument("--eval-images", type=positive_int("--eval-images"), metavar="N",
                   help="after each epoch but the last, measure test error on N test images "
                        "only, the first N of a fixed shuffled order (the last epoch: all of "
                        "them); does not change the training, saves time on a CPU (default: "
                        "all, every epoch)")
    t.add_argument("--out", default="runs/train", help="output folder")
    t.add_argument("--resume", action="store_true",
                   help="continue from OUT/checkpoint.safetensors or OUT/checkpoint.pt")
    t.add_argument("--format", choices=["pt", "safetensors"], default=None,
                   help="checkpoint file: OUT/checkpoint.pt (torch.save) or "
                        "OUT/checkpoint.safetensors (no pickle; weights, optimizer and "
                        "generator states as tensors); default: the one OUT holds, else pt")
    t.add_argument("--init-from", metavar="CHECKPOINT",
                   help="start from this checkpoint's (or pretrained:NAME's, a net of the "
                        "model zoo) weights and neuron (fine-tuning) with a "
                        "fresh optimizer and schedule; g starts where it ended unless --smoothing")
    t.add_argument("--no-fuse", action="store_true", help="do not torch.compile the activations")
    add_device_arg(t)
    t.add_argument("--no-progress", action="store_true")
    t.add_argument("--json", action="store_true")
    t.set_defaults(func=cmd_train)
