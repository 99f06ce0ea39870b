"""Spiking simulation of a converted network (SPEC sections 1.3 and 7).

Time runs in steps of ``dt`` seconds (default 1 ms). Each image is shown for
``presentation_time`` seconds as a constant analog input: the first layer's current is computed
once per image, not once per step. Later layers receive spikes (0/1 per step, standing for
height ``1/dt`` times the sending neuron's ``amplitude``) through the linear map and synapse.

Two ways to drive it, sharing the per-stage updates (so they agree up to the float summation
order of the linear maps at different batch sizes; exactly in the tests):

* :func:`simulate`: the fast path for data sets, in blocks of steps run layer after layer
  (:func:`run_steps`). Images are split into streams of
  ``stream_length`` consecutive images shown back to back without reset (the paper's way), or
  each image alone (``reset=True``); ``batch_size`` streams run side by side. A stream's result
  never depends on which other streams share its batch.
* :class:`Simulator`: step-by-step streaming (video, online input): ``sim.step(frame)``.

The Simulator is the plan (linear maps, gains, biases, decay factors, neuron types and the
kernels chosen: closed form, event-driven maps, fused, precision), fixed at construction; the
state is explicit (:class:`SimState`), and the one step is a pure function
``step(plan, state, x=None) -> (readout, state)`` (with :func:`initial_state`,
:func:`set_input`), which ``Simulator.step`` calls; ``run_steps(plan, state, n)`` performs the
same updates for ``n`` steps, one stage at a time (each linear map sees the block's spikes as
one batch), and is what :func:`simulate` calls.

Records are time-major: per-step outputs ``[T, N, n_out]``. One simulation therefore gives the
error for every window ``[c0, c1]`` (see :class:`SimResult`).

Speed: the first layer's spikes come from the closed form of its constant current
(:mod:`softlif.closed_form`, ``closed_form=True``, the default); on CPU, fully connected maps
on spikes are event-driven where few inputs are active (``event_driven``, the default there);
``fused=True`` compiles each layer's synapse + neuron update into one kernel with
``torch.compile`` (one-off compile cost), in blocks one kernel per ``UNROLL_STEPS`` steps
that keeps the neuron and synapse state in registers across them; on CPU in float32, maps on
0/1 spikes run in 8-bit integer arithmetic with each weight split in three parts
(``split_int8``, :mod:`softlif.split_int8`: float32 accuracy); ``precision="bfloat16"`` runs
the linear maps on spikes in bfloat16 (spikes are exact in bf16; weights and pooled values
are rounded).
``precision="float64"`` is the reference mode (slow; for tests and benchmarks): currents,
voltages, synapse states and linear maps in float64, the numerical floor against which the
float32 paths' deviations are measured.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

import torch
from torch import nn
from tqdm.auto import tqdm

from .convert import SpikingNetwork
from .graphed import GraphedSteps
from .hardware import calibration, compile_cache, machine
from .neurons import NeuronType, SchedulableNeuron, initial_voltage
from .split_int8 import available as split_int8_available
from .split_int8 import split_int8_map
from .synapses import SynapseState, synapse_step

Tensor = torch.Tensor
InitMode = Literal["zero", "uniform"]
Precision = Literal["auto", "float32", "bfloat16", "float64"]
PRECISIONS = ("auto", "float32", "bfloat16", "float64")


def sim_precision(precision: str) -> str:
    """The simulation arithmetic ``precision`` asks for: ``"auto"`` is float32 on every device.

    Unlike training, where bf16 autocast is within the noise of a run and is picked where the
    device computes it natively (:func:`softlif.hardware.resolve_precision`), the bf16 linear
    maps of a simulation round the weights, and the spikes deviate from the float64 reference
    2-5x as much as float32's rounding floor (README, exactness table): ``"auto"`` keeps the
    exact path and bf16 stays opt-in. What ``auto`` does choose per machine are the kernels:
    split 8-bit maps where the CPU has int8 dot products, and the event-driven crossover
    (:mod:`softlif.hardware`)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got "
                         f"{precision!r}")
    return "float32" if precision == "auto" else precision


NeuronState = tuple[Tensor, ...]


def _input_layer_update(neuron: NeuronType, dt: float, j: Tensor, state: NeuronState,
                        count: Tensor):
    """First layer: constant current j; returns (spikes 0/1, state, count)."""
    s, state = neuron.spike_step(j, state, dt)
    return s, state, _count(count, s)


def _count(count: Tensor, s: Tensor) -> Tensor:
    """Add this step's spikes: per neuron (count shaped like s) or per stream (count (B,)),
    which saves reading and writing a neuron-sized counter every step (float64: exact for
    any realistic count)."""
    return count + s if count.dim() > 1 else count + s.flatten(1).sum(1, dtype=count.dtype)


def _schedule_spikes(planner: SchedulableNeuron, sched: Any, t: Tensor, dtype: torch.dtype):
    """First layer from its closed-form schedule: (spikes 0/1, schedule)."""
    s, sched = planner.schedule_step(sched, t)
    return s.to(dtype), sched


def _scheduled_layer_update(planner: SchedulableNeuron, sched: Any, t: Tensor, count: Tensor,
                            dtype: torch.dtype):
    """First layer from its closed-form schedule: (spikes 0/1, schedule, count)."""
    s, sched = _schedule_spikes(planner, sched, t, dtype)
    return s, sched, _count(count, s)


def _hidden_spikes(neuron: NeuronType, dt: float, a: float, j_gain: float, i: Tensor,
                   syn: SynapseState, j_bias: Tensor, state: NeuronState):
    """Synapse -> current -> neuron for one layer and one step: (spikes 0/1, synapse state,
    neuron state). i: the linear map applied to the previous layer's 0/1 spikes;
    j = j_gain * filtered(i) + j_bias."""
    y, syn = synapse_step(i.to(j_bias.dtype), syn, a)
    s, state = neuron.spike_step(j_gain * y + j_bias, state, dt)
    return s, syn, state


def _hidden_layer_update(neuron: NeuronType, dt: float, a: float, j_gain: float, i: Tensor,
                         syn: SynapseState, j_bias: Tensor, state: NeuronState, count: Tensor):
    """:func:`_hidden_spikes` and the count (one fused kernel when compiled)."""
    s, syn, state = _hidden_spikes(neuron, dt, a, j_gain, i, syn, j_bias, state)
    return s, syn, state, _count(count, s)


def _readout_update(a: float, gain: float, i: Tensor, syn: SynapseState, bias: Tensor):
    y, syn = synapse_step(i.to(bias.dtype), syn, a)
    return gain * y + bias, syn


