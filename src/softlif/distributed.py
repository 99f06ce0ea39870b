"""Scale-out with PyTorch's own machinery: one process per device, launched by ``torchrun``.

softlif reads the standard torchrun environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR``, ``MASTER_PORT``). With ``WORLD_SIZE`` > 1 the command line joins the default
process group (:func:`init_from_env`: gloo on the CPU, nccl on CUDA) and:

* **evaluation** shards the work and gathers the raw results, so every figure is computed from
  the same numbers as in one process: the spiking simulation shards whole *streams* (images
  shown back to back keep their order within a stream, and a stream's seed is its global
  index) and gathers every image's readout and spike counts; ANN evaluations shard whole
  batches of :data:`ANN_CHUNK` images. The errors and spike counts equal one process's bit for
  bit when the per-stream arithmetic does not depend on how many streams share a batch (tested
  on the CPU here; see the README);
* **training** wraps the model in :class:`~torch.nn.parallel.DistributedDataParallel`: every
  rank draws the same permutation and each global batch of ``batch_size`` images is split
  across ranks by stride (``batch[rank::world]``, the split :class:`DistributedSampler`
  makes of a permutation), so the global batches are the ones one process would see; the
  loss is scaled so that the averaged gradient is the global batch's mean; training noise and
  dropout draw from per-rank seeds (recorded in the checkpoint); rank 0 alone writes.

Without torchrun (``WORLD_SIZE`` unset or 1) nothing here changes anything.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as dist

from .errors import SoftlifError

if TYPE_CHECKING:
    from .convert import SpikingNetwork
    from .simulate import SimResult

#: Images per ANN evaluation batch; ANN work is sharded in whole batches of this size.
ANN_CHUNK = 500


class DistributedError(SoftlifError):
    """The distributed environment is unusable (a bad WORLD_SIZE, a failed rendezvous)."""


@dataclass(frozen=True)
class World:
    """This process's place in the process group (rank 0 of 1 without torchrun)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.size > 1

    @property
    def main(self) -> bool:
        """True on the process that prints and writes (rank 0)."""
        return self.rank == 0


SINGLE = World()


def current() -> World:
    """The process group this process belongs to (:data:`SINGLE` when none)."""
    if dist.is_available() and dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size(),
                     int(os.environ.get("LOCAL_RANK", "0")))
    return SINGLE


def init_from_env(device: str = "cpu") -> World:
    """Join the default process group when launched by torchrun with more than one process
    (backend gloo for ``device`` "cpu", nccl for CUDA); else return :data:`SINGLE`."""
    raw = os.environ.get("WORLD_SIZE", "1")
    try:
        size = int(raw)
    except ValueError:
        raise DistributedError(f"WORLD_SIZE must be a whole number, got {raw!r}") from None
    if size <= 1:
        return SINGLE
    if not dist.is_available():
        raise DistributedError("this PyTorch build has no torch.distributed")
    if not dist.is_initialized():
        cuda = str(device).startswith("cuda")
        if cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        try:
            dist.init_process_group("nccl" if cuda else "gloo")
        except (RuntimeError, ValueError) as e:
            raise DistributedError(f"cannot join the process group ({e}); launch with "
                                   "torchrun (it sets RANK, WORLD_SIZE, MASTER_ADDR, "
                                   "MASTER_PORT)") from None
    return current()


def local_device(device: str, world: World) -> str:
    """``cuda`` means this rank's GPU (``cuda:LOCAL_RANK``) in a distributed run."""
    if world.active and device == "cuda":
        return f"cuda:{world.local_rank}"
    return device


def shard(n: int, world: World) -> tuple[int, int]:
    """This rank's contiguous block ``[lo, hi)`` of ``n`` units (sizes differ by at most 1)."""
    return n * world.rank // world.size, n * (world.rank + 1) // world.size


def _comm_device() -> torch.device:
    return torch.device("cuda", torch.cuda.current_device()) \
        if dist.get_backend() == "nccl" else torch.device("cpu")


def gather_rows(t: torch.Tensor, world: World) -> torch.Tensor:
    """Concatenate every rank's ``t`` along dim 0, in rank order (any row counts, the other
    dims and dtype equal); returned on every rank, on ``t``'s device."""
    if not world.active:
        return t
    dev = _comm_device()
    n = torch.tensor([t.shape[0]], device=dev)
    counts = [torch.zeros_like(n) for _ in range(world.size)]
    dist.all_gather(counts, n)
    sizes = [int(c) for c in counts]
    pad = torch.zeros((max(sizes), *t.shape[1:]), dtype=t.dtype, device=dev)
    pad[: t.shape[0]] = t.to(dev)
    parts = [torch.empty_like(pad) for _ in range(world.size)]
    dist.all_gather(parts, pad)
    return torch.cat([p[:s] for p, s in zip(parts, sizes, strict=True)]).to(t.device)


