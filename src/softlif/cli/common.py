"""Pieces the `softlif` commands share: error types, argument types, data and
simulation settings from arguments, output helpers."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from ..errors import SoftlifError
from ..io import json_default

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


class CliError(SoftlifError):
    """An error to report as one line (exit status 1: data and files)."""


class UsageError(CliError):
    """Arguments that do not fit together (exit status 2)."""

    exit_code = EXIT_USAGE


def cli_options(args: argparse.Namespace) -> dict[str, Any]:
    """The resolved options of a command, for the config.json written beside its outputs."""
    return {k: v for k, v in vars(args).items() if not callable(v)}


def is_main() -> bool:
    """True unless this is a rank other than 0 of a torchrun process group: the process that
    prints and writes outputs."""
    import sys as _sys

    if "torch.distributed" not in _sys.modules:
        return True
    from ..distributed import current

    return current().main


def emit(args: argparse.Namespace, payload: dict[str, Any], text: Callable[[], str]) -> None:
    """Print ``payload`` as JSON with --json, else the human-readable ``text()`` (rank 0 only
    under torchrun)."""
    if not is_main():
        return
    if getattr(args, "json", False):
        print(json.dumps(payload, indent=2, default=json_default))
    else:
        print(text())


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


def nonneg_int(name: str) -> Callable[[str], int]:
    return number(name, int, 0, strict=False)


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


def add_order_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--order", choices=["dataset", "shuffled"], default="dataset",
                   help="test images in the data set's order (default) or a fixed shuffled "
                   "order (for test sets sorted by class)")


def add_device_arg(p: argparse.ArgumentParser) -> None:
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


def load_data(dataset: str, data_dir: str | None, limit_train: int | None = None,
              limit_test: int | None = None, args: argparse.Namespace | None = None):
    """(train, test, preprocess) for a data set name; ``embedded-mnist`` needs no folder.

    The paper's data sets get the paper's preprocessing; a user's own data (npz, idx, folder)
    the default one (mean image of its training split, [0, 1] scale). ``--crop``, ``--flip``
    and ``--input-scale`` (in ``args``) override either. Image folders and ImageNet stay lazy
    (decoded a batch at a time); their mean image comes from at most ``LAZY_MEAN_IMAGES``
    evenly spaced training images."""
    from ..data import (
        PAPER_SETTINGS,
        ArraySplit,
        default_preprocess,
        load_embedded_mnist,
        load_split,
        paper_preprocess,
    )

    if dataset == "embedded-mnist":
        train_split, test_split = load_embedded_mnist()
        dataset = "mnist"
    else:
        opts = _image_options(args, dataset)
        train_split = load_split(dataset, data_dir, "train", **opts)  # type: ignore[assignment]
        test_split = load_split(dataset, data_dir, "test", **opts)  # type: ignore[assignment]
    if limit_train:
        train_split = train_split.subset(list(range(min(limit_train, len(train_split)))))
    if limit_test:
        test_split = test_split.subset(list(range(min(limit_test, len(test_split)))))
    crop = getattr(args, "crop", None)
    flip = getattr(args, "flip", False)
    scale = getattr(args, "input_scale", None)
    mean_limit = None if isinstance(train_split, ArraySplit) else LAZY_MEAN_IMAGES
    if dataset in PAPER_SETTINGS and crop is None and not flip and scale is None:
        pre = paper_preprocess(dataset, train_split, mean_limit=mean_limit)
    else:
        divisor = 1.0 if scale == "0-255" else 255.0
        h, w = train_split.image_shape[1:]
        if crop is not None and crop > min(h, w):
            raise UsageError(f"--crop {crop} is larger than the images ({h} x {w} pixels)")
        pre = default_preprocess(train_split, crop=crop, flip=flip, pixel_divisor=divisor,
                                 mean_limit=mean_limit)
    return train_split, test_split, pre


def _image_options(args: argparse.Namespace | None, dataset: str) -> dict[str, Any]:
    """``--image-size`` as the loader option of the lazy image sets (folder, imagenet)."""
    size = getattr(args, "image_size", None)
    return {"size": size} if size is not None and dataset in ("folder", "imagenet") else {}


#: Training images averaged for the mean image of a lazy data set (image folder, ImageNet).
LAZY_MEAN_IMAGES = 10_000


NET_FOR_DATASET = {"mnist": "mnist", "embedded-mnist": "mnist", "fashion-mnist": "mnist",
                   "svhn": "svhn", "cifar10": "cifar10", "cifar100": "cifar100",
                   "imagenet": "imagenet"}


def sim_settings(args: argparse.Namespace) -> Any:
    from ..evaluate import SimSettings

    t = args.presentation_time
    c1 = t if args.c1 is None else args.c1
    # never clamped; the default rounded to the nanosecond (0.2 - 0.08 is 0.12000000000000001)
    c0 = args.c0 if args.c0 is not None else max(0.0, round(c1 - 0.08, 9))
    if not 0 <= c0 < c1 <= t + 1e-12:
        raise UsageError(f"window must satisfy 0 <= --c0 < --c1 <= --presentation-time ({t} s); "
                         f"got c0={c0}, c1={c1}")
    return SimSettings(
        synapse=args.synapse if args.tau_s > 0 else "none", tau_s=args.tau_s,
        presentation_time=t, dt=args.dt, c0=c0, c1=c1, reset=args.reset, init=args.init,
        batch_size=args.batch_size, fused=not args.no_fuse, precision=args.precision,
        device=args.device, float_maps=getattr(args, "float_maps", False),
        cuda_graph=not getattr(args, "no_cuda_graph", False))


def load_test_data(args: argparse.Namespace, ck: Any):
    """uint8 test images and labels: --images of them, in --order (a lazy image folder or
    ImageNet decodes only those, refusing more than ``LIMITS.max_bytes`` up front)."""
    from ..data import load_embedded_mnist, load_split

    test: Any
    if args.dataset == "embedded-mnist":
        test = load_embedded_mnist()[1]
    else:
        test = load_split(args.dataset, args.data_dir, "test",
                          **_image_options(args, args.dataset))
    if tuple(test.image_shape) != ck.preprocess.input_shape:
        raise CliError(f"test images have shape {tuple(test.image_shape)}, the checkpoint "
                       f"expects {ck.preprocess.input_shape}: wrong --dataset"
                       f"{' or --image-size' if args.dataset in ('folder', 'imagenet') else ''}?")
    return select_images(args, test)


def select_images(args: argparse.Namespace, split: Any) -> tuple[Any, Any]:
    """--images and --order applied to a test split (in memory or lazy: only the selected
    images are decoded); warns about a class-sorted order."""
    import torch

    from ..data import ArraySplit
    from ..evaluate import sorted_by_class, test_indices

    idx = test_indices(len(split), args.images, args.order)
    if isinstance(split, ArraySplit):
        x, y = torch.as_tensor(split.images[idx]), torch.as_tensor(split.labels[idx])
    else:
        x, y = split.load(idx, workers=getattr(args, "workers", 0))
    if args.order == "dataset" and sorted_by_class(y):
        print("warning: the test images are sorted by class, so --images takes few classes "
              "and back-to-back streams see one class; use --order shuffled", file=sys.stderr)
    return x, y


def load_ck(path: str) -> Any:
    """A checkpoint file, or a zoo net for ``pretrained:NAME`` (hash checked)."""
    from ..zoo import load

    return load(path)


def add_train_precision_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--precision", choices=["auto", "float32", "bfloat16"], default="auto",
                   help="arithmetic of the training steps: bfloat16 autocast for the linear "
                        "layers (the rate nonlinearity, weights and evaluation stay float32) or "
                        "float32 throughout; auto (default): bfloat16 where the device computes "
                        "it natively (CUDA with bf16, a CPU with AMX or AVX512-BF16), else "
                        "float32")


def add_sim_args(p: argparse.ArgumentParser, c0_default: float | None = None) -> None:
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
    p.add_argument("--precision", choices=["auto", "float32", "bfloat16", "float64"],
                   default="auto",
                   help="arithmetic of the simulation: auto (default) is float32, the exact "
                        "path on every device; bfloat16 linear maps on spikes (faster where "
                        "the device computes bf16 natively, changes results); float64 (the "
                        "slow reference)")
    p.add_argument("--no-fuse", action="store_true", help="do not torch.compile the updates")
    p.add_argument("--float-maps", action="store_true",
                   help="keep every linear map on spikes in float32 (by default, on a CPU "
                        "with int8 dot products (VNNI, AMX), long maps run in split 8-bit "
                        "integer arithmetic, to float32 accuracy; `softlif machine` says)")
    p.add_argument("--no-cuda-graph", action="store_true",
                   help="on a CUDA device, launch every kernel from Python instead of replaying "
                        "each block of steps as a recorded CUDA graph")
    p.add_argument("--images", type=positive_int("--images"), help="first N test images")
    add_order_arg(p)
    add_device_arg(p)


def window_list(s: str) -> list[tuple[float, float]]:
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


def add_data_args(q: argparse.ArgumentParser, datasets: list[str]) -> None:
    """--dataset, --data-dir, and --image-size and --workers for image folders and ImageNet."""
    q.add_argument("--dataset", choices=datasets, default="embedded-mnist")
    q.add_argument("--data-dir", help="folder with the data set's official files (npz: the "
                                      ".npz file; folder: the folder holding train/ and test/)")
    q.add_argument("--image-size", type=positive_int("--image-size"),
                   help="folder, imagenet: resize the short side to this many pixels and take "
                        "the centre square (default: folder keeps the images' own size, all "
                        "equal; imagenet 256)")
    q.add_argument("--workers", type=nonneg_int("--workers"), default=0,
                   help="folder, imagenet: processes decoding images (default 0: this one)")
