"""NIR export and import: hand a spiking net to other simulators and hardware, and read one back.

NIR (the Neuromorphic Intermediate Representation, package ``nir``) describes a network as a
graph of continuous-time nodes joined by identity edges; the edges into a node are summed. It is
how snnTorch, Norse, Sinabs, Rockpool, Lava and SpiNNaker 2 exchange networks.

:func:`to_nir` writes a :class:`~softlif.convert.SpikingNetwork` as

* ``input`` -> linear nodes -> ``pop0`` (the first population: the analog input is not filtered);
* each population ``popK`` is a ``nir.LIF`` (``tau = tau_rc``, ``r = gain``, ``v_threshold = 1``,
  ``v_reset = 0``, and ``v_leak`` an array holding the neuron's bias plus the layer biases
  times the gain: the same current ``J`` as softlif's) or a ``nir.IF`` (``r = gain / tau``; the
  constant current goes into the bias of the population's last linear node);
* its synapse ``synK`` sits on the population's output: ``nir.CubaLI`` with
  ``tau_syn = tau_mem = tau`` for the alpha synapse (a cascade of two unit-DC-gain lowpass
  filters is exactly the alpha filter), ``nir.LI`` for lowpass, ``nir.Scale`` for none. A spike
  is 1 for one time step of ``dt``; its weight ``amplitude / dt`` (softlif's spike height) is
  folded into the synapse node (``w_in`` of CubaLI, ``r`` of LI, the factor of Scale), so the
  following linear nodes hold the trained weights unchanged;
* linear nodes: ``Conv2d``, ``Linear``/``Affine``, ``AvgPool2d``, ``Flatten``, ``Scale``; a
  residual addition is two edges into one node; ``output`` is the readout.

Filtering each population's spikes before the weights equals softlif's filtering after them
(both are linear and time-invariant), so the graph is the same system.

What NIR cannot express (the exporter warns): the refractory period (NIR's LIF and IF have none;
softlif writes ``tau_ref`` and the whole neuron into each population node's metadata and ``dt``
into the graph's), softlif's exact sub-step spike timing (a simulator integrating NIR with Euler
steps spikes at step boundaries), and softlif's clipping of ``v`` at 0 from below. Locally
connected layers and channel concatenation have no NIR node: the exporter refuses them with the
layer's name.

:func:`from_nir` reads such a graph back (with its metadata: the same neurons, tau_ref
included) and also reads graphs of ``LIF``/``IF`` populations written by other tools (no
metadata: ``tau_ref = 0``, spikes of weight 1). Requires ``pip install softlif[nir]``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import operator
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from .convert import ConversionError, SpikingNetwork, Stage
from .graph import _without_biases, trace
from .layers import LocallyConnected2d
from .neurons import IF, LIF, NeuronType, neuron_from_dict, neuron_to_dict
from .synapses import Synapse

if TYPE_CHECKING:
    import nir

#: What NIR cannot express; printed by :func:`to_nir` and quoted in the README.
NIR_LIMITS = (
    "NIR has no refractory period (softlif stores each population's tau_ref and neuron in the "
    "node metadata, which other tools ignore), no sub-step spike timing (Euler simulators spike "
    "at step boundaries), and no clipping of v at 0; spikes are 1 per step of dt with their "
    "weight amplitude/dt in the synapse node. Other simulators will give similar, not "
    "identical, spikes.")


def _nir() -> Any:
    try:
        import nir
    except ImportError as e:  # an optional dependency
        raise ImportError("NIR export and import need the `nir` package: pip install "
                          "'softlif[nir]' (or pip install nir)") from e
    return nir


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float64).numpy().astype(np.float32)


def _pair(v: int | Sequence[int]) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


class _Exporter:
    """Builds the NIR nodes and edges of one network."""

    def __init__(self, nir_mod: Any, input_shape: tuple[int, ...]):
        self.nir = nir_mod
        self.nodes: dict[str, Any] = {}
        self.edges: list[tuple[str, str]] = []
        self.shapes: dict[str, tuple[int, ...]] = {"input": input_shape}  # one sample's

    def add(self, name: str, node: Any, inputs: Sequence[str] = ()) -> str:
        self.nodes[name] = node
        self.connect(inputs, name)
        return name

    def connect(self, producers: Sequence[str], target: str) -> None:
        """Edges from ``producers`` (whose sum is the signal) into ``target``; a producer
        counted m times goes through a Scale(m), since NIR's edges are a set."""
        for p, m in Counter(producers).items():
            if m == 1:
                self.edges.append((p, target))
            else:
                shape = self.shapes[p]
                s = self.add(f"{target}.x{m}.{p}", self.nir.Scale(
                    scale=np.full(shape, float(m), np.float32)), [p])
                self.edges.append((s, target))


def _linear_graph(linear: nn.Module, in_shapes: Sequence[tuple[int, ...]]) -> fx.GraphModule:
    gm = trace(linear)
    ShapeProp(gm).propagate(*[torch.zeros((1, *s)) for s in in_shapes])
    return gm


def _shape(n: fx.Node) -> tuple[int, ...] | None:
    meta = n.meta.get("tensor_meta")
    return None if meta is None or not hasattr(meta, "shape") else tuple(meta.shape)[1:]


_ADD = {operator.add, torch.add}
_FLATTEN_FUNCS = {torch.flatten, torch.reshape}
_FLATTEN_METHODS = {"flatten", "view", "reshape"}
_PASS_METHODS = {"contiguous"}