def all_reduce_sum(t: torch.Tensor, world: World) -> torch.Tensor:
    """The element-wise sum of ``t`` over all ranks (a new tensor; ``t`` unchanged)."""
    if not world.active:
        return t
    out = t.detach().clone().to(_comm_device())
    dist.all_reduce(out)
    return out.to(t.device)


def sharded_chunks(fn: Callable[[int, int], torch.Tensor], n: int, world: World,
                   chunk: int = ANN_CHUNK) -> torch.Tensor:
    """``cat([fn(a, b) for each chunk [a, b) of range(n)])``, the chunks shared out in
    contiguous blocks over the ranks and the rows gathered: the same batches as one process."""
    starts = list(range(0, n, chunk))
    lo, hi = shard(len(starts), world)
    mine = [fn(a, min(a + chunk, n)) for a in starts[lo:hi]]
    if not world.active:
        return torch.cat(mine)
    if mine:
        local = torch.cat(mine)
    else:  # no chunk here: an empty block of the right trailing shape (from rank 0's first)
        probe = fn(0, min(chunk, n))
        local = probe[:0]
    return gather_rows(local, world)


def simulate_sharded(net: SpikingNetwork, images: torch.Tensor, world: World, *,
                     presentation_time: float, dt: float, batch_size: int, reset: bool,
                     keep_neuron_counts: int = 0, **kw: Any) -> SimResult:
    """:func:`softlif.simulate.simulate` with the streams shared out in contiguous blocks over
    the ranks; every rank returns the whole result (all images' readouts and spike counts,
    gathered), per-neuron counts (``keep_neuron_counts``) for the first images included."""
    from .simulate import SimResult, simulate, stream_layout

    if not world.active:
        return simulate(net, images, presentation_time, dt, batch_size, reset,
                        keep_neuron_counts=keep_neuron_counts, **kw)
    n = images.shape[0]
    length, n_streams = stream_layout(n, batch_size, reset)
    lo, hi = shard(n_streams, world)
    a, b = min(lo * length, n), min(hi * length, n)
    steps = int(round(presentation_time / dt))
    keep_here = max(0, min(keep_neuron_counts, b) - a)  # this block's share of the first K
    kept: list[torch.Tensor] | None = None
    if b > a:
        part = simulate(net, images[a:b], presentation_time, dt, batch_size, reset,
                        stream_length=length, first_stream=lo, keep_neuron_counts=keep_here,
                        **kw)
        outputs, counts = part.outputs, part.layer_counts
        step_counts = part.layer_step_counts
        if keep_neuron_counts:
            kept = part.neuron_counts or [torch.zeros((0, *st.out_shape))
                                          for st in net.hidden_stages]
    else:  # more ranks than streams
        outputs = torch.empty((steps, 0, net.n_outputs))
        counts = torch.empty((0, len(net.hidden_stages)), dtype=torch.float64)
        step_counts = torch.zeros((steps, len(net.hidden_stages)), dtype=torch.float64)
    if keep_neuron_counts:  # the first K images' per-neuron counts, from whichever ranks
        kept = [gather_rows(kept[k] if kept is not None else torch.zeros((0, *st.out_shape)),
                            world) for k, st in enumerate(net.hidden_stages)]
    outputs = gather_rows(outputs.transpose(0, 1).contiguous(), world).transpose(0, 1)
    counts = gather_rows(counts, world)
    assert step_counts is not None
    step_counts = all_reduce_sum(step_counts, world)  # exact: integer counts in float64
    return SimResult(outputs, counts, net.neurons_per_layer, float(dt), float(steps * dt), kept,
                     step_counts)


def gather_objects(obj: Any, world: World) -> list[Any]:
    """Every rank's ``obj`` (small, picklable: RNG states), in rank order, on every rank. The
    objects come from this run's own processes, never from a file."""
    if not world.active:
        return [obj]
    out: list[Any] = [None] * world.size
    dist.all_gather_object(out, obj)
    return out


def dist_barrier() -> None:
    """Wait for every rank (nothing without a process group)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
