"""Blocks of simulation steps replayed as one CUDA graph (issue 10, item 6).

On a GPU a simulation step is a handful of small kernels per layer, launched from Python; at
batches of a few hundred the launches, not the arithmetic, set the speed (0.21x the dense
ceiling at batch 256 on an H200, ``results/gpu/``). :class:`GraphedSteps` records one call of
:func:`softlif.simulate.run_steps` for ``n`` steps (every layer's linear map, synapse, neuron
and counting kernels) into a ``torch.cuda.CUDAGraph`` once, and then runs each block as one
graph replay: copy the state into the graph's input buffers, replay, read the outputs.

A graph replays fixed kernels on fixed memory, so everything a block reads must live in those
buffers: every tensor of the :class:`~softlif.simulate.SimState` (neuron variables, synapse
states, counts, last spikes, closed-form schedules, the constant input currents) and the clock
of the closed-form schedules (``onset_steps``, a host integer elsewhere, here a device
tensor). The plan (weights, gains, kernels) is fixed already. A state with a different
structure (a schedule present or not) gets its own graph.

Without CUDA (``capture=False``, and on CPU) the same object runs ``run_steps`` on its
buffers each call: the copy-in/copy-out plumbing is then exercised, and tested, on CPU.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import torch
from torch.utils import _pytree as pytree

if TYPE_CHECKING:
    from .simulate import SimState, Simulator

Tensor = torch.Tensor

#: Warm-up calls before a capture (compiles the fused kernels, settles allocator and cuDNN).
WARMUP_CALLS = 3


def _tensors(state: SimState) -> tuple[list[Any], Any]:
    """The state's tensors (and Nones) as a flat list, and the structure to rebuild it."""
    return pytree.tree_flatten((state.neurons, state.syn, state.count, state.spikes,
                                state.schedules, state.j_in))


def _rebuild(state: SimState, leaves: list[Any], spec: Any, onset_steps: Any) -> SimState:
    neurons, syn, count, spikes, schedules, j_in = pytree.tree_unflatten(leaves, spec)
    return dataclasses.replace(state, neurons=neurons, syn=syn, count=count, spikes=spikes,
                               schedules=schedules, j_in=j_in, onset_steps=onset_steps)


class GraphedSteps:
    """``run_steps(plan, ., n)`` on static buffers, captured in a CUDA graph where
    ``capture`` (the default on a CUDA plan). Call with a state; returns what ``run_steps``
    returns (readouts (n, B, n_out), counts per stream after each step (n, layers, B), the new
    state), as fresh tensors the next call does not overwrite."""

    def __init__(self, plan: Simulator, state: SimState, n: int,
                 capture: bool | None = None) -> None:
        from .simulate import run_steps

        self.plan, self.n = plan, n
        self.capture = plan.device.type == "cuda" if capture is None else capture
        leaves, self.spec = _tensors(state)
        self._in = [t.clone() if isinstance(t, Tensor) else t for t in leaves]
        # the schedules' clock: steps since the image's onset, as a tensor the graph reads
        self._onset = torch.zeros((), dtype=torch.float64, device=plan.device)
        self._static = _rebuild(state, self._in, self.spec, self._onset)
        self.graph: Any = None
        if self.capture:
            side = torch.cuda.Stream(device=plan.device)
            side.wait_stream(torch.cuda.current_stream(plan.device))
            with torch.cuda.stream(side):
                for _ in range(WARMUP_CALLS):
                    run_steps(plan, self._static, n)
            torch.cuda.current_stream(plan.device).wait_stream(side)
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph):
                self._result = run_steps(plan, self._static, n)

    def matches(self, state: SimState) -> bool:
        """Whether ``state`` has the structure (and shapes) this graph was recorded for."""
        leaves, spec = _tensors(state)
        return spec == self.spec and all(
            a.shape == b.shape and a.dtype == b.dtype and a.device == b.device
            if isinstance(a, Tensor) and isinstance(b, Tensor) else a is b or a == b
            for a, b in zip(leaves, self._in, strict=True))

    def __call__(self, state: SimState) -> tuple[Tensor, Tensor, SimState]:
        from .simulate import run_steps

        leaves, _ = _tensors(state)
        for buf, t in zip(self._in, leaves, strict=True):
            if isinstance(buf, Tensor):
                buf.copy_(t)
        self._onset.fill_(float(state.onset_steps))
        if self.graph is not None:
            self.graph.replay()
            out, tot, new = self._result
        else:
            out, tot, new = run_steps(self.plan, self._static, self.n)
        new_leaves, spec = _tensors(new)
        fresh = [t.clone() if isinstance(t, Tensor) else t for t in new_leaves]
        return out.clone(), tot.clone(), _rebuild(state, fresh, spec,
                                                  state.onset_steps + self.n)