def _export_stage(ex: _Exporter, k: int, stage: Stage, source_nodes: list[list[str]]
                  ) -> list[str]:
    """Write the stage's linear part; returns the producers whose sum is its output."""
    nir = ex.nir
    gm = _linear_graph(stage.linear, stage.in_shapes or (stage.in_shape,))
    env: dict[fx.Node, list[str]] = {}
    placeholders = iter(source_nodes)
    where = f"layer(s) {', '.join(stage.layer_names)}"

    def new(label: str, node: Any, inputs: list[str], shape: tuple[int, ...]) -> list[str]:
        name = f"l{k}.{label}"
        i = 1
        while name in ex.nodes:
            i += 1
            name = f"l{k}.{label}.{i}"
        ex.add(name, node, inputs)
        ex.shapes[name] = shape
        return [name]

    def refuse(what: str) -> ConversionError:
        return ConversionError(f"to_nir: {what} in {where} has no NIR equivalent")

    for n in gm.graph.nodes:
        shape = _shape(n)
        args = [a for a in n.args if isinstance(a, fx.Node)]
        if n.op == "placeholder":
            env[n] = list(next(placeholders))
        elif n.op == "output":
            return env[n.args[0]]  # type: ignore[index]
        elif shape is None:  # a shape read (x.size(0)): no signal
            continue
        elif n.op == "call_module":
            m = gm.get_submodule(str(n.target))
            src = env[args[0]]
            in_shape = _shape(args[0])
            assert in_shape is not None
            if isinstance(m, (nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d)):
                env[n] = src
            elif isinstance(m, nn.Conv2d):
                if m.padding_mode != "zeros":
                    raise refuse(f"Conv2d {n.target} with padding_mode={m.padding_mode!r}")
                padding = m.padding if isinstance(m.padding, str) else _pair(m.padding)
                env[n] = new(str(n.target), nir.Conv2d(
                    input_shape=in_shape[1:], weight=_np(m.weight), stride=_pair(m.stride),
                    padding=padding, dilation=_pair(m.dilation), groups=m.groups,
                    bias=np.zeros(m.out_channels, np.float32)), src, shape)
            elif isinstance(m, nn.Linear):
                if len(in_shape) != 1:
                    raise refuse(f"Linear {n.target} on a {len(in_shape)}-d input")
                env[n] = new(str(n.target), nir.Linear(weight=_np(m.weight)), src, shape)
            elif isinstance(m, (nn.AvgPool2d, nn.AdaptiveAvgPool2d)):
                if isinstance(m, nn.AdaptiveAvgPool2d):
                    out = _pair(m.output_size)  # type: ignore[arg-type]
                    if any(i % o for i, o in zip(in_shape[1:], out, strict=True)):
                        raise refuse(f"AdaptiveAvgPool2d {n.target} to {out} from "
                                     f"{in_shape[1:]} (not an even division)")
                    kernel = stride = tuple(i // o for i, o in zip(in_shape[1:], out,
                                                                   strict=True))
                    padding = (0, 0)
                else:
                    kernel, padding = _pair(m.kernel_size), _pair(m.padding)
                    stride = _pair(m.stride if m.stride is not None else m.kernel_size)
                    floor = tuple((i - kk) // ss + 1
                                  for i, kk, ss in zip(in_shape[1:], kernel, stride, strict=True))
                    if m.divisor_override or any(padding) or shape[1:] != floor:  # type: ignore[index]
                        raise refuse(f"AvgPool2d {n.target} with padding or a ceil_mode that "
                                     "adds a partial window (NIR does not say how those count)")
                env[n] = new(str(n.target), nir.AvgPool2d(
                    kernel_size=np.array(kernel), stride=np.array(stride),
                    padding=np.array(padding)), src, shape)
            elif isinstance(m, nn.Flatten):
                env[n] = _flatten(new, str(n.target), src, in_shape, shape, refuse)
            elif isinstance(m, LocallyConnected2d):
                raise refuse(f"the locally connected layer {n.target}")
            else:
                raise refuse(f"{type(m).__name__} {n.target}")
        elif n.target in _ADD or n.target == "add":
            if len(args) != 2 or n.kwargs.get("alpha", 1) != 1:
                raise refuse(f"the addition {n.name}")
            env[n] = env[args[0]] + env[args[1]]
        elif n.target in (operator.sub, torch.sub, "sub", operator.neg, torch.neg, "neg"):
            neg = args[-1]
            neg_shape = _shape(neg)
            assert neg_shape is not None
            scaled = new(f"neg.{n.name}", nir.Scale(scale=np.full(neg_shape, -1.0, np.float32)),
                         env[neg], shape)
            env[n] = (env[args[0]] if len(args) == 2 else []) + scaled
        elif n.target in (operator.mul, torch.mul, "mul", operator.truediv, torch.div, "div"):
            const = next((a for a in n.args if isinstance(a, (int, float))), None)
            if len(args) != 1 or const is None:
                raise refuse(f"the product {n.name} (only a signal times a number)")
            factor = 1.0 / const if n.target in (operator.truediv, torch.div, "div") \
                else float(const)
            env[n] = new(f"scale.{n.name}", nir.Scale(scale=np.full(shape, factor, np.float32)),
                         env[args[0]], shape)
        elif n.target in _FLATTEN_FUNCS or n.target in _FLATTEN_METHODS:
            in_shape = _shape(args[0])
            assert in_shape is not None
            env[n] = _flatten(new, n.name, env[args[0]], in_shape, shape, refuse)
        elif n.target in _PASS_METHODS or n.target is F.dropout:
            env[n] = env[args[0]]
        else:
            name = getattr(n.target, "__name__", str(n.target))
            raise refuse(f"the operation {name} (node {n.name})")
    raise AssertionError("linear graph without output")  # pragma: no cover


def _flatten(new: Callable, label: str, src: list[str], in_shape: tuple[int, ...],
             shape: tuple[int, ...] | None, refuse: Callable) -> list[str]:
    if shape == in_shape:
        return src
    if shape != (math.prod(in_shape),):
        raise refuse(f"the reshape {label} to {shape} (only flattening every dimension)")
    nir = _nir()
    return new(label, nir.Flatten(input_type={"input": np.array(in_shape)}, start_dim=0,
                                  end_dim=-1), src, shape)


