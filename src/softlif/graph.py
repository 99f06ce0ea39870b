"""Graph-shaped networks: trace a PyTorch model with ``torch.fx`` and cut it into populations.

A model whose activations are :class:`~softlif.activations.RateNeuron` s and whose other
operations are linear (convolutions, dense and locally connected layers, average pooling,
residual additions, channel concatenation, flattening and reshaping, scaling by a constant)
is, between its neuron layers, a set of affine maps. :func:`convert_graph` finds them: every
``RateNeuron`` call is one population of spiking neurons, driven by the affine function of its
sources (earlier populations, or the network input) that the traced graph computes for it; the
graph's output is the linear readout. The result is a
:class:`~softlif.convert.SpikingNetwork` whose stages name their sources, which
:mod:`softlif.simulate` runs step by step like a chain.

Each stage's affine map ``A`` is split into its linear part ``L`` (the same operations with the
layer biases removed) and the constant ``b = A(0)``; the split is checked on random inputs
(``A(x) = L(x) + b``, ``L(2x) = 2 L(x)``), so an operation that is not linear is refused with
its name rather than simulated wrongly.
"""

from __future__ import annotations

import copy
import operator
from collections.abc import Callable
from typing import cast

import torch
import torch.nn.functional as F
from torch import fx, nn

from .activations import RateNeuron
from .convert import ConversionError, SpikingNetwork, Stage
from .layers import LocallyConnected2d
from .synapses import Synapse

#: Modules that may sit between neuron layers (linear in their input).
LINEAR_MODULES: tuple[type[nn.Module], ...] = (
    nn.Conv2d, nn.Linear, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.Flatten, nn.Unflatten,
    nn.Identity, LocallyConnected2d)
#: Modules dropped by the conversion (identity at inference).
DROPPED_MODULES: tuple[type[nn.Module], ...] = (nn.Dropout, nn.Dropout1d, nn.Dropout2d)
#: Functions that are linear in every tensor argument (or only reshape it).
LINEAR_FUNCTIONS: set[Callable] = {
    operator.add, operator.sub, operator.neg, operator.pos, torch.add, torch.sub, torch.cat,
    torch.concat, torch.flatten, torch.reshape, torch.squeeze, torch.unsqueeze,
    F.avg_pool2d, F.adaptive_avg_pool2d, F.dropout}
#: Functions linear in one argument when the other does not depend on the network's signals.
SCALING_FUNCTIONS: set[Callable] = {operator.mul, torch.mul, operator.truediv, torch.div}
#: Tensor methods that are linear or only reshape (``size`` reads the shape).
LINEAR_METHODS = {"view", "reshape", "flatten", "contiguous", "size", "add", "sub", "mul",
                  "div", "squeeze", "unsqueeze", "permute", "transpose", "neg"}
#: Non-tensor helpers seen when a model reads a shape (``x.shape[0]``, ``x.size(0)``).
SHAPE_FUNCTIONS: set[Callable] = {getattr, operator.getitem}

_NONLINEAR_ADVICE = {
    F.relu: "run softlif.prepare(model, neuron, example_input=x) first: it swaps ReLU for "
    "softlif.RateNeuron",
    torch.relu: "run softlif.prepare(model, neuron, example_input=x) first",
    F.max_pool2d: "max pooling has no spiking equivalent: softlif.prepare(..., maxpool='avg') "
    "swaps it for average pooling (then fine-tune)",
    F.batch_norm: "softlif.prepare folds batch norm into the preceding Conv2d/Linear",
}