# Blocks of steps (run_steps): the per-step updates above, looped over up to UNROLL_STEPS steps
# in one function, so that compiled (fused=True) a layer's steps are one kernel holding each
# neuron's state in registers across them (read and written once per call, not once per step)
# and writing the spikes straight into the block's buffer ``out`` (n, B, ...); the counts
# follow from the spikes in a separate reduction (:func:`_count_block`), which keeps the
# elementwise kernel free of reductions.

def _count_block(count: Tensor, seq: Tensor, tot: Tensor) -> Tensor:
    """:func:`_count` over the steps of ``seq`` (n, B, ...): writes each step's spike count
    per stream after that step into ``tot`` (n, B) (float64; integers, so the sums are exact
    and equal to counting step by step); returns the new count."""
    per_step = seq.flatten(2).sum(2, dtype=torch.float64)
    tot.copy_(_stream_total(count) + per_step.cumsum(0))
    return count + seq.sum(0) if count.dim() > 1 else count + per_step.sum(0)


def _input_layer_block(neuron: NeuronType, dt: float, j: Tensor, state: NeuronState,
                       count: Tensor, out: Tensor, tot: Tensor):
    seq = []
    for _ in range(out.shape[0]):
        s, state = neuron.spike_step(j, state, dt)
        seq.append(s)
    out.copy_(torch.stack(seq))
    return state, _count_block(count, out, tot)


def _scheduled_layer_block(planner: SchedulableNeuron, sched: Any, ts: Tensor, count: Tensor,
                           out: Tensor, tot: Tensor):
    seq = []
    for t in range(ts.shape[0]):
        s, sched = _schedule_spikes(planner, sched, ts[t], out.dtype)
        seq.append(s)
    out.copy_(torch.stack(seq))
    return sched, _count_block(count, out, tot)


def _hidden_layer_block(neuron: NeuronType, dt: float, a: float, j_gain: float, i: Tensor,
                        syn: SynapseState, j_bias: Tensor, state: NeuronState, count: Tensor,
                        out: Tensor, tot: Tensor):
    """i: the map outputs of the steps, (n, B, ...) in the state layout."""
    seq = []
    for t in range(i.shape[0]):
        s, syn, state = _hidden_spikes(neuron, dt, a, j_gain, i[t], syn, j_bias, state)
        seq.append(s)
    out.copy_(torch.stack(seq))
    return syn, state, _count_block(count, out, tot)


def _readout_block(a: float, gain: float, i: Tensor, syn: SynapseState, bias: Tensor,
                   out: Tensor):
    seq = []
    for t in range(i.shape[0]):
        y, syn = _readout_update(a, gain, i[t], syn, bias)
        seq.append(y)
    out.copy_(torch.stack(seq))
    return syn


@dataclass(frozen=True)
class KernelChoice:
    """The simulation kernels chosen for a device and precision (:func:`choose_kernels`)."""

    precision: str  # the arithmetic ("auto" resolved)
    event_crossover: float | None  # fc maps on spikes go event-driven below this density
    split_int8: bool  # maps on 0/1 spikes in split 8-bit integer arithmetic

    def describe(self) -> str:
        """One line for logs, e.g. "float32, split int8 maps off, event-driven fc maps below
        4.5% input density"."""
        fc = (f"event-driven fc maps below {100 * self.event_crossover:.2g}% input density"
              if self.event_crossover is not None else "dense fc maps")
        return f"{self.precision}, split int8 maps {'on' if self.split_int8 else 'off'}, {fc}"


def choose_kernels(device: torch.device | str, precision: str = "auto",
                   event_driven: bool | None = None,
                   split_int8: bool | None = None) -> KernelChoice:
    """Which kernels a :class:`Simulator` on ``device`` runs; None asks for the default on
    this machine:

    * ``event_driven``: on for CPU (a GPU would synchronise every step to count the inputs),
      below the crossover density measured once on this machine (:func:`event_crossover`);
      not for bfloat16 maps (CPU sparse products have no bf16 kernel worth using);
    * ``split_int8``: float32 on a CPU with int8 dot-product instructions (VNNI, AMX: faster
      than float32 maps there; on an AVX2-only CPU the int8 products are emulated and the
      three-part split loses, README "Speed"), where this torch build has the kernels."""
    dev = torch.device(device)
    precision = sim_precision(precision)
    if event_driven is None:
        event_driven = dev.type == "cpu"
    crossover = event_crossover() if event_driven and precision != "bfloat16" else None
    wanted = machine().native_int8_dot if split_int8 is None else bool(split_int8)
    split = wanted and precision == "float32" and dev.type == "cpu" and split_int8_available()
    return KernelChoice(precision, crossover, split)


