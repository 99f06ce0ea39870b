"""Make a user's PyTorch model ready for soft-LIF fine-tuning and conversion.

:func:`prepare` traces the model with ``torch.fx`` and returns a rewritten copy in which

* every BatchNorm that directly follows a Conv2d or Linear is folded into it (the running,
  i.e. evaluation, statistics: ``w' = w * gamma / sqrt(var + eps)``,
  ``b' = (b - mean) * gamma / sqrt(var + eps) + beta``);
* every ReLU-like activation (``nn.ReLU``, ``nn.ReLU6``, ``F.relu``, ``torch.relu``,
  ``x.relu()``) is a :class:`~softlif.activations.RateNeuron` of the given neuron type;
* ``nn.AdaptiveAvgPool2d`` / ``F.adaptive_avg_pool2d`` whose input size is a whole multiple of
  its output size is the equivalent ``nn.AvgPool2d`` (other sizes are kept: still linear);
* max pooling is refused (``maxpool="error"``) or swapped for average pooling of the same
  window (``maxpool="avg"``, with a warning: the net must then be fine-tuned);
* dropout is kept, for training (the converter drops it).

Anything left that the converter cannot turn into spiking neurons is refused here, naming the
module or function and what to do. The original model is never modified.
"""

from __future__ import annotations

import copy
import operator
import warnings
from typing import Literal, cast

import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from .activations import RateNeuron
from .convert import ConversionError
from .graph import _check_linear, trace
from .neurons import NeuronType

MaxPoolMode = Literal["error", "avg"]

_RELU_MODULES = (nn.ReLU, nn.ReLU6)
_RELU_FUNCTIONS = {F.relu, torch.relu, F.relu6}
_BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d)


def prepare(model: nn.Module, neuron: NeuronType, *, example_input: torch.Tensor,
            maxpool: MaxPoolMode = "error") -> fx.GraphModule:
    """A copy of ``model`` ready for soft-LIF fine-tuning and :func:`~softlif.convert.convert`.

    neuron: the neuron type every ReLU becomes (e.g. ``softlif.LIF()``: the paper's soft LIF;
        ``softlif.IF()``: the closest to ReLU).
    example_input: one batch the model accepts (shapes only; e.g. ``torch.zeros(1, 3, 32, 32)``).
    maxpool: ``"error"`` refuses max pooling; ``"avg"`` replaces it by average pooling of the
        same window (the net then needs fine-tuning).

    Returns a ``torch.fx.GraphModule`` (an ``nn.Module``: train it like the original).
    """
    if maxpool not in ("error", "avg"):
        raise ValueError(f"maxpool must be 'error' or 'avg', got {maxpool!r}")
    if not isinstance(example_input, torch.Tensor):
        raise TypeError("example_input must be a tensor batch the model accepts, e.g. "
                        "torch.zeros(1, 3, 32, 32)")
    was_training = model.training
    gm = trace(copy.deepcopy(model))
    gm.eval()
    try:
        with torch.no_grad():
            ShapeProp(gm).propagate(example_input.to(_device(model)))
    except Exception as e:
        raise ConversionError(f"the model failed on example_input of shape "
                              f"{tuple(example_input.shape)}: {type(e).__name__}: {e}") from e
    counter = [0]
    for n in list(gm.graph.nodes):
        if n.op == "call_module":
            m = gm.get_submodule(str(n.target))
            if isinstance(m, _BATCHNORMS):
                _fold_batchnorm(gm, n, m)
            elif isinstance(m, _RELU_MODULES):
                _to_neuron(gm, n, neuron, counter)
            elif isinstance(m, nn.AdaptiveAvgPool2d):
                _adaptive_to_avg(gm, n, m.output_size)
            elif isinstance(m, nn.MaxPool2d):
                _max_to_avg(gm, n, maxpool, m.kernel_size, m.stride, m.padding, m.ceil_mode,
                            m.dilation, str(n.target))
        elif n.op == "call_function":
            if n.target in _RELU_FUNCTIONS:
                _to_neuron(gm, n, neuron, counter)
            elif n.target is F.adaptive_avg_pool2d:
                _adaptive_to_avg(gm, n, n.args[1] if len(n.args) > 1 else n.kwargs["output_size"])
            elif n.target is F.max_pool2d:
                args = dict(zip(("input", "kernel_size", "stride", "padding", "dilation",
                                 "ceil_mode"), n.args, strict=False)) | dict(n.kwargs)
                _max_to_avg(gm, n, maxpool, args["kernel_size"], args.get("stride"),
                            args.get("padding", 0), args.get("ceil_mode", False),
                            args.get("dilation", 1), n.name)
        elif n.op == "call_method" and n.target in ("relu", "relu_"):
            _to_neuron(gm, n, neuron, counter)
    gm.graph.eliminate_dead_code()
    gm.delete_all_unused_submodules()
    gm.graph.lint()
    gm.recompile()
    _check_convertible(gm)
    gm.train(was_training)
    return gm


def _device(model: nn.Module) -> torch.device:
    return next((p.device for p in model.parameters()), torch.device("cpu"))


def _shape(n: fx.Node) -> tuple[int, ...]:
    meta = n.meta.get("tensor_meta")
    if meta is None or not hasattr(meta, "shape"):
        raise ConversionError(f"no tensor shape known at node {n.name}")
    return tuple(meta.shape)