def _add_constant(ex: _Exporter, producers: list[str], const: torch.Tensor, what: str) -> None:
    """Add the constant ``const`` (one sample's shape) to the signal summed from ``producers``
    through the bias of its last Linear (made Affine) or Conv2d (a per-channel constant)."""
    if not bool(const.abs().gt(0).any()):
        return
    nir = ex.nir
    owners = [p for p in producers if isinstance(ex.nodes[p], (nir.Linear, nir.Conv2d))]
    if owners:
        p = owners[0]
        node = ex.nodes[p]
        if isinstance(node, nir.Linear):
            ex.nodes[p] = nir.Affine(weight=node.weight, bias=_np(const.reshape(-1)))
            return
        per_channel = const.reshape(const.shape[0], -1)
        if bool((per_channel == per_channel[:, :1]).all()):
            node.bias = _np(per_channel[:, 0])
            return
    raise ConversionError(
        f"to_nir: {what} needs a constant input current that NIR cannot hold (NIR's IF and "
        "the readout have no bias of their own, and the last linear node is not a Linear or "
        "a Conv2d with a per-channel bias)")


def to_nir(snn: SpikingNetwork, dt: float = 0.001, *, target: str = "nir",
           warn: bool = True) -> nir.NIRGraph:
    """Export a spiking net as a ``nir.NIRGraph`` (see the module docstring for the mapping).

    dt: the time step (s) that a spike lasts; spikes of neurons with ``amplitude`` carry weight
    ``amplitude / dt``. target: ``"nir"`` (default) writes the exact graph; ``"norse"`` or
    ``"snntorch"`` writes the same dynamics (under Euler steps of ``dt``) in the node kinds and
    conventions that tool's NIR importer reads, and refuses what it cannot read
    (:data:`TARGET_NOTES`). warn: emit a warning naming what NIR cannot express
    (:data:`NIR_LIMITS`). Raises :class:`~softlif.convert.ConversionError` for layers with no
    NIR node (locally connected layers, concatenation) or, with a target, for what that tool
    cannot read (naming the node and the reason).
    """
    if not (isinstance(dt, (int, float)) and math.isfinite(dt) and dt > 0):
        raise ValueError(f"dt must be a positive number of seconds, got {dt!r}")
    if target not in TARGETS:
        raise ValueError(f"target must be one of {', '.join(TARGETS)}, got {target!r}")
    nir = _nir()
    ex = _Exporter(nir, tuple(snn.input_shape))
    ex.add("input", nir.Input(input_type={"input": np.array(snn.input_shape)}))
    syn = snn.synapse
    outputs: list[str] = []
    for k, stage in enumerate(snn.stages):
        sources = [["input"] if j < 0 else [f"syn{j}"] for j in stage.sources]
        producers = _export_stage(ex, k, stage, sources)
        neuron = stage.neuron
        if neuron is None:
            _add_constant(ex, producers, stage.bias.cpu(), "the readout")
            outputs = producers
            continue
        shape = stage.out_shape
        ones = np.ones(shape)  # float64: the neuron and synapse constants read back exactly
        meta = {"softlif_neuron": json.dumps(neuron_to_dict(neuron)),
                "tau_ref": float(neuron.tau_ref)}
        if isinstance(neuron, LIF):
            v_leak = neuron.gain * stage.bias.cpu().double() + neuron.bias
            node = nir.LIF(tau=ones * neuron.tau_rc, r=ones * neuron.gain,
                           v_leak=v_leak.numpy(), v_threshold=ones, v_reset=0 * ones,
                           metadata=meta)
        elif isinstance(neuron, IF):
            _add_constant(ex, producers, stage.bias.cpu().double()
                          + (neuron.bias - 1.0) / neuron.gain, f"population {k} (IF)")
            node = nir.IF(r=ones * (neuron.gain / neuron.tau), v_threshold=ones,
                          v_reset=0 * ones, metadata=meta)
        else:
            raise ConversionError(
                f"to_nir: population {k} has {type(neuron).__name__} neurons, which no NIR "
                "node describes (NIR's neuron nodes are LIF, IF and CubaLIF, without "
                "adaptation or fixed-point arithmetic); export a net of LIF or IF neurons")
        ex.add(f"pop{k}", node, producers)
        weight = neuron.amplitude / dt
        if syn.order == 2:
            filt = nir.CubaLI(tau_syn=ones * syn.tau, tau_mem=ones * syn.tau, r=ones,
                              v_leak=0 * ones, w_in=ones * weight)
        elif syn.order == 1:
            filt = nir.LI(tau=ones * syn.tau, r=ones * weight, v_leak=0 * ones)
        else:
            filt = nir.Scale(scale=ones * weight)
        ex.add(f"syn{k}", filt, [f"pop{k}"])
        ex.shapes[f"pop{k}"] = ex.shapes[f"syn{k}"] = shape
    ex.add("output", nir.Output(output_type={"output": np.array(snn.stages[-1].out_shape)}))
    ex.connect(outputs, "output")
    if warn:
        warnings.warn(f"to_nir: {NIR_LIMITS}", stacklevel=2)
    meta = {"softlif_dt_s": float(dt), "softlif_synapse": json.dumps(dataclasses.asdict(syn)),
            "softlif_note": NIR_LIMITS}
    graph = nir.NIRGraph(nodes=ex.nodes, edges=ex.edges, metadata=meta)
    return graph if target == "nir" else _for_tool(graph, target, dt)


# ------------------------------------------------------------------------- target profiles