class _Tracer(fx.Tracer):
    """``torch.fx`` tracer that keeps softlif's own layers whole."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        if isinstance(m, (RateNeuron, LocallyConnected2d)):
            return True
        return super().is_leaf_module(m, module_qualified_name)


def trace(model: nn.Module) -> fx.GraphModule:
    """``model`` as a ``torch.fx.GraphModule`` (``RateNeuron`` and ``LocallyConnected2d`` kept
    as modules); a clear :class:`ConversionError` if it cannot be traced."""
    if isinstance(model, fx.GraphModule):
        return model
    try:
        graph = _Tracer().trace(model)
    except Exception as e:  # fx raises many kinds (TraceError, TypeError, ...)
        raise ConversionError(
            f"torch.fx could not trace {type(model).__name__}: {type(e).__name__}: {e}. "
            "Control flow that depends on tensor values cannot be traced; move it out of "
            "forward() or convert a model without it") from e
    return fx.GraphModule(model, graph, type(model).__name__)


def _describe(gm: fx.GraphModule, n: fx.Node) -> str:
    if n.op == "call_module":
        return f"module {n.target!r} ({type(gm.get_submodule(str(n.target))).__name__})"
    if n.op in ("call_function", "call_method"):
        name = getattr(n.target, "__name__", str(n.target))
        return f"{'function' if n.op == 'call_function' else 'method'} {name} (node {n.name})"
    return f"{n.op} {n.target} (node {n.name})"


def _check_linear(gm: fx.GraphModule, n: fx.Node, live: set[fx.Node]) -> None:
    """Refuse, naming it, an operation between neuron layers that is not linear in the
    network's signals (``live``: the nodes that depend on the input or on neurons)."""
    if n.op == "call_module":
        m = gm.get_submodule(str(n.target))
        if isinstance(m, LINEAR_MODULES + DROPPED_MODULES):
            return
        from .convert import _ADVICE  # the same advice as the chain converter gives
        advice = next((a for t, a in _ADVICE.items() if isinstance(m, t)), None)
        raise ConversionError(
            f"{_describe(gm, n)} cannot sit between neuron layers: "
            + (advice or "only linear layers (Conv2d, Linear, AvgPool2d, LocallyConnected2d, "
               "Flatten) and softlif.RateNeuron activations can be converted"))
    if n.op == "call_function":
        if n.target in LINEAR_FUNCTIONS or n.target in SHAPE_FUNCTIONS:
            return
        if n.target in SCALING_FUNCTIONS:
            tensors = [a for a in n.all_input_nodes if a in live]
            divisor_live = n.target in (operator.truediv, torch.div) and len(n.args) > 1 \
                and isinstance(n.args[1], fx.Node) and n.args[1] in live
            if len(tensors) <= 1 and not divisor_live:
                return
        advice = _NONLINEAR_ADVICE.get(n.target) if callable(n.target) else None  # type: ignore[arg-type]
        raise ConversionError(
            f"{_describe(gm, n)} is not linear in the signals between neuron layers: "
            + (advice or "only linear operations (add, cat, flatten, average pooling, scaling "
               "by a constant) may sit between softlif.RateNeuron activations"))
    if n.op == "call_method":
        if n.target in LINEAR_METHODS:
            if n.target in ("mul", "div"):
                if sum(a in live for a in n.all_input_nodes) > 1 or (
                        n.target == "div" and len(n.args) > 1 and n.args[1] in live):
                    raise ConversionError(f"{_describe(gm, n)} multiplies two signals: not "
                                          "linear")
            return
        raise ConversionError(f"{_describe(gm, n)} is not one of the linear tensor methods "
                              f"({', '.join(sorted(LINEAR_METHODS))})")


def _stage_module(gm: fx.GraphModule, target: fx.Node, stops: set[fx.Node],
                  live: set[fx.Node]) -> tuple[fx.GraphModule, list[fx.Node], list[str]]:
    """The sub-graph that computes ``target`` from the ``stops`` (populations, input) it
    depends on: (module taking one tensor per source, source nodes in graph order, the names of
    the layers it holds)."""
    needed: set[fx.Node] = set()
    sources: set[fx.Node] = set()
    todo = [target]
    while todo:
        n = todo.pop()
        if n in needed or n in sources:
            continue
        if n in stops:
            sources.add(n)
            continue
        if n.op == "placeholder":
            raise ConversionError(f"the model takes more than one input ({n.name}); convert() "
                                  "needs a model of one input tensor")
        if n in live:
            _check_linear(gm, n, live)
        needed.add(n)
        todo.extend(n.all_input_nodes)
    order = {n: i for i, n in enumerate(gm.graph.nodes)}
    srcs = sorted(sources, key=order.__getitem__)
    g = fx.Graph()
    env: dict[fx.Node, fx.Node] = {s: g.placeholder(f"in{i}") for i, s in enumerate(srcs)}
    names: list[str] = []
    for n in sorted(needed, key=order.__getitem__):
        if n.op == "call_module" and isinstance(gm.get_submodule(str(n.target)),
                                                DROPPED_MODULES):
            env[n] = env[n.args[0]]  # type: ignore[index]
            continue
        if n.op == "call_function" and n.target is F.dropout:
            env[n] = env[n.args[0]]  # type: ignore[index]
            continue
        if n.op == "call_module":
            names.append(str(n.target))
        env[n] = g.node_copy(n, lambda a: env[a])
    g.output(env[target])
    return fx.GraphModule(gm, g), srcs, names


def _without_biases(m: fx.GraphModule) -> fx.GraphModule:
    out = copy.deepcopy(m)
    for sub in out.modules():
        if isinstance(sub, (nn.Conv2d, nn.Linear, LocallyConnected2d)) and sub.bias is not None:
            sub.bias = None
    for p in out.parameters():
        p.requires_grad_(False)
    return out.eval()