def _fold_batchnorm(gm: fx.GraphModule, n: fx.Node, bn: nn.Module) -> None:
    src = n.args[0]
    layer = gm.get_submodule(str(src.target)) if isinstance(src, fx.Node) \
        and src.op == "call_module" else None
    where = f"BatchNorm {n.target!r}"
    if not isinstance(layer, (nn.Conv2d, nn.Linear)):
        raise ConversionError(f"{where} does not directly follow a Conv2d or Linear, so it "
                              "cannot be folded into one; move it after a layer with weights "
                              "or remove it and retrain")
    if len(src.users) != 1:  # type: ignore[union-attr]
        raise ConversionError(f"{where}: the output of {src.target!r} is also used without "  # type: ignore[union-attr]
                              "the batch norm, so folding would change those uses")
    if bn.running_mean is None or bn.running_var is None:
        raise ConversionError(f"{where} keeps no running statistics "
                              "(track_running_stats=False): nothing to fold at inference")
    if isinstance(layer, nn.Linear) and len(_shape(src)) != 2:  # type: ignore[arg-type]
        raise ConversionError(f"{where} normalises a Linear output of shape {_shape(src)}; "  # type: ignore[arg-type]
                              "only (batch, features) can be folded")
    assert isinstance(bn, nn.modules.batchnorm._BatchNorm)
    with torch.no_grad():
        mean = cast(torch.Tensor, bn.running_mean).double()
        var = cast(torch.Tensor, bn.running_var).double()
        gamma = bn.weight.double() if bn.weight is not None else torch.ones_like(mean)
        beta = bn.bias.double() if bn.bias is not None else torch.zeros_like(mean)
        scale = gamma / torch.sqrt(var + bn.eps)
        w = layer.weight.double()
        layer.weight.copy_((w * scale.view(-1, *([1] * (w.dim() - 1)))).to(w.dtype))
        old_b = cast(torch.Tensor | None, layer.bias)
        b = old_b.double() if old_b is not None else torch.zeros_like(mean)
        new_b = ((b - mean) * scale + beta).to(layer.weight.dtype)
        if old_b is None:
            layer.bias = nn.Parameter(new_b)
        else:
            old_b.copy_(new_b)
    n.replace_all_uses_with(src)  # type: ignore[arg-type]
    gm.graph.erase_node(n)


def _to_neuron(gm: fx.GraphModule, n: fx.Node, neuron: NeuronType, counter: list[int]) -> None:
    name = f"softlif_neuron_{counter[0]}"
    counter[0] += 1
    gm.add_submodule(name, RateNeuron(neuron))
    with gm.graph.inserting_after(n):
        new = gm.graph.call_module(name, (n.args[0],))
    new.meta = dict(n.meta)
    n.replace_all_uses_with(new)
    gm.graph.erase_node(n)


def _pair(v: object) -> tuple[int, int]:
    if isinstance(v, int):
        return (v, v)
    t = tuple(cast(tuple[int, int], v))
    return (int(t[0]), int(t[1]))


def _adaptive_to_avg(gm: fx.GraphModule, n: fx.Node, output_size: object) -> None:
    h, w = _shape(n.args[0])[-2:]  # type: ignore[arg-type]
    if isinstance(output_size, int):
        oh, ow = output_size, output_size
    else:
        a, b = tuple(cast(tuple[int | None, int | None], output_size))
        oh, ow = (h if a is None else int(a)), (w if b is None else int(b))
    if h % oh or w % ow:
        return  # no exact equivalent; adaptive average pooling is linear, the converter keeps it
    k = (h // oh, w // ow)
    _replace_module(gm, n, nn.AvgPool2d(k, k))


def _max_to_avg(gm: fx.GraphModule, n: fx.Node, mode: str, kernel: object, stride: object,
                padding: object, ceil_mode: bool, dilation: object, where: str) -> None:
    if mode == "error":
        raise ConversionError(
            f"max pooling at {where!r}: a spiking neuron's output is a spike train, and the "
            "maximum of spike trains is not the spike train of the maximum rate, so max "
            "pooling has no exact spiking equivalent; prepare(..., maxpool='avg') swaps it for "
            "average pooling of the same window (then fine-tune), or retrain with average "
            "pooling")
    if _pair(dilation) != (1, 1):
        raise ConversionError(f"max pooling at {where!r} is dilated; average pooling has no "
                              "dilation: retrain without it")
    warnings.warn(f"max pooling at {where!r} replaced by average pooling of the same window: "
                  "fine-tune the prepared model before converting it", stacklevel=3)
    _replace_module(gm, n, nn.AvgPool2d(kernel, stride if stride else kernel, padding,  # type: ignore[arg-type]
                                        ceil_mode=ceil_mode, count_include_pad=False))


def _replace_module(gm: fx.GraphModule, n: fx.Node, module: nn.Module) -> None:
    name = f"softlif_pool_{n.name}"
    gm.add_submodule(name, module)
    with gm.graph.inserting_after(n):
        new = gm.graph.call_module(name, (n.args[0],))
    new.meta = dict(n.meta)
    n.replace_all_uses_with(new)
    gm.graph.erase_node(n)


def _check_convertible(gm: fx.GraphModule) -> None:
    """Refuse, naming it, anything left that is neither a RateNeuron nor linear."""
    live: set[fx.Node] = set()
    for n in gm.graph.nodes:
        if n.op == "placeholder" or any(a in live for a in n.all_input_nodes):
            live.add(n)
    for n in gm.graph.nodes:
        if n not in live or n.op in ("placeholder", "output"):
            continue
        if n.op == "call_module" and isinstance(gm.get_submodule(str(n.target)), RateNeuron):
            continue
        if n.op == "call_function" and n.target is operator.getitem:
            continue
        _check_linear(gm, n, live)