#: what ``to_nir(..., target=...)`` can write: the exact graph, or one a tool's importer reads
TARGETS = ("nir", "norse", "snntorch")

#: per target profile: what it changes from the exact graph, what it loses, what it refuses
#: (quoted in the docs and the README's NIR section)
TARGET_NOTES = {
    "nir": "the exact graph (module docstring); readers must implement NIR's node equations",
    "norse": (
        "for norse.torch.from_nir(graph, dt=dt) (Norse 1.1): each Scale (the spikes' weight "
        "amplitude/dt) folded into the next Conv2d/Linear weights; AvgPool2d written as "
        "SumPool2d with 1/(kernel area) folded alike; each LIF's r and each IF's r*dt folded "
        "into the weights and bias feeding it (Norse ignores r and reads IF as v += input); "
        "Flatten's start_dim counted with the batch dimension (how torch.nn.Flatten, which "
        "Norse builds from it, counts). Same dynamics as the exact graph under Euler steps of "
        "dt (no refractory period, spikes at step boundaries, v not clipped at 0). Refused: "
        "synapses (Norse reads no LI or CubaLI node; its CubaLIF filters with the neuron's "
        "v_leak), nets that are not a chain (sums, branches)."),
    "snntorch": (
        "for snntorch.import_nir.import_from_nir (snnTorch 1.0): the same Scale folding and "
        "Flatten convention as Norse; each LIF's input scale r*dt/tau and its v_leak*dt/tau "
        "folded into the weights and bias feeding it, and its tau and r rescaled so that "
        "snnTorch's fixed dt of 0.1 ms gives beta = 1 - dt/tau (v_leak 0, w_scale 1); each IF "
        "written as a LIF with beta = 1 in float32 (snnTorch reads an IF node as a leaky neuron "
        "with beta 0.9) and r*dt folded into its inputs. Same dynamics as the exact graph under "
        "Euler steps of dt, as for Norse. Refused: synapses (snnTorch's CubaLIF needs "
        "r = tau_mem/0.1 ms and has no unfiltered-spike form of softlif's filters), nets that "
        "are not a chain."),
}

_SNNTORCH_DT = 1e-4  # the time step snnTorch's importer assumes for LIF nodes (s)
_SNNTORCH_IF_TAU = 1e4  # s: beta = 1 - 1e-8, which is 1.0 in float32


def _for_tool(graph: Any, target: str, dt: float) -> Any:
    """The exact graph ``to_nir`` built, rewritten into what ``target``'s importer reads (see
    :data:`TARGET_NOTES`): the same dynamics under Euler steps of ``dt``."""
    nir = _nir()
    nodes: dict[str, Any] = dict(graph.nodes)
    preds: dict[str, list[str]] = {n: [] for n in nodes}
    succs: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in graph.edges:
        preds[b].append(a)
        succs[a].append(b)

    def refuse(node: str, why: str) -> ConversionError:
        return ConversionError(f"to_nir(target={target!r}): node {node!r} ({type(nodes[node]).__name__})"
                               f": {why}")

    start = next(n for n, v in nodes.items() if isinstance(v, nir.Input))
    chain = [start]
    while succs[chain[-1]]:
        cur = chain[-1]
        if len(succs[cur]) != 1:
            raise refuse(cur, f"feeds {len(succs[cur])} nodes; the {target} profile writes "
                              "chains only (no branches or sums)")
        nxt = succs[cur][0]
        if len(preds[nxt]) != 1:
            raise refuse(nxt, f"sums {len(preds[nxt])} inputs; the {target} profile writes "
                              "chains only (no branches or sums)")
        chain.append(nxt)
    if len(chain) != len(nodes):
        raise refuse(chain[-1], "the graph is not one chain from Input to Output")
    keep: list[str] = []
    factor = 1.0  # waiting to be folded into the next weights
    weighted: str | None = None  # the last node with weights (where a population's input is)

    def uniform(node: str, what: str, a: Any) -> float:
        return _uniform(node, what, a, f"to_nir(target={target!r})")

    def scale_inputs(pop: str, w_factor: float, bias_add: np.ndarray | None = None) -> None:
        """Multiply the weights and bias feeding population ``pop`` by ``w_factor`` (and add
        ``bias_add``, one value per neuron, to that bias)."""
        if weighted is None or factor != 1.0:
            raise refuse(pop, "no Conv2d or Linear node feeds it directly to fold its input "
                              "scale into")
        node = nodes[weighted]
        shape = np.asarray(node.weight).shape
        bias = np.asarray(getattr(node, "bias", None) if getattr(node, "bias", None) is not None
                          else np.zeros(shape[0]), dtype=np.float64) * w_factor
        if bias_add is not None:
            if isinstance(node, nir.Conv2d):
                per = np.asarray(bias_add, dtype=np.float64).reshape(shape[0], -1)
                if not np.allclose(per, per[:, :1], rtol=1e-6, atol=1e-12):
                    raise refuse(pop, "its constant input differs within a channel; a Conv2d "
                                      "bias holds one value per channel")
                bias = bias + per[:, 0]
            else:
                bias = bias + np.asarray(bias_add, dtype=np.float64).reshape(-1)
        weight = (np.asarray(node.weight, dtype=np.float64) * w_factor).astype(np.float32)
        if isinstance(node, nir.Conv2d):
            node.weight, node.bias = weight, bias.astype(np.float32)
        else:  # Linear or Affine: an Affine holds the bias
            nodes[weighted] = nir.Affine(weight=weight, bias=bias.astype(np.float32))

    for name in chain:
        node = nodes[name]
        if isinstance(node, nir.Scale):
            factor *= uniform(name, "the scale", node.scale)
            continue  # folded into the next weights
        if isinstance(node, (nir.LI, nir.CubaLI, nir.CubaLIF)):
            raise refuse(name, f"the synapse has no node {target}'s importer reads "
                               "(export a net without synapses for it, or use target='nir')")
        if isinstance(node, nir.AvgPool2d) and target == "norse":
            k = np.asarray(node.kernel_size).reshape(-1)
            area = float(k[0] * (k[1] if k.size > 1 else k[0]))
            factor /= area
            node = nodes[name] = nir.SumPool2d(kernel_size=node.kernel_size, stride=node.stride,
                                               padding=node.padding)
        elif isinstance(node, nir.Flatten):
            end = int(node.end_dim)
            node = nodes[name] = nir.Flatten(input_type=node.input_type,
                                             start_dim=int(node.start_dim) + 1,
                                             end_dim=end + 1 if end >= 0 else end)
        elif isinstance(node, (nir.Conv2d, nir.Linear, nir.Affine)):
            if factor != 1.0:
                node.weight = (np.asarray(node.weight, dtype=np.float64) * factor).astype(
                    np.float32)
                factor = 1.0
            weighted = name
        elif isinstance(node, nir.LIF):
            r = uniform(name, "r", node.r)
            if target == "norse":  # Norse: tau dv/dt = v_leak - v + input
                scale_inputs(name, r)
                nodes[name] = nir.LIF(tau=node.tau, r=np.ones_like(node.r), v_leak=node.v_leak,
                                      v_threshold=node.v_threshold, v_reset=node.v_reset,
                                      metadata=node.metadata)
            else:  # snnTorch: mem <- beta mem + input, beta = 1 - 0.1 ms / tau
                tau = uniform(name, "tau", node.tau)
                scale_inputs(name, r * dt / tau, np.asarray(node.v_leak) * dt / tau)
                tau_s = tau * _SNNTORCH_DT / dt
                ones = np.ones_like(np.asarray(node.tau, dtype=np.float64))
                nodes[name] = nir.LIF(tau=ones * tau_s, r=ones * tau_s / _SNNTORCH_DT,
                                      v_leak=0 * ones, v_threshold=node.v_threshold,
                                      v_reset=node.v_reset, metadata=node.metadata)
            weighted = None
        elif isinstance(node, nir.IF):
            r = uniform(name, "r", node.r)
            scale_inputs(name, r * dt)  # both read an IF step as v += input
            ones = np.ones_like(np.asarray(node.r, dtype=np.float64))
            if target == "norse":
                nodes[name] = nir.IF(r=ones, v_threshold=node.v_threshold,
                                     v_reset=node.v_reset, metadata=node.metadata)
            else:
                nodes[name] = nir.LIF(tau=ones * _SNNTORCH_IF_TAU,
                                      r=ones * _SNNTORCH_IF_TAU / _SNNTORCH_DT, v_leak=0 * ones,
                                      v_threshold=node.v_threshold, v_reset=node.v_reset,
                                      metadata=node.metadata)
            weighted = None
        elif isinstance(node, nir.Output) and factor != 1.0:
            raise refuse(name, "the readout is scaled after the last weights")
        keep.append(name)
    edges = list(zip(keep[:-1], keep[1:], strict=True))
    meta = {**(graph.metadata or {}), "softlif_target": target, "softlif_target_note":
            TARGET_NOTES[target]}
    # not type-checked: its Flatten follows the tool's reading, which NIR's types contradict
    return nir.NIRGraph(nodes={n: nodes[n] for n in keep}, edges=edges, metadata=meta,
                        type_check=False)