class Simulator:
    """Step-by-step spiking simulation of ``batch_size`` independent streams.

    State (voltages, refractory times, synapse states, per-image spike counts) is explicit on
    this object; the network is not modified. Use :meth:`set_input` once per image then
    :meth:`step` per time step, or :meth:`step` with a frame each time (streaming).

    Layout: the state of a conv layer is stored contiguous as ``(B, H, W, C)``, which the
    linear maps see as a channels-last ``(B, C, H, W)`` view: oneDNN convolutions and CPU
    pooling run several times faster channels-last, and the fused elementwise updates see
    plain contiguous memory. Public accessors return the ``(B, C, H, W)`` view.
    """

    def __init__(
        self,
        net: SpikingNetwork,
        batch_size: int,
        dt: float = 0.001,
        init: InitMode = "zero",
        fused: bool = False,
        precision: Precision = "auto",
        device: torch.device | str | None = None,
        count_neurons: bool = True,
        closed_form: bool = True,
        event_driven: bool | None = None,
        split_int8: bool | None = None,
        cuda_graph: bool | None = None,
    ) -> None:
        if not (isinstance(dt, (int, float)) and dt > 0 and math.isfinite(dt)):
            raise ValueError(f"dt must be a positive number of seconds, got {dt!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        precision = cast(Precision, sim_precision(precision))
        if init not in ("zero", "uniform"):
            raise ValueError(f"init must be 'zero' or 'uniform', got {init!r}")
        self.net = net
        self.dt = float(dt)
        self.batch_size = batch_size
        self.init = init
        self.count_neurons = count_neurons
        # currents, voltages and synapse states: float64 in the reference mode, else float32
        self.dtype = torch.float64 if precision == "float64" else torch.float32
        self.device = torch.device(device) if device is not None else net.stages[0].bias.device
        self.decay = net.synapse.decay(self.dt)
        stages = net.stages
        # Per stage: j = j_gain * filtered(linear(spikes01)) + j_bias (+ the unfiltered part
        # from the analog input, j_in_gain * linear(image), for stages the input feeds);
        # amplitude/dt of the sending layers turns 0/1 spikes into the ANN's units (spike
        # height 1/dt). Sources of unequal amplitude get their spikes scaled one by one.
        self.j_gain: list[float] = []
        self.j_in_gain: list[float] = []
        self.j_bias: list[Tensor] = []
        self.spike_sources: list[list[int]] = []
        self.source_scale: list[list[float] | None] = []
        for st in stages:
            spiking = [j for j in st.sources if j >= 0]
            amps = [stages[j].neuron.amplitude for j in spiking]  # type: ignore[union-attr]
            uniform = len(set(amps)) <= 1
            scale_in = (amps[0] if amps and uniform else 1.0) / self.dt
            gain = st.neuron.gain if st.neuron is not None else 1.0
            bias = _to_state(st.bias.to(self.device, self.dtype)[None])[0]
            self.spike_sources.append(spiking)
            self.source_scale.append(None if uniform else amps)
            self.j_gain.append(gain * scale_in if spiking else gain)
            self.j_in_gain.append(gain)
            self.j_bias.append(gain * bias + st.neuron.bias if st.neuron is not None else bias)
        # Linear maps on spikes, in the chosen precision (maps the analog input feeds stay in
        # the state's float32, or float64 in the reference mode).
        self.spike_dtype = torch.bfloat16 if precision == "bfloat16" else self.dtype
        self.linear_dtypes = [self.dtype if -1 in st.sources else self.spike_dtype
                              for st in stages]
        # event-driven fully connected maps on spike inputs (float32/float64: CPU sparse
        # products have no bfloat16 kernel worth using)
        kernels = choose_kernels(self.device, precision, event_driven, split_int8)
        crossover = kernels.event_crossover
        self.split_int8 = kernels.split_int8
        self.linears: list[nn.Module] = [
            _prepare_linear(st.linear, self.device, d,
                            crossover if self.spike_sources[k] and -1 not in st.sources
                            else None,
                            self.split_int8 and bool(self.spike_sources[k])
                            and -1 not in st.sources and self.source_scale[k] is None)
            for k, (st, d) in enumerate(zip(stages, self.linear_dtypes, strict=True))]
        # fused=True compiles each layer's synapse + neuron + counting update into one kernel
        # (per step, and per UNROLL_STEPS steps for blocks); the linear maps stay eager
        # (oneDNN convs and channels-last pooling beat their compiled versions on CPU).
        if fused:
            compile_cache()  # kernels cached per machine (capability caps included)
        wrap = torch.compile if fused else (lambda f: f)
        self._input_update = wrap(_input_layer_update)
        self._scheduled_update = wrap(_scheduled_layer_update)
        self._hidden_update = wrap(_hidden_layer_update)
        self._readout_update = wrap(_readout_update)
        self._input_block = wrap(_input_layer_block)
        self._scheduled_block = wrap(_scheduled_layer_block)
        self._hidden_block = wrap(_hidden_layer_block)
        self._readout_block = wrap(_readout_block)
        self.neurons: list[NeuronType] = [st.neuron for st in net.hidden_stages
                                          if st.neuron is not None]
        # Populations driven by the analog input alone see a constant current per image: where
        # the neuron type offers closed-form spikes for it (``schedule``), they replace the
        # step (softlif.closed_form: the same spikes as the step integrator).
        self.planners: list[SchedulableNeuron | None] = [
            n if closed_form and not self.spike_sources[k] and isinstance(n, SchedulableNeuron)
            and n.has_schedule(self.dt) else None for k, n in enumerate(self.neurons)]
        # blocks of steps replayed as CUDA graphs (softlif.graphed; None: on for CUDA). On CPU
        # True only runs the graphs' buffer plumbing, uncaptured (for tests).
        self.cuda_graph = self.device.type == "cuda" if cuda_graph is None else bool(cuda_graph)
        self._graphs: dict[int, GraphedSteps] = {}
        self.sim_state = initial_state(self)

    @property
    def n_layers(self) -> int:
        return len(self.net.hidden_stages)

    def reset(self, seeds: Sequence[int] | None = None) -> None:
        """Reset all state. With ``init="uniform"``, stream ``b`` draws its initial voltages,
        layer after layer, from one generator seeded with ``seeds[b]`` (default ``b``), so
        results never depend on how streams are batched and no two layers start alike. The
        input (``set_input``) is kept."""
        self.sim_state = initial_state(self, seeds, keep_input=self.sim_state)

    @torch.no_grad()
    def set_input(self, x: Tensor) -> None:
        """Set the constant analog input ``x`` (B, *input_shape); computes the first layer's
        current once."""
        self.sim_state = set_input(self, self.sim_state, x)

    @torch.no_grad()
    def step(self, x: Tensor | None = None) -> Tensor:
        """Advance one step of ``dt``; with ``x``, first set it as the input (streaming).
        Returns the readout (B, n_out) for this step."""
        out, self.sim_state = step(self, self.sim_state, x)
        return out

    @torch.no_grad()
    def run(self, n: int) -> tuple[Tensor, Tensor]:
        """Advance ``n`` steps as one block (:func:`run_steps`); returns the readouts
        (n, B, n_out) and every hidden layer's spike count per stream after each step
        (n, layers, B)."""
        g = self._graphed(n) if self.cuda_graph else None
        if g is not None:
            out, totals, self.sim_state = g(self.sim_state)
        else:
            out, totals, self.sim_state = run_steps(self, self.sim_state, n)
        return out, totals

    def _graphed(self, n: int) -> GraphedSteps | None:
        """The graph of ``n`` steps for the current state's structure (recorded on first use);
        None where recording fails, with a warning, and no graphs from then on."""
        g = self._graphs.get(n)
        if g is None or not g.matches(self.sim_state):
            try:
                g = GraphedSteps(self, self.sim_state, n)
            except RuntimeError as e:  # e.g. an op that cannot be captured
                warnings.warn(f"recording a CUDA graph of {n} steps failed ({e}); simulating "
                              "without graphs", RuntimeWarning, stacklevel=3)
                self.cuda_graph = False
                return None
            self._graphs[n] = g
        return g

    def take_counts(self) -> list[Tensor]:
        """Spike counts since the last call, per neuron ``(B, *out_shape)`` or, with
        ``count_neurons=False``, per stream ``(B,)``; zeroes them."""
        st = self.sim_state
        self.sim_state = dataclasses.replace(st, count=tuple(torch.zeros_like(c)
                                                             for c in st.count))
        return [_from_state(c) for c in st.count]

    @property
    def spikes(self) -> list[Tensor]:
        """Last step's spikes (0/1) per hidden layer, ``(B, *out_shape)``."""
        return [_from_state(s) for s in self.sim_state.spikes]

    @property
    def voltages(self) -> list[Tensor]:
        """Membrane voltages per hidden layer, ``(B, *out_shape)``: each neuron type's
        ``"voltage"`` state variable (its first variable if it declares none)."""
        return [_from_state(neuron_state_now(self, self.sim_state, k)[_voltage_index(n)])
                for k, n in enumerate(self.neurons)]

    def current(self, layer: int) -> Tensor:
        """Hidden layer ``layer``'s input current J (threshold 1) in the last step,
        ``(B, *out_shape)``: the constant one for a layer the analog input alone drives, else
        the filtered synaptic input (a filtering synapse is needed to read it back)."""
        j_in = self.sim_state.j_in[layer]
        if not self.spike_sources[layer]:
            if j_in is None:
                raise RuntimeError("call set_input(x) before reading currents")
            return _from_state(j_in)
        syn = self.sim_state.syn[layer]
        if not syn:
            raise ValueError("currents are read from the synapse state: simulate with a "
                             "lowpass or alpha synapse")
        bias = self.j_bias[layer] if j_in is None else j_in
        return _from_state(self.j_gain[layer] * syn[-1] + bias)

    def neuron_state(self, layer: int) -> dict[str, Tensor]:
        """Hidden layer ``layer``'s state variables by name, each ``(B, *out_shape)``."""
        return {var.name: _from_state(t) for var, t in
                zip(self.neurons[layer].state_vars,
                    neuron_state_now(self, self.sim_state, layer), strict=True)}


@dataclass(frozen=True)
class SimState:
    """Everything a simulation changes, explicit (tensors in the state layout, see
    :class:`Simulator`): per hidden layer the neuron state variables, spike counts, last
    spikes and closed-form schedule (or None); per stage the synapse state (None where no
    spikes arrive) and the constant current set by the analog input (None where it feeds
    nothing); the steps since the last input (the schedules' clock). The functions below
    take a state and return a new one; the Simulator (the plan: maps, gains, biases, decay
    factors, neuron types and the kernels chosen) never changes after construction."""

    neurons: tuple[NeuronState, ...]
    syn: tuple[SynapseState | None, ...]
    count: tuple[Tensor, ...]
    spikes: tuple[Tensor, ...]
    schedules: tuple[Any, ...]
    j_in: tuple[Tensor | None, ...]
    onset_steps: int = 0
    has_input: bool = False


def initial_state(plan: Simulator, seeds: Sequence[int] | None = None,
                  keep_input: SimState | None = None) -> SimState:
    """The state at the start of a stream (see :meth:`Simulator.reset`); with ``keep_input``,
    that state's analog input stays set."""
    b, dev, dtype = plan.batch_size, plan.device, plan.dtype
    seeds = list(range(b)) if seeds is None else list(seeds)
    if len(seeds) != b:
        raise ValueError(f"need {b} seeds, got {len(seeds)}")
    neurons, count = [], []
    gens = [torch.Generator().manual_seed(int(s)) for s in seeds]
    for st, neuron in zip(plan.net.hidden_stages, plan.neurons, strict=True):
        shape = st.out_shape
        variables = []
        for var in neuron.state_vars:  # as the neuron type declares them
            if var.init == "voltage" and plan.init == "uniform":
                # drawn in float32 whatever the precision: every mode starts alike
                t = torch.stack([initial_voltage(shape, "uniform", g)
                                 for g in gens]).to(dtype)
            else:
                t = initial_voltage((b, *shape), "zero", dtype=dtype)
            variables.append(_to_state(t.to(dev)))
        neurons.append(tuple(variables))
        count.append(torch.zeros_like(variables[0]) if plan.count_neurons
                     else torch.zeros(b, dtype=torch.float64, device=dev))
    syn = tuple(
        plan.net.synapse.initial_state(
            _to_state(torch.zeros((b, *st.out_shape), device=dev, dtype=dtype)))
        if plan.spike_sources[k] else None
        for k, st in enumerate(plan.net.stages))
    return SimState(
        neurons=tuple(neurons), syn=syn, count=tuple(count),
        spikes=tuple(torch.zeros_like(v[0]) for v in neurons),
        schedules=(None,) * len(neurons),
        j_in=keep_input.j_in if keep_input is not None else (None,) * len(plan.net.stages),
        onset_steps=0, has_input=keep_input is not None and keep_input.has_input)


def neuron_state_now(plan: Simulator, state: SimState, k: int) -> NeuronState:
    """Hidden layer ``k``'s state variables, from its closed-form schedule where one runs."""
    sched, planner = state.schedules[k], plan.planners[k]
    if sched is None or planner is None:
        return state.neurons[k]
    dtype = state.neurons[k][0].dtype
    return tuple(t.to(dtype) for t in planner.schedule_state(sched,
                                                              state.onset_steps * plan.dt))


def set_input(plan: Simulator, state: SimState, x: Tensor) -> SimState:
    """A new image ``x`` (B, *input_shape): the constant currents it sets, computed once, and
    the closed-form schedules from each population's state at this onset."""
    if tuple(x.shape) != (plan.batch_size, *plan.net.input_shape):
        raise ValueError(
            f"input must have shape {(plan.batch_size, *plan.net.input_shape)}, "
            f"got {tuple(x.shape)}"
        )
    x = x.to(plan.device, plan.dtype)
    if x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    j_in = list(state.j_in)
    for k, st in enumerate(plan.net.stages):
        if -1 in st.sources:  # the spiking sources contribute nothing here
            ins = [x if j < 0 else torch.zeros((plan.batch_size, *plan.net.stages[j].out_shape),
                                               device=plan.device, dtype=plan.dtype)
                   for j in st.sources]
            j_in[k] = plan.j_in_gain[k] * _to_state(plan.linears[k](*ins)) + plan.j_bias[k]
    neurons, schedules = list(state.neurons), list(state.schedules)
    for k, planner in enumerate(plan.planners):  # the new image's spike schedule
        if planner is not None:
            neurons[k] = neuron_state_now(plan, state, k)
            schedules[k] = planner.schedule(cast(Tensor, j_in[k]), neurons[k], plan.dt)
    return dataclasses.replace(state, neurons=tuple(neurons), schedules=tuple(schedules),
                               j_in=tuple(j_in), onset_steps=0, has_input=True)


def step(plan: Simulator, state: SimState, x: Tensor | None = None
         ) -> tuple[Tensor, SimState]:
    """One step of ``dt`` from ``state`` (with ``x``, first set as the input): the readout
    (B, n_out) and the new state. The one step function of streaming; :func:`run_steps`
    performs the same updates for a block of steps, layer after layer."""
    if x is not None:
        state = set_input(plan, state, x)
    if not state.has_input:
        raise RuntimeError("call set_input(x) (or step(x)) before step()")
    # the readout (the last stage) has no neuron state or count
    neurons, count = [*state.neurons, ()], [*state.count, torch.empty(0)]
    syn, spikes, schedules = list(state.syn), list(state.spikes), [*state.schedules, None]
    onset = state.onset_steps + 1
    out = torch.empty(0)
    for k in range(len(plan.net.stages)):
        if not plan.spike_sources[k]:  # driven by the analog input alone: constant current
            s, schedules[k], neurons[k], count[k] = _input_stage(
                plan, k, state.j_in[k], schedules[k], neurons[k], count[k], onset)
        else:
            s, syn[k], neurons[k], count[k] = _spike_stage(
                plan, k, plan.linears[k](*_spike_inputs(plan, k, spikes)), state.j_in[k],
                cast(SynapseState, syn[k]), neurons[k], count[k])
        if k < len(spikes):
            spikes[k] = s
        else:
            out = s
    return out, SimState(neurons=tuple(neurons[:-1]), syn=tuple(syn),
                         count=tuple(count[:-1]), spikes=tuple(spikes),
                         schedules=tuple(schedules[:-1]), j_in=state.j_in, onset_steps=onset,
                         has_input=True)


def _input_stage(plan: Simulator, k: int, j_in: Tensor | None, sched: Any,
                 neuron: NeuronState, count: Tensor, onset: int
                 ) -> tuple[Tensor, Any, NeuronState, Tensor]:
    """Stage ``k``, driven by the analog input alone (a constant current), at step ``onset``
    after the image's onset: (spikes 0/1, or the readout for an output stage; schedule,
    neuron state, count)."""
    assert j_in is not None
    if plan.net.stages[k].neuron is None:
        return j_in, sched, neuron, count
    planner = plan.planners[k]
    if sched is not None and planner is not None:
        t = torch.tensor(onset * plan.dt, dtype=torch.float64, device=plan.device)
        s, sched, count = plan._scheduled_update(planner, sched, t, count, neuron[0].dtype)
        return s, sched, neuron, count
    s, neuron, count = plan._input_update(plan.neurons[k], plan.dt, j_in, neuron, count)
    return s, sched, neuron, count


def _spike_stage(plan: Simulator, k: int, i: Tensor, j_in: Tensor | None, syn: SynapseState,
                 neuron: NeuronState, count: Tensor
                 ) -> tuple[Tensor, SynapseState, NeuronState, Tensor]:
    """Stage ``k`` fed by spikes, one step, given its linear map's output ``i`` on them:
    (spikes 0/1, or the readout for an output stage; synapse state, neuron state, count)."""
    bias = plan.j_bias[k] if j_in is None else j_in
    if plan.net.stages[k].neuron is None:
        out, syn = plan._readout_update(plan.decay, plan.j_gain[k], i, syn, bias)
        return out, syn, neuron, count
    s, syn, neuron, count = plan._hidden_update(
        plan.neurons[k], plan.dt, plan.decay, plan.j_gain[k], _to_state(i), syn, bias, neuron,
        count)
    return s, syn, neuron, count


def _input_block(plan: Simulator, k: int, n: int, j_in: Tensor | None, sched: Any,
                 neuron: NeuronState, count: Tensor, onset: int
                 ) -> tuple[Tensor, Any, NeuronState, Tensor, Tensor]:
    """:func:`_input_stage` for the ``n`` steps after step ``onset``: (spikes or readouts
    (n, B, ...), schedule, neuron state, count, spike count per stream after each step (n, B))."""
    assert j_in is not None
    if plan.net.stages[k].neuron is None:
        return j_in.expand(n, *j_in.shape), sched, neuron, count, torch.empty(0)
    planner = plan.planners[k]
    out = torch.empty((n, *neuron[0].shape), dtype=neuron[0].dtype, device=plan.device)
    tot = torch.empty((n, plan.batch_size), dtype=torch.float64, device=plan.device)
    for c0, c1 in _chunks(n):
        if sched is not None and planner is not None:
            # onset: an int, or a device tensor when replayed as a CUDA graph (graphed.py)
            ts = (torch.arange(c0 + 1, c1 + 1, dtype=torch.float64, device=plan.device)
                  + onset) * plan.dt
            sched, count = plan._scheduled_block(planner, sched, ts, count, out[c0:c1],
                                                 tot[c0:c1])
        else:
            neuron, count = plan._input_block(plan.neurons[k], plan.dt, j_in, neuron, count,
                                              out[c0:c1], tot[c0:c1])
    return out, sched, neuron, count, tot


def _spike_block(plan: Simulator, k: int, i: Tensor, j_in: Tensor | None, syn: SynapseState,
                 neuron: NeuronState, count: Tensor
                 ) -> tuple[Tensor, SynapseState, NeuronState, Tensor, Tensor]:
    """:func:`_spike_stage` for a block, given the map outputs ``i`` (n, B, ...) of its steps
    in the state layout: (spikes or readouts (n, B, ...), synapse state, neuron state, count,
    spike count per stream after each step (n, B))."""
    bias = plan.j_bias[k] if j_in is None else j_in
    n = i.shape[0]
    readout = plan.net.stages[k].neuron is None
    out = torch.empty(i.shape, dtype=bias.dtype if readout else neuron[0].dtype,
                      device=plan.device)
    tot = torch.empty((0,) if readout else (n, plan.batch_size), dtype=torch.float64,
                      device=plan.device)
    for c0, c1 in _chunks(n):
        if readout:
            syn = plan._readout_block(plan.decay, plan.j_gain[k], i[c0:c1], syn, bias,
                                      out[c0:c1])
        else:
            syn, neuron, count = plan._hidden_block(
                plan.neurons[k], plan.dt, plan.decay, plan.j_gain[k], i[c0:c1], syn, bias,
                neuron, count, out[c0:c1], tot[c0:c1])
    return out, syn, neuron, count, tot


#: Steps per call of a compiled block update (:func:`_hidden_layer_block` and its kin): the
#: compiler unrolls them, so compile time grows with this while the state traffic per step
#: falls as 1 / this.
UNROLL_STEPS = 5


def _chunks(n: int) -> list[tuple[int, int]]:
    return [(c, min(c + UNROLL_STEPS, n)) for c in range(0, n, UNROLL_STEPS)]


def run_steps(plan: Simulator, state: SimState, n: int) -> tuple[Tensor, Tensor, SimState]:
    """``n`` steps of ``dt`` from ``state``, layer after layer: each stage's updates for all
    ``n`` steps, its linear map applied once to its sources' spikes of all ``n`` steps (one
    batch of ``n`` x streams, so each weight is read once per block instead of once per step).
    The same updates as ``n`` calls of :func:`step` (a feedforward stage at step t sees its
    sources' spikes of step t either way); only the linear maps' float summation order may
    differ with the batch size. Returns the readouts (n, B, n_out), every hidden layer's
    spike count per stream after each step (n, layers, B) (float64), and the new state.
    (Every stage comes after its sources: :class:`~softlif.convert.SpikingNetwork` checks.)"""
    if not state.has_input:
        raise RuntimeError("call set_input(x) (or step(x)) before run_steps()")
    n_layers, b = len(state.neurons), plan.batch_size
    totals = torch.empty((n, n_layers, b), dtype=torch.float64, device=plan.device)
    # the readout (the last stage) has no neuron state or count
    neurons, count = [*state.neurons, ()], [*state.count, torch.empty(0)]
    syn, spikes, schedules = list(state.syn), list(state.spikes), [*state.schedules, None]
    seqs: list[Tensor | None] = [None] * n_layers  # per hidden layer: its spikes, (n * B, ...)
    outs = torch.empty(0)
    for k in range(len(plan.net.stages)):
        if plan.spike_sources[k]:
            i = _to_state(plan.linears[k](*_spike_inputs(plan, k, seqs, rows=n * b)))
            seq, syn[k], neurons[k], count[k], tot = _spike_block(
                plan, k, i.reshape(n, b, *i.shape[1:]), state.j_in[k],
                cast(SynapseState, syn[k]), neurons[k], count[k])
        else:
            seq, schedules[k], neurons[k], count[k], tot = _input_block(
                plan, k, n, state.j_in[k], schedules[k], neurons[k], count[k],
                state.onset_steps)
        if k < n_layers:
            totals[:, k] = tot
            spikes[k] = seq[-1]
            seqs[k] = seq.reshape(n * b, *seq.shape[2:])
        else:
            outs = seq
    return outs, totals, SimState(
        neurons=tuple(neurons[:-1]), syn=tuple(syn), count=tuple(count[:-1]),
        spikes=tuple(spikes), schedules=tuple(schedules[:-1]), j_in=state.j_in,
        onset_steps=state.onset_steps + n,
        has_input=True)


#: Memory a block of :func:`run_steps` may hold in spikes and linear-map outputs (bytes):
#: 128 MiB is 10 steps of the CIFAR-10 net at batch 32 and 19 of the MNIST net (15 taken).
BLOCK_BYTES = 128 * 2**20
#: The longest block: past ~20 steps a bigger batch no longer speeds the linear maps up (one
#: ad-hoc timing of the MNIST fc map on pooled spikes: 9.1 / 2.8 / 2.5 ms per step of batch
#: 32 at blocks of 1 / 10 / 20 steps; the paper's conv2 layers gained nothing at any block).
MAX_BLOCK_STEPS = 25


def auto_block_steps(net: SpikingNetwork, batch_size: int) -> int:
    """Steps per block of :func:`run_steps` for ``batch_size`` streams: as many as fit
    :data:`BLOCK_BYTES` (each hidden layer's spikes and linear-map output, float32), at most
    :data:`MAX_BLOCK_STEPS`, at least 1; a multiple of :data:`UNROLL_STEPS` where that many
    fit, so that every call of the compiled block updates has one length (each new length
    costs a compilation)."""
    per_step = 2 * 4 * batch_size * sum(net.neurons_per_layer)
    n = max(1, min(MAX_BLOCK_STEPS, BLOCK_BYTES // max(per_step, 1)))
    return n - n % UNROLL_STEPS if n >= UNROLL_STEPS else n


def _stream_total(count: Tensor) -> Tensor:
    """A layer's spike count per stream (B,), float64, from either count layout."""
    return count if count.dim() == 1 else count.flatten(1).sum(1, dtype=torch.float64)


def _spike_inputs(plan: Simulator, k: int, spikes: Sequence[Tensor | None],
                  rows: int | None = None) -> list[Tensor]:
    """The tensors stage ``k``'s linear map takes: its sources' last spikes (0/1, or times
    their amplitudes where those differ), zeros for the analog input; ``rows``: their batch
    size (default the plan's; :func:`run_steps` passes steps x streams)."""
    st, scale = plan.net.stages[k], plan.source_scale[k]
    dtype = plan.linear_dtypes[k]
    ins = []
    for j in st.sources:
        if j < 0:
            ins.append(torch.zeros((rows or plan.batch_size, *plan.net.input_shape),
                                   device=plan.device, dtype=dtype))
            continue
        x = _from_state(cast(Tensor, spikes[j]).to(dtype))
        ins.append(x if scale is None else x * scale[plan.spike_sources[k].index(j)])
    return ins


def _voltage_index(neuron: NeuronType) -> int:
    return next((i for i, v in enumerate(neuron.state_vars) if v.init == "voltage"), 0)


def _to_state(t: Tensor) -> Tensor:
    """(B, C, H, W) -> contiguous (B, H, W, C) (free if ``t`` is channels-last); else as is."""
    return t.permute(0, 2, 3, 1).contiguous() if t.dim() == 4 else t


def _from_state(t: Tensor) -> Tensor:
    """(B, H, W, C) -> (B, C, H, W) channels-last view (no copy); else as is."""
    return t.permute(0, 3, 1, 2) if t.dim() == 4 else t


def _prepare_linear(m: nn.Module, device: torch.device, dtype: torch.dtype,
                    crossover: float | None = None, split_int8: bool = False) -> nn.Module:
    """A private copy of a stage's linear map, on ``device`` in ``dtype``, convs channels-last;
    with ``crossover``, a map ending in a fully connected layer becomes event-driven
    (:class:`EventDrivenLinear`); else with ``split_int8`` (0/1 spike inputs), a map of
    pooling then one conv or fully connected layer runs in split 8-bit integer arithmetic
    (:class:`~softlif.split_int8.SplitInt8Map`)."""
    m = copy.deepcopy(m).to(device=device, dtype=dtype)
    for sub in m.modules():
        if isinstance(sub, nn.Conv2d):
            sub.weight.data = sub.weight.data.contiguous(memory_format=torch.channels_last)
    if crossover is not None and isinstance(m, nn.Sequential) and len(m) \
            and isinstance(m[-1], nn.Linear) and m[-1].bias is None:
        return EventDrivenLinear(m[:-1], m[-1].weight, crossover)
    if split_int8:
        return split_int8_map(m) or m
    return m


def event_crossover() -> float:
    """Input density below which a fully connected layer on spikes sums only its active
    inputs' weights: measured once per machine and cached (:func:`softlif.hardware.calibration`;
    ``benchmarks/bench_event_driven.py`` measures it on the paper's layers: 5-7% on an AMX
    Xeon, where a constant 4% was used before)."""
    return calibration().event_crossover


class EventDrivenLinear(nn.Module):
    """A stage's linear map ending in a fully connected layer, run event-driven: the layers
    before it (pooling, flattening) as usual, then, where fewer than ``crossover`` of the
    inputs are nonzero in this step, the weight rows of the active inputs summed (a CSR
    sparse-dense product) instead of the dense product. Exact up to the order of the float
    additions; ``sparse_calls`` / ``dense_calls`` count the paths taken."""

    def __init__(self, pre: nn.Module, weight: Tensor, crossover: float) -> None:
        super().__init__()
        self.pre = pre
        self.register_buffer("weight_t", weight.detach().t().contiguous())
        self.crossover = float(crossover)
        self.sparse_calls = 0
        self.dense_calls = 0

    def forward(self, x: Tensor) -> Tensor:
        h = self.pre(x)
        h = h.reshape(h.shape[0], -1)
        if int(torch.count_nonzero(h)) <= self.crossover * h.numel():
            self.sparse_calls += 1
            if self.sparse_calls > 1:
                return torch.sparse.mm(h.to_sparse_csr(), self.weight_t)
            with warnings.catch_warnings():  # torch's once-per-process "CSR is beta" notice
                warnings.filterwarnings("ignore", message="Sparse CSR tensor support")
                return torch.sparse.mm(h.to_sparse_csr(), self.weight_t)
        self.dense_calls += 1
        return h @ self.weight_t


@dataclass
class SimResult:
    """What a simulation recorded.

    outputs: per-step readout ``[T, N, n_out]`` (time-major), T = steps per image.
    layer_counts: spikes per image and hidden layer ``[N, L]``.
    neurons_per_layer: neurons in each hidden layer.
    dt, presentation_time: seconds.
    neuron_counts: per-neuron spike counts for the first images if asked (list over layers of
    ``[n, *shape]``), else None.
    layer_step_counts: spikes of all images per step of the presentation and hidden layer
    ``[T, L]`` (step k ends at (k + 1) dt), for rates over a window; None if not recorded.
    """

    outputs: Tensor
    layer_counts: Tensor
    neurons_per_layer: list[int]
    dt: float
    presentation_time: float
    neuron_counts: list[Tensor] | None = None
    layer_step_counts: Tensor | None = None

    @property
    def steps(self) -> int:
        return int(self.outputs.shape[0])

    def window_slice(self, c0: float, c1: float) -> slice:
        """Steps whose end time t satisfies c0 < t <= c1 (seconds)."""
        if not (0 <= c0 < c1 <= self.presentation_time + 1e-12):
            raise ValueError(
                f"window must satisfy 0 <= c0 < c1 <= presentation_time "
                f"({self.presentation_time} s), got c0={c0}, c1={c1}"
            )
        return slice(int(round(c0 / self.dt)), int(round(c1 / self.dt)))

    def predictions(self, c0: float = 0.0, c1: float | None = None) -> Tensor:
        """Class index per image: argmax of the mean readout over the window [c0, c1] (s)."""
        c1 = self.presentation_time if c1 is None else c1
        return self.outputs[self.window_slice(c0, c1)].mean(0).argmax(-1)

    def error(self, labels: Tensor, c0: float = 0.0, c1: float | None = None) -> float:
        """Classification error (fraction) over the window [c0, c1] (s): the exact count of
        wrong images over their number, in float64 (so 34 of 1,000 is 0.034, not 0.0340000018)."""
        wrong = int((self.predictions(c0, c1) != labels.to(self.outputs.device)).sum())
        return wrong / len(labels)

    def error_vs_c1(self, labels: Tensor, c0: float) -> tuple[Tensor, Tensor]:
        """Error for every c1 > c0 at this step size (one cumulative sum): (c1 [s], error)."""
        start = int(round(c0 / self.dt))
        csum = self.outputs[start:].cumsum(0)  # mean and sum have the same argmax
        wrong = (csum.argmax(-1) != labels.to(csum.device)[None]).sum(1).to(torch.float64)
        # step k ends at k * dt: rounded to the nanosecond, so 102 ms reads 0.102 in JSON
        c1 = (torch.arange(start + 1, self.steps + 1, dtype=torch.float64) * self.dt).round(
            decimals=9)
        return c1, wrong / len(labels)

    def firing_rates(self, c0: float | None = None, c1: float | None = None) -> list[float]:
        """Mean firing rate (Hz) of each hidden layer over all images, over the whole
        presentation or, with ``c0``/``c1`` (s), over the window c0 < t <= c1 of each image's
        presentation (the settled part, say, rather than the onset transient)."""
        n_img = self.layer_counts.shape[0]
        if c0 is None and c1 is None:
            return [float(self.layer_counts[:, k].sum()) / (n * n_img * self.presentation_time)
                    for k, n in enumerate(self.neurons_per_layer)]
        if self.layer_step_counts is None:
            raise ValueError("this result has no per-step layer counts (simulated by an older "
                             "softlif): rates are known for the whole presentation only")
        lo, hi = (0.0 if c0 is None else c0), (self.presentation_time if c1 is None else c1)
        window = self.layer_step_counts[self.window_slice(lo, hi)].sum(0)
        return [float(window[k]) / (n * n_img * (hi - lo))
                for k, n in enumerate(self.neurons_per_layer)]


def stream_layout(n: int, batch_size: int, reset: bool,
                  stream_length: int | None = None) -> tuple[int, int]:
    """(images per stream, number of streams) that :func:`simulate` uses for ``n`` images:
    one image per stream with ``reset``, else ``stream_length`` (default: ``n`` split evenly
    over ``batch_size`` streams)."""
    if reset:
        stream_length = 1
    elif stream_length is None:
        stream_length = math.ceil(n / batch_size)
    if stream_length < 1:
        raise ValueError(f"stream_length must be >= 1, got {stream_length}")
    return stream_length, math.ceil(n / stream_length)


@torch.no_grad()
def simulate(
    net: SpikingNetwork,
    images: Tensor,
    presentation_time: float = 0.2,
    dt: float = 0.001,
    batch_size: int = 32,
    reset: bool = False,
    stream_length: int | None = None,
    init: InitMode = "zero",
    fused: bool = False,
    precision: Precision = "auto",
    keep_neuron_counts: int = 0,
    progress: bool = False,
    device: torch.device | str | None = None,
    first_stream: int = 0,
    closed_form: bool = True,
    event_driven: bool | None = None,
    block_steps: int | None = None,
    split_int8: bool | None = None,
    cuda_graph: bool | None = None,
) -> SimResult:
    """Simulate the spiking net on ``images`` (N, *input_shape), already preprocessed.

    presentation_time, dt: seconds. reset: reset the state before every image (else images are
    shown back to back within a stream). stream_length: images per stream (default: N split
    evenly over ``batch_size`` streams); stream ``i`` gets seed ``i`` for ``init="uniform"``.
    keep_neuron_counts: keep per-neuron spike counts for the first this-many images.
    first_stream: global index of the first stream (its seed), when ``images`` are a block of
    whole streams of a larger run (:mod:`softlif.distributed` shards streams so).
    closed_form: populations driven by the analog input alone take their spikes from the
    closed form of a constant current where the neuron type offers it (LIF with
    ``tau_ref >= dt``): the step integrator's spikes without its exp and log per step.
    event_driven: fully connected maps on spikes sum only the active inputs' weights in steps
    where fewer than :func:`event_crossover` of their inputs are nonzero (measured once on this
    machine; :class:`EventDrivenLinear`; exact up to float summation order); None (default): on
    for CPU, off for GPUs.
    block_steps: steps run layer after layer as one block (:func:`run_steps`: each linear map
    sees the spikes of the whole block as one batch); 1 runs step by step (:func:`step`);
    None (default): :func:`auto_block_steps`.
    split_int8: linear maps on 0/1 spikes (pooling then one conv or fully connected layer) in
    8-bit integer arithmetic with each weight split in three parts, to float32 accuracy
    (:mod:`softlif.split_int8`); None (default): on for float32 on a CPU with int8 dot-product
    instructions (VNNI, AMX; :attr:`softlif.hardware.Machine.native_int8_dot`).
    precision: ``"auto"`` (default) = ``"float32"`` (:func:`sim_precision`); ``"bfloat16"``
    linear maps on spikes (faster where native, not exact); ``"float64"`` the reference.
    cuda_graph: each block of steps replayed as one recorded CUDA graph
    (:mod:`softlif.graphed`: the same kernels without a launch from Python each); None
    (default): on for CUDA devices.
    """
    n = images.shape[0]
    if n == 0:
        raise ValueError("no images to simulate")
    precision = cast(Precision, sim_precision(precision))
    steps = int(round(presentation_time / dt))
    if steps < 1 or abs(steps * dt - presentation_time) > 1e-9 * max(1.0, presentation_time):
        raise ValueError(
            f"presentation_time ({presentation_time} s) must be a positive whole number of "
            f"steps of dt ({dt} s)"
        )
    stream_length, n_streams = stream_layout(n, batch_size, reset, stream_length)
    out_dev = torch.device("cpu")
    outputs = torch.empty((steps, n, net.n_outputs), device=out_dev,
                          dtype=torch.float64 if precision == "float64" else torch.float32)
    layer_counts = torch.zeros((n, len(net.hidden_stages)), dtype=torch.float64)
    step_counts = torch.zeros((steps, len(net.hidden_stages)), dtype=torch.float64)
    kept: list[Tensor] | None = None
    if keep_neuron_counts:
        kept = [torch.zeros((min(keep_neuron_counts, n), *st.out_shape))
                for st in net.hidden_stages]

    block = block_steps if block_steps is not None else auto_block_steps(net, batch_size)
    if block < 1:
        raise ValueError(f"block_steps must be >= 1, got {block}")
    sims: dict[int, Simulator] = {}
    bar = tqdm(total=n * steps, disable=not progress, unit="step", unit_scale=True,
               desc="simulate", leave=False)
    for first in range(0, n_streams, batch_size):
        streams = list(range(first, min(first + batch_size, n_streams)))
        b = len(streams)
        if b not in sims:
            sims[b] = Simulator(net, b, dt, init, fused, precision, device,
                                count_neurons=keep_neuron_counts > 0, closed_form=closed_form,
                                event_driven=event_driven, split_int8=split_int8,
                                cuda_graph=cuda_graph)
        sim = sims[b]
        sim.reset(seeds=[first_stream + st for st in streams])
        for pos in range(stream_length):
            # image index per stream; streams that have run out repeat their last image and
            # their outputs are discarded
            idx = [min(st * stream_length + pos, n - 1, (st + 1) * stream_length - 1)
                   for st in streams]
            live = [st * stream_length + pos < min(n, (st + 1) * stream_length) for st in streams]
            if not any(live):
                break
            if reset and pos > 0:
                sim.reset(seeds=[first_stream + st for st in streams])
            sim.set_input(images[idx])
            out_steps = torch.empty((steps, b, net.n_outputs), device=sim.device,
                                    dtype=outputs.dtype)
            live_b = [i for i, ok in enumerate(live) if ok]
            rows = torch.tensor(live_b, device=sim.device)
            running = torch.zeros((steps + 1, len(sim.sim_state.count)), dtype=torch.float64,
                                  device=sim.device)  # spikes since the onset, live streams
            for t in range(0, steps, block):
                nb = min(block, steps - t)
                out_steps[t:t + nb], totals = sim.run(nb)
                running[t + 1:t + nb + 1] = totals.index_select(2, rows).sum(2)
            step_counts += running.diff(dim=0).cpu()
            counts = sim.take_counts()
            img = torch.tensor([idx[i] for i in live_b])
            outputs[:, img] = out_steps[:, live_b].to(out_dev)
            for k, c in enumerate(counts):
                per_image = _stream_total(c).to("cpu")
                layer_counts[img, k] = per_image[live_b]
                if kept is not None and c.dim() > 1:
                    for bi in live_b:
                        if idx[bi] < kept[k].shape[0]:
                            kept[k][idx[bi]] = c[bi].cpu()
            bar.update(len(live_b) * steps)
    bar.close()
    return SimResult(outputs, layer_counts, net.neurons_per_layer, float(dt),
                     float(steps * dt), kept, step_counts)