@torch.no_grad()
def _split_affine(name: str, affine: fx.GraphModule, shapes: list[tuple[int, ...]],
                  device: torch.device) -> tuple[fx.GraphModule, torch.Tensor]:
    """(linear part, constant) of a stage's affine map, checked on random inputs."""
    linear = _without_biases(affine)
    affine = copy.deepcopy(affine).eval()
    zeros = [torch.zeros((1, *s), device=device) for s in shapes]
    try:
        bias = affine(*zeros)
    except Exception as e:
        raise ConversionError(f"{name}: the operations feeding it failed on an input of shape "
                              f"{[tuple(z.shape) for z in zeros]}: {type(e).__name__}: {e}"
                              ) from e
    if not isinstance(bias, torch.Tensor):
        raise ConversionError(f"{name}: the model's output must be one tensor, got "
                              f"{type(bias).__name__}")
    gen = torch.Generator().manual_seed(0)
    xs = [torch.rand((2, *s), generator=gen).to(device) for s in shapes]
    lx, ax = linear(*xs), affine(*xs)
    l2 = linear(*[2 * x for x in xs])
    scale = float(ax.abs().max()) + float(bias.abs().max()) + 1e-6
    if (float((ax - lx - bias).abs().max()) > 1e-4 * scale
            or float((l2 - 2 * lx).abs().max()) > 1e-4 * (float(lx.abs().max()) + 1e-6)
            or float(linear(*zeros).abs().max()) != 0.0):
        raise ConversionError(
            f"{name}: the operations feeding it are not affine (an offset that is not a layer "
            "bias, or an operation not linear in its input); only linear layers and "
            "softlif.RateNeuron activations can be converted")
    return linear, bias[0].detach().clone()


@torch.no_grad()
def convert_graph(model: nn.Module, input_shape: tuple[int, ...],
                  synapse: Synapse | None = None) -> SpikingNetwork:
    """Convert any traceable rate model (``RateNeuron`` activations, linear operations between
    them) into a :class:`~softlif.convert.SpikingNetwork` of populations.

    input_shape: one sample's shape, e.g. ``(3, 32, 32)``. synapse: the filter on every
    neuron's output (seconds; default alpha, tau = 5 ms). The model is not modified. Every
    call of a ``RateNeuron`` module is one population (a module called twice gives two).
    """
    synapse = Synapse("alpha", 0.005) if synapse is None else synapse
    gm = trace(copy.deepcopy(model).eval())
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    nodes = list(gm.graph.nodes)
    inputs = [n for n in nodes if n.op == "placeholder"]
    if len(inputs) != 1:
        raise ConversionError(f"convert() needs a model of one input tensor, found "
                              f"{len(inputs)} inputs ({[n.name for n in inputs]})")
    pops = [n for n in nodes if n.op == "call_module"
            and isinstance(gm.get_submodule(str(n.target)), RateNeuron)]
    if not pops:
        raise ConversionError(
            f"{type(model).__name__} has no softlif.RateNeuron activations, so nothing to turn "
            "into spiking neurons: softlif.prepare(model, neuron, example_input=x) swaps its "
            "ReLUs for RateNeuron(neuron)")
    outputs = [n for n in nodes if n.op == "output"]
    out_arg = outputs[0].args[0]
    if not isinstance(out_arg, fx.Node):
        raise ConversionError("the model must return one tensor (the class scores), not "
                              f"{type(out_arg).__name__}")
    live: set[fx.Node] = set()
    for n in nodes:  # nodes that depend on the input: the network's signals
        if n.op == "placeholder" or any(a in live for a in n.all_input_nodes):
            live.add(n)
    stops = {inputs[0], *pops}
    index = {inputs[0]: -1, **{p: k for k, p in enumerate(pops)}}
    shapes: dict[int, tuple[int, ...]] = {-1: tuple(input_shape)}
    stages: list[Stage] = []
    for k, target in enumerate([*pops, out_arg]):
        is_pop = k < len(pops)
        drive = target.args[0] if is_pop else target
        if not isinstance(drive, fx.Node):
            raise ConversionError(f"{_describe(gm, target)} is called on a constant")
        what = f"population {k} ({target.target})" if is_pop else "the readout"
        sub, srcs, names = _stage_module(gm, drive, stops, live)
        if any(index[s] >= k for s in srcs):
            raise ConversionError(f"{what} depends on a later population")
        src_ids = tuple(index[s] for s in srcs)
        if not src_ids:
            raise ConversionError(f"{what} does not depend on the input")
        in_shapes = [shapes[j] for j in src_ids]
        linear, bias = _split_affine(what, sub, in_shapes, device)
        neuron = cast(RateNeuron, gm.get_submodule(str(target.target))).neuron if is_pop \
            else None
        shapes[k] = tuple(bias.shape)
        stages.append(Stage(linear, bias, neuron, in_shapes[0], tuple(bias.shape),
                            tuple(names) or ("identity",), src_ids, tuple(in_shapes)))
    return SpikingNetwork(stages, synapse, tuple(input_shape))