# ---------------------------------------------------------------------------------- import


class _Scale(nn.Module):
    scale: torch.Tensor

    def __init__(self, scale: torch.Tensor):
        super().__init__()
        self.register_buffer("scale", scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


def _affine_module(modules: dict[str, nn.Module], program: list[tuple[str, list[str]]],
                   sources: list[str], output: list[str]) -> fx.GraphModule:
    """The linear nodes between populations of an imported NIR graph as a ``GraphModule``
    taking one tensor per source; a node's input is the sum of its incoming edges (NIR's
    convention). Submodules are ``n0, n1, ...`` in ``program`` order."""
    root = nn.Module()
    g = fx.Graph()
    values: dict[str, fx.Node] = {name: g.placeholder(f"in{i}") for i, name in
                                  enumerate(sources)}

    def total(names: list[str]) -> fx.Node:
        out = values[names[0]]
        for n in names[1:]:
            out = g.call_function(operator.add, (out, values[n]))
        return out

    for i, (name, inputs) in enumerate(program):
        root.add_module(f"n{i}", modules[name])
        values[name] = g.call_module(f"n{i}", (total(inputs),))
    g.output(total(output))
    return fx.GraphModule(root, g, "NirAffine")


def _as_tuple(v: Any) -> tuple[int, ...]:
    return tuple(int(x) for x in np.atleast_1d(np.asarray(v)))


def _torch_module(name: str, node: Any, nir: Any, in_shape: tuple[int, ...]) -> nn.Module:
    t = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32)  # noqa: E731
    if isinstance(node, (nir.Affine, nir.Linear)):
        w = t(node.weight)
        if w.ndim != 2 or in_shape != (w.shape[1],):
            raise ConversionError(f"from_nir: node {name!r}: a {tuple(w.shape)} weight on an "
                                  f"input of shape {in_shape}")
        lin = nn.Linear(w.shape[1], w.shape[0], bias=isinstance(node, nir.Affine))
        lin.weight.data.copy_(w)
        if lin.bias is not None:
            lin.bias.data.copy_(t(node.bias).reshape(-1))
        return lin
    if isinstance(node, nir.Conv2d):
        w = t(node.weight)
        pad = node.padding if isinstance(node.padding, str) else _as_tuple(node.padding)
        pad = pad * 2 if isinstance(pad, tuple) and len(pad) == 1 else pad
        stride, dil = _as_tuple(node.stride), _as_tuple(node.dilation)
        conv = nn.Conv2d(w.shape[1] * int(node.groups), w.shape[0],
                         (int(w.shape[2]), int(w.shape[3])),
                         stride=stride * 2 if len(stride) == 1 else stride,  # type: ignore[arg-type]
                         padding=pad, dilation=dil * 2 if len(dil) == 1 else dil,  # type: ignore[arg-type]
                         groups=int(node.groups), bias=True)
        conv.weight.data.copy_(w)
        assert conv.bias is not None
        conv.bias.data.copy_(t(node.bias).reshape(-1) if node.bias is not None
                             and np.size(node.bias) else torch.zeros(w.shape[0]))
        return conv
    if isinstance(node, (nir.AvgPool2d, nir.SumPool2d)):
        k, s, p = (_as_tuple(v) for v in (node.kernel_size, node.stride, node.padding))
        k, s, p = (v * 2 if len(v) == 1 else v for v in (k, s, p))
        return nn.AvgPool2d(k, s, p, divisor_override=k[0] * k[1]  # type: ignore[arg-type]
                            if isinstance(node, nir.SumPool2d) else None)
    if isinstance(node, nir.Flatten):
        end = int(node.end_dim)
        return nn.Flatten(int(node.start_dim) + 1, end + 1 if end >= 0 else end)
    if isinstance(node, nir.Scale):
        return _Scale(t(node.scale))
    raise ConversionError(f"from_nir: node {name!r} is a {type(node).__name__}; softlif reads "
                          "Input, Output, LIF, IF, LI and CubaLI (synapses), Affine, Linear, "
                          "Conv2d, AvgPool2d, SumPool2d, Flatten and Scale nodes")


