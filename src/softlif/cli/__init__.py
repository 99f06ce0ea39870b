"""The ``softlif`` command line: ``softlif demo``, ``train``, ``simulate``, ``sweep``, ``diagnose``,
``energy``, ``info``, ``figures``, ``calibrate``, ``reproduce``, ``download``, ``machine``.

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
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import SoftlifError
from . import demo, download, energy, machine, reproduce, simulate, train
from .common import EXIT_ERROR, EXIT_OK, CliError, UsageError

__all__ = ["CliError", "UsageError", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    from ..data import DATASETS

    p = argparse.ArgumentParser(prog="softlif", description=__doc__.split("\n")[0])
    p.add_argument("--version", action="version", version=f"softlif {__version__}")
    p.add_argument("--debug", action="store_true",
                   help="show the traceback of every error (for bug reports)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    datasets = ["embedded-mnist", *DATASETS]
    for module in (demo, train, simulate, energy, reproduce, download, machine):
        module.register(sub, datasets)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        _join_process_group(args)
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


def _join_process_group(args: argparse.Namespace) -> None:
    """Under torchrun with more than one process: join the process group (gloo on the CPU,
    nccl for --device cuda, which then means this rank's GPU). Only rank 0 prints and writes."""
    import os

    if int(os.environ.get("WORLD_SIZE", "1") or 1) <= 1:
        return
    if args.command not in DISTRIBUTED_COMMANDS:
        raise UsageError(f"`softlif {args.command}` runs in one process; under torchrun use "
                         f"one of: {', '.join(DISTRIBUTED_COMMANDS)}")
    from ..distributed import init_from_env, local_device

    device = getattr(args, "device", None) or "cpu"
    world = init_from_env(device)
    if getattr(args, "device", None):
        args.device = local_device(args.device, world)


#: Commands that shard their work under torchrun.
DISTRIBUTED_COMMANDS = ("train", "simulate", "sweep", "reproduce")


if __name__ == "__main__":
    sys.exit(main())