def _meta_str(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _uniform(name: str, what: str, a: Any, caller: str = "from_nir") -> float:
    """The one value of a per-neuron parameter array (ConversionError if they differ)."""
    arr = np.asarray(a, dtype=np.float64)
    if arr.size == 0 or not np.all(arr == arr.flat[0]):
        raise ConversionError(f"{caller}: node {name!r}: {what} differs between neurons; "
                              "softlif's populations, and the tools' readers, take one value")
    return float(arr.flat[0])


#: the tools whose exports :func:`from_nir` reads as they mean them (``source=``)
SOURCES = ("nir", "norse", "snntorch")
#: per source: how its exports depart from NIR's definitions, and what from_nir does about it
SOURCE_NOTES = {
    "nir": "the graph as NIR defines it",
    "norse": (
        "norse.torch.to_nir (Norse 1.1) writes each LIF and LI time constant as dt * tau (it "
        "divides dt by 1/tau) and an IF as r = 1 where its neurons take v += input per step; "
        "read with the dt the Norse net ran at (default 1 ms): tau = written / dt, IF r = 1/dt; "
        "Flatten's start_dim is torch's (with the batch) and is shifted back. Norse starts each "
        "LIF at v_leak, softlif at 0: the first spikes differ. Its Input node holds the sample's "
        "batch dimension, which is dropped; it writes no node for torch.nn.Flatten (refused)."),
    "snntorch": (
        "snntorch.export_nir.export_to_nir (snnTorch 1.0) writes LIF nodes for a fixed step of "
        "0.1 ms (tau = 0.1 ms / (1 - beta), r = tau / 0.1 ms): read with dt = 0.1 ms (the "
        "default) and simulate with that dt, one softlif step per snnTorch step; Flatten as for "
        "Norse. snnTorch resets by subtraction unless its neurons use reset_mechanism='zero', "
        "which NIR's LIF (reset to v_reset) and softlif assume."),
}
_SOURCE_DT = {"nir": 0.001, "norse": 0.001, "snntorch": _SNNTORCH_DT}


def _from_tool(graph: Any, source: str, dt: float) -> Any:
    """A graph ``source`` exported, rewritten into what NIR defines (:data:`SOURCE_NOTES`)."""
    nir = _nir()
    nodes: dict[str, Any] = {}
    for name, node in graph.nodes.items():
        if node is None:
            raise ConversionError(f"from_nir(source={source!r}): node {name!r} is empty: the "
                                  f"{source} exporter wrote no node for that layer (Norse writes "
                                  "none for torch.nn.Flatten)")
        if source == "norse" and isinstance(node, nir.Input):
            shape = _as_tuple(node.input_type["input"])
            if len(shape) > 1 and shape[0] == 1:  # the sample's batch dimension
                node = nir.Input(input_type={"input": np.array(shape[1:])})
        if isinstance(node, nir.Flatten):
            start, end = int(node.start_dim), int(node.end_dim)
            if start < 1:
                raise ConversionError(f"from_nir(source={source!r}): Flatten {name!r} with "
                                      f"start_dim {start} flattens the batch dimension")
            node = nir.Flatten(input_type=node.input_type, start_dim=start - 1,
                               end_dim=end - 1 if end >= 1 else end)
        elif source == "norse" and isinstance(node, nir.LIF):
            node = nir.LIF(tau=np.asarray(node.tau, dtype=np.float64) / dt, r=node.r,
                           v_leak=node.v_leak, v_threshold=node.v_threshold,
                           v_reset=node.v_reset, metadata=node.metadata)
        elif source == "norse" and isinstance(node, nir.LI):
            node = nir.LI(tau=np.asarray(node.tau, dtype=np.float64) / dt, r=node.r,
                          v_leak=node.v_leak, metadata=node.metadata)
        elif source == "norse" and isinstance(node, nir.IF):
            node = nir.IF(r=np.asarray(node.r, dtype=np.float64) / dt,
                          v_threshold=node.v_threshold, v_reset=node.v_reset,
                          metadata=node.metadata)
        nodes[name] = node
    return nir.NIRGraph(nodes=nodes, edges=list(graph.edges), metadata=graph.metadata,
                        type_check=False)


def from_nir(graph: nir.NIRGraph, dt: float | None = None, *,
             source: str = "nir") -> SpikingNetwork:
    """Read a ``nir.NIRGraph`` (e.g. from ``nir.read(path)``) as a spiking net.

    dt: the time step (s) of one spike; default the ``softlif_dt_s`` the graph was written with,
    else the source's (1 ms; snnTorch 0.1 ms). source: ``"norse"`` or ``"snntorch"`` reads a
    graph that tool exported as the tool means it (:data:`SOURCE_NOTES`: where its exports
    depart from NIR), ``"nir"`` (default) as NIR defines it.

    A population's synapse node (``CubaLI`` with equal time constants: alpha; ``LI``: lowpass;
    ``Scale`` or none: no filter) must be the same kind and tau for every population, as
    softlif has one synapse per net; its weight times ``dt`` is the neurons'
    ``amplitude``. Populations written by softlif get back their neuron (tau_ref included)
    from the metadata; others get ``tau_ref = 0``.
    """
    nir = _nir()
    if source not in SOURCES:
        raise ValueError(f"source must be one of {', '.join(SOURCES)}, got {source!r}")
    meta = getattr(graph, "metadata", None) or {}
    if dt is None:
        dt = float(meta.get("softlif_dt_s", _SOURCE_DT[source]))
    if not (math.isfinite(dt) and dt > 0):
        raise ValueError(f"dt must be a positive number of seconds, got {dt!r}")
    if source != "nir":
        graph = _from_tool(graph, source, dt)
    nodes: dict[str, Any] = dict(graph.nodes)
    preds: dict[str, list[str]] = {n: [] for n in nodes}
    succs: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in graph.edges:
        if a not in nodes or b not in nodes:
            raise ConversionError(f"from_nir: edge {a!r} -> {b!r} names a missing node")
        preds[b].append(a)
        succs[a].append(b)
    ins = [n for n, v in nodes.items() if isinstance(v, nir.Input)]
    outs = [n for n, v in nodes.items() if isinstance(v, nir.Output)]
    if len(ins) != 1 or len(outs) != 1:
        raise ConversionError(f"from_nir: softlif needs one Input and one Output node; found "
                              f"{len(ins)} and {len(outs)}")
    order = _topological(nodes, preds)
    pops = [n for n in order if isinstance(nodes[n], (nir.LIF, nir.IF))]
    unsupported = [n for n in order if isinstance(nodes[n], (nir.CubaLIF, nir.Delay,
                                                             nir.Threshold, nir.I))]
    if unsupported:
        n = unsupported[0]
        raise ConversionError(f"from_nir: node {n!r} is a {type(nodes[n]).__name__}; softlif's "
                              "populations are LIF or IF nodes, each followed by its synapse "
                              "(CubaLI, LI or none)")
    # each population's synapse: its only successor when that is a filter fed by it alone
    synapse_of: dict[str, str | None] = {}
    kinds: set[tuple[str, float]] = set()
    amplitude: dict[str, float] = {}
    for p in pops:
        nxt = succs[p]
        f = nxt[0] if len(nxt) == 1 and preds[nxt[0]] == [p] and isinstance(
            nodes[nxt[0]], (nir.CubaLI, nir.LI, nir.Scale)) else None
        synapse_of[p] = f
        if f is None:
            kinds.add(("none", 0.0))
            amplitude[p] = dt  # a spike of weight 1
            continue
        node = nodes[f]
        if isinstance(node, nir.CubaLI):
            tau = _uniform(f, "tau_syn", node.tau_syn)
            if not math.isclose(tau, _uniform(f, "tau_mem", node.tau_mem), rel_tol=1e-6):
                raise ConversionError(f"from_nir: synapse {f!r} is a CubaLI with tau_syn != "
                                      "tau_mem; softlif's alpha synapse has them equal")
            kinds.add(("alpha", tau))
            weight = _uniform(f, "w_in", node.w_in) * _uniform(f, "r", node.r)
        elif isinstance(node, nir.LI):
            kinds.add(("lowpass", _uniform(f, "tau", node.tau)))
            weight = _uniform(f, "r", node.r)
        else:
            kinds.add(("none", 0.0))
            weight = _uniform(f, "scale", node.scale)
        if isinstance(node, (nir.CubaLI, nir.LI)) and _uniform(f, "v_leak", node.v_leak) != 0:
            raise ConversionError(f"from_nir: synapse {f!r} has v_leak != 0 (an offset)")
        if not weight > 0:
            raise ConversionError(f"from_nir: synapse {f!r} has weight {weight} <= 0")
        amplitude[p] = weight * dt
    if len(kinds) > 1:
        raise ConversionError(f"from_nir: the populations have different synapses {sorted(kinds)}"
                              "; softlif simulates one synapse kind and tau per network")
    kind, tau = kinds.pop() if kinds else ("none", 0.0)
    synapse = Synapse(kind, tau)  # type: ignore[arg-type]

    index = {ins[0]: -1}
    for k, p in enumerate(pops):
        index[p] = k
        if synapse_of[p] is not None:
            index[synapse_of[p]] = k  # type: ignore[index]
    input_shape = _as_tuple(nodes[ins[0]].input_type["input"])
    shapes: dict[int, tuple[int, ...]] = {-1: input_shape}
    stages: list[Stage] = []
    for k, target in enumerate([*pops, outs[0]]):
        affine, src_ids, layer_names = _stage_affine(target, nodes, preds, index, shapes,
                                                     order, nir)
        in_shapes = [shapes[j] for j in src_ids]
        with torch.no_grad():
            const = affine(*[torch.zeros((1, *s)) for s in in_shapes])[0]
        linear = _without_biases(affine)
        node = nodes[target]
        neuron: NeuronType | None = None
        if k < len(pops):
            neuron, const = _neuron(target, node, const, amplitude[target])
        shapes[k] = tuple(const.shape)
        names = tuple(layer_names) or ("identity",)
        stages.append(Stage(linear, const.detach().clone(), neuron, in_shapes[0],
                            tuple(const.shape), names, tuple(src_ids), tuple(in_shapes)))
    return SpikingNetwork(stages, synapse, input_shape)


def _topological(nodes: dict[str, Any], preds: dict[str, list[str]]) -> list[str]:
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(n: str) -> None:
        todo = [(n, iter(preds[n]))]
        state[n] = 1
        while todo:
            cur, it = todo[-1]
            nxt = next(it, None)
            if nxt is None:
                todo.pop()
                state[cur] = 2
                order.append(cur)
            elif state.get(nxt) == 1:
                raise ConversionError(f"from_nir: the graph has a cycle through {nxt!r}; "
                                      "softlif converts feed-forward networks")
            elif nxt not in state:
                state[nxt] = 1
                todo.append((nxt, iter(preds[nxt])))

    for n in nodes:
        if n not in state:
            visit(n)
    return order


def _stage_affine(target: str, nodes: dict[str, Any], preds: dict[str, list[str]],
                  index: dict[str, int], shapes: dict[int, tuple[int, ...]], order: list[str],
                  nir: Any) -> tuple[fx.GraphModule, list[int], list[str]]:
    """The linear nodes that feed ``target`` back to its sources (populations' synapses or
    outputs, the Input), as a module taking one tensor per source."""
    needed: set[str] = set()
    sources: set[str] = set()
    todo = list(preds[target])
    if not todo:
        raise ConversionError(f"from_nir: node {target!r} has no inputs")
    while todo:
        n = todo.pop()
        if n in index:
            sources.add(n)
        elif n not in needed:
            if isinstance(nodes[n], (nir.CubaLI, nir.LI)):
                raise ConversionError(f"from_nir: {type(nodes[n]).__name__} node {n!r} is not "
                                      "on a population's output; softlif's synapses are")
            needed.add(n)
            todo.extend(preds[n])
    pos = {n: i for i, n in enumerate(order)}
    srcs = sorted(sources, key=lambda s: (index[s], pos[s]))
    if len({index[s] for s in srcs}) != len(srcs):
        raise ConversionError(f"from_nir: {target!r} reads a population both before and after "
                              "its synapse")
    values: dict[str, tuple[int, ...]] = {s: shapes[index[s]] for s in srcs}
    modules: dict[str, nn.Module] = {}
    program: list[tuple[str, list[str]]] = []
    for n in sorted(needed, key=pos.__getitem__):
        ins = preds[n]
        in_shapes = {values[i] for i in ins}
        if len(in_shapes) != 1:
            raise ConversionError(f"from_nir: node {n!r} sums inputs of shapes "
                                  f"{sorted(in_shapes)}")
        shape = in_shapes.pop()
        m = _torch_module(n, nodes[n], nir, shape)
        with torch.no_grad():
            values[n] = tuple(m(torch.zeros((1, *shape))).shape[1:])
        modules[n] = m
        program.append((n, list(ins)))
    if len({values[i] for i in preds[target]}) != 1:
        raise ConversionError(f"from_nir: node {target!r} sums inputs of different shapes")
    names = [n for n, _ in program]
    return (_affine_module(modules, program, srcs, list(preds[target])),
            [index[s] for s in srcs], names)


def _neuron(name: str, node: Any, const: torch.Tensor, amplitude: float
            ) -> tuple[NeuronType, torch.Tensor]:
    """The softlif neuron of a LIF/IF node, and the stage's constant so that the current
    ``gain * (linear + constant) + bias`` equals the node's."""
    nir = _nir()
    meta = getattr(node, "metadata", None) or {}
    stored = neuron_from_dict(json.loads(_meta_str(meta["softlif_neuron"]))) \
        if "softlif_neuron" in meta else None
    if node.v_reset is not None and np.any(np.asarray(node.v_reset) != 0):
        raise ConversionError(f"from_nir: node {name!r} resets to v_reset != 0; softlif's "
                              "neurons reset to 0 (and start at 0)")
    thr = _uniform(name, "v_threshold", node.v_threshold)
    if not thr > 0:
        raise ConversionError(f"from_nir: node {name!r} has v_threshold {thr} <= 0")
    shape = tuple(const.shape)

    def per_neuron(a: Any) -> torch.Tensor:
        return torch.as_tensor(np.asarray(a, dtype=np.float64)).expand(shape)

    if isinstance(node, nir.LIF):
        gain = _uniform(name, "r", node.r) / thr  # J = gain * I + v_leak / thr, threshold 1
        lif = stored if isinstance(stored, LIF) else LIF(tau_ref=0.0, bias=0.0, smoothing=0.0,
                                                          noise_std=0.0)
        neuron: NeuronType = dataclasses.replace(
            lif, tau_rc=_uniform(name, "tau", node.tau), gain=gain, amplitude=amplitude)
        extra = (per_neuron(node.v_leak) / thr - neuron.bias) / gain
    else:  # IF: dv/dt = r I; softlif: tau dv/dt = gain x + bias - 1, threshold 1
        rate = _uniform(name, "r", node.r) / thr
        if_ = stored if isinstance(stored, IF) else IF(bias=1.0, smoothing=0.0, noise_std=0.0)
        neuron = dataclasses.replace(if_, gain=rate * if_.tau, amplitude=amplitude)
        extra = torch.full(shape, (1.0 - neuron.bias) / neuron.gain, dtype=torch.float64)
    return neuron, (const.double() + extra).to(const.dtype)
