"""Convert a trained rate network (ANN) into a spiking network (SNN), and verify the result.

Conversion keeps every weight and bias, replaces each :class:`~softlif.activations.RateNeuron`
by the spiking neuron of the same type and parameters, drops dropout and the training noise,
and puts a synapse on each neuron's output (Hunsberger & Eliasmith 2015, sec. 2.4).

The ANN is an ``nn.Sequential`` (nested ``Sequential`` allowed) of ``Conv2d``, ``Linear``,
``AvgPool2d``, ``Flatten``, ``Dropout``, ``Identity``, :class:`~softlif.layers.LocallyConnected2d`
and ``RateNeuron``, or any model ``torch.fx`` can trace whose activations are ``RateNeuron`` s
and whose other operations are linear (residual additions, concatenation, ``torch.flatten``,
``F.avg_pool2d``, ...: :mod:`softlif.graph`). It is deep-copied, never modified.

The spiking net is a list of :class:`Stage` s, one per population of neurons, in an order in
which every stage comes after its sources. Stage ``k`` maps its sources' spikes (0/1 per step;
source -1 is the analog input) through its linear part, filters the result with the synapse,
and drives its neurons; the last stage has no neurons and is the linear readout. A chain
(``nn.Sequential``) has sources ``(k - 1,)``. Because the synapse and the linear part are both
linear and time-invariant, filtering after the weights equals filtering each spike train before
them (the same order as Nengo's connections), and costs less; the analog input is not filtered.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from .activations import RateMode, RateNeuron
from .errors import SoftlifError
from .layers import LocallyConnected2d
from .neurons import NeuronType
from .quantized import bake_quantized
from .synapses import Synapse

_LINEAR_TYPES = (nn.Conv2d, nn.Linear, nn.AvgPool2d, nn.Flatten, LocallyConnected2d)
_DROPPED_TYPES = (nn.Dropout, nn.Dropout2d, nn.Identity)

_ADVICE = {
    nn.MaxPool2d: "max pooling has no spiking equivalent here: softlif.prepare(model, neuron, "
    "example_input=x, maxpool='avg') swaps it for average pooling (then fine-tune)",
    nn.BatchNorm2d: "softlif.prepare(model, neuron, example_input=x) folds batch norm into the "
    "preceding Conv2d/Linear",
    nn.BatchNorm1d: "softlif.prepare(model, neuron, example_input=x) folds batch norm into the "
    "preceding Linear",
    nn.ReLU: "softlif.prepare(model, softlif.LIF(), example_input=x) swaps every ReLU for "
    "softlif.RateNeuron (RateNeuron(IF()) is the spiking counterpart of ReLU; "
    "RateNeuron(LIF()) the paper's soft LIF); fine-tune, then convert",
}


class ConversionError(SoftlifError, ValueError):
    """The ANN contains something the converter cannot turn into an exact spiking equivalent."""


@dataclass
class Stage:
    """One layer of the spiking net: linear map -> synapse -> neurons (or readout).

    linear: the stage's linear ops with all biases removed, called with one tensor per source
        (input spikes are 0/1 per step).
    bias: the affine constant of the original ops, shaped like one output sample (no batch).
    neuron: the spiking neuron type, or None for the readout stage.
    in_shape / out_shape: one sample's shapes (no batch dimension); in_shape is the first
        source's (``in_shapes`` has every source's).
    sources: the stages whose outputs feed this one, in the order ``linear`` takes them; -1 is
        the network's (analog) input.
    """

    linear: nn.Module
    bias: torch.Tensor
    neuron: NeuronType | None
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    layer_names: tuple[str, ...]
    sources: tuple[int, ...] = (-1,)
    in_shapes: tuple[tuple[int, ...], ...] = ()

    @property
    def n_neurons(self) -> int:
        return 0 if self.neuron is None else int(torch.Size(self.out_shape).numel())

    def affine(self, *xs: torch.Tensor) -> torch.Tensor:
        """The original layer's output, biases included: ``linear(*xs) + bias``."""
        return self.linear(*xs) + self.bias


class SpikingNetwork(nn.Module):
    """The converted network: stages plus the synapse used on every neuron's output.

    ``rate_forward`` runs it as a rate network (for :func:`verify` and for the hard-rate
    prediction of the SNN); spiking simulation lives in :mod:`softlif.simulate`.
    """

    def __init__(self, stages: list[Stage], synapse: Synapse, input_shape: tuple[int, ...]):
        super().__init__()
        if not stages or stages[-1].neuron is not None:
            raise ConversionError("the network must end with a linear readout layer")
        if any(s.neuron is None for s in stages[:-1]):
            raise ConversionError("two linear stages without neurons between them")
        for k, s in enumerate(stages):
            if not s.sources or any(not -1 <= j < k for j in s.sources) \
                    or len(set(s.sources)) != len(s.sources):
                raise ConversionError(f"stage {k} ({', '.join(s.layer_names)}) has sources "
                                      f"{s.sources}: each must be -1 (the input) or an earlier "
                                      "stage, once")
        self.stages = stages
        self.synapse = synapse
        self.input_shape = tuple(input_shape)
        # register the linear parts so .to(device) and state_dict() see them
        self.linears = nn.ModuleList([s.linear for s in stages])
        for i, s in enumerate(stages):
            self.register_buffer(f"bias_{i}", s.bias)

    def _apply(self, fn, recurse=True):  # keep Stage.bias in step with the registered buffers
        super()._apply(fn, recurse)
        for i, s in enumerate(self.stages):
            s.bias = getattr(self, f"bias_{i}")
        return self

    @property
    def hidden_stages(self) -> list[Stage]:
        return self.stages[:-1]

    @property
    def neurons_per_layer(self) -> list[int]:
        return [s.n_neurons for s in self.hidden_stages]

    @property
    def n_outputs(self) -> int:
        return int(torch.Size(self.stages[-1].out_shape).numel())

    @torch.no_grad()
    def rate_forward(self, x: torch.Tensor, mode: RateMode = "hard",
                     rates: list[torch.Tensor] | None = None,
                     upto: int | None = None) -> torch.Tensor:
        """Run as a rate net: each neuron outputs ``amplitude * rate(J)`` (no noise). With a
        list ``rates``, each hidden layer's rates (Hz, ``(N, *out_shape)``) are appended to it.
        With ``upto``, stop after stage ``upto`` and return its output."""
        outs: list[torch.Tensor] = []
        for s in self.stages[:None if upto is None else upto + 1]:
            h = s.affine(*[x if j < 0 else outs[j] for j in s.sources])
            if s.neuron is not None:
                j = s.neuron.current(h)
                rate = s.neuron.soft_rate(j) if mode == "soft" else s.neuron.rate(j)
                if rates is not None:
                    rates.append(rate)
                h = s.neuron.amplitude * rate
            outs.append(h)
        return outs[-1]


def _flatten_sequential(model: nn.Module, prefix: str = "") -> list[tuple[str, nn.Module]]:
    if not isinstance(model, nn.Sequential):
        raise ConversionError(
            f"convert() needs an nn.Sequential (nested Sequentials are fine); got "
            f"{type(model).__name__}{' at ' + prefix if prefix else ''}. Rebuild the model as "
            "nn.Sequential of supported layers so that the order of operations is explicit."
        )
    out: list[tuple[str, nn.Module]] = []
    for name, child in model.named_children():
        path = f"{prefix}.{name}" if prefix else name
        if isinstance(child, nn.Sequential):
            out.extend(_flatten_sequential(child, path))
        else:
            out.append((path, child))
    return out


def _is_plain_chain(model: nn.Module) -> bool:
    """Whether ``model`` is an ``nn.Sequential`` (nested allowed) of layers this module knows
    (supported or with advice), converted layer by layer; anything else goes through
    :mod:`softlif.graph`."""
    if not isinstance(model, nn.Sequential):
        return False
    known = _LINEAR_TYPES + _DROPPED_TYPES + (RateNeuron,) + tuple(_ADVICE)
    return all(_is_plain_chain(m) if isinstance(m, nn.Sequential) else isinstance(m, known)
               for m in model.children())


def _check_supported(path: str, module: nn.Module) -> None:
    if isinstance(module, _LINEAR_TYPES + _DROPPED_TYPES + (RateNeuron,)):
        if isinstance(module, nn.AvgPool2d) and module.padding not in (0, (0, 0)):
            if module.count_include_pad:
                raise ConversionError(
                    f"layer {path} ({module}): padded average pooling that counts the padding "
                    "is supported in the ANN but not checked here; use padding=0"
                )
        return
    advice = next((a for t, a in _ADVICE.items() if isinstance(module, t)), None)
    raise ConversionError(
        f"layer {path} ({type(module).__name__}) cannot be converted to spiking neurons: "
        + (advice or "supported layers are Conv2d, Linear, AvgPool2d, Flatten, Dropout, "
           "Identity, LocallyConnected2d and softlif.RateNeuron")
    )


def _without_bias(modules: list[nn.Module]) -> nn.Sequential:
    seq = nn.Sequential(*[copy.deepcopy(m) for m in modules])
    for m in seq:
        if getattr(m, "bias", None) is not None:
            setattr(m, "bias", None)  # noqa: B010 - Module.__setattr__ drops the parameter
    for p in seq.parameters():
        p.requires_grad_(False)
    return seq


@torch.no_grad()
def convert(
    ann: nn.Module,
    input_shape: tuple[int, ...],
    synapse: Synapse | None = None,
) -> SpikingNetwork:
    """Convert a rate ANN into a :class:`SpikingNetwork`.

    ann: an ``nn.Sequential`` of supported layers with ``RateNeuron`` activations, or any model
        ``torch.fx`` can trace whose activations are ``RateNeuron`` s and whose other operations
        are linear (see :func:`softlif.graph.convert_graph`); unchanged.
    input_shape: one sample's shape, e.g. ``(1, 28, 28)``.
    synapse: the filter on every neuron's output (default: alpha, tau = 5 ms, the paper's).
    """
    synapse = Synapse("alpha", 0.005) if synapse is None else synapse
    ann = bake_quantized(ann)  # layers with quantised weights -> plain ones holding them
    if not _is_plain_chain(ann):
        from .graph import convert_graph  # a graph: residual additions, concatenation, ...
        return convert_graph(ann, input_shape, synapse)
    layers = _flatten_sequential(ann)
    for path, m in layers:
        _check_supported(path, m)
    device = next((p.device for p in ann.parameters()), torch.device("cpu"))

    stages: list[Stage] = []
    pending: list[tuple[str, nn.Module]] = []
    shape = tuple(input_shape)

    def close(neuron: NeuronType | None) -> None:
        nonlocal shape
        if not any(isinstance(m, _LINEAR_TYPES) and not isinstance(m, nn.Flatten)
                   for _, m in pending):
            what = "an activation" if neuron is not None else "the end of the network"
            raise ConversionError(
                f"{what} follows no Conv2d/Linear/LocallyConnected2d/AvgPool2d layer "
                f"(after {[p for p, _ in pending] or 'the input'}): two neuron layers in a row "
                "or a missing readout layer"
            )
        mods = [m for _, m in pending]
        linear = _without_bias(mods).eval()
        original = nn.Sequential(*[copy.deepcopy(m) for m in mods]).eval()
        zeros = torch.zeros((1, *shape), device=device)
        bias = original(zeros)[0].detach().clone()  # affine constant, (C, H, W) or (F,)
        stages.append(Stage(linear, bias, neuron, shape, tuple(bias.shape),
                            tuple(p for p, _ in pending), (len(stages) - 1,), (shape,)))
        shape = tuple(bias.shape)
        pending.clear()

    for path, m in layers:
        if isinstance(m, RateNeuron):
            close(m.neuron)
        elif isinstance(m, _DROPPED_TYPES):
            continue
        else:
            pending.append((path, m))
    close(None)
    return SpikingNetwork(stages, synapse, tuple(input_shape))


class VerificationError(SoftlifError, AssertionError):
    """The converted network in rate mode does not reproduce the ANN."""


@torch.no_grad()
def verify(
    ann: nn.Module,
    snn: SpikingNetwork,
    x: torch.Tensor,
    rtol: float = 1e-4,
    atol: float = 1e-5,
) -> float:
    """Run the ANN (eval mode, its own rate mode) and the SNN in rate mode on ``x`` and check
    that they agree; returns the largest absolute difference, raises if out of tolerance."""
    modes = {m.mode for m in ann.modules() if isinstance(m, RateNeuron)}
    if len(modes) != 1:
        raise VerificationError(f"expected one rate mode in the ANN, found {modes or 'none'}")
    was_training = ann.training
    ann.eval()
    try:
        expected = ann(x)
    finally:
        ann.train(was_training)
    got = snn.rate_forward(x, mode=modes.pop())
    diff = (got - expected).abs()
    worst = float(diff.max())
    bound = atol + rtol * expected.abs()
    if not bool((diff <= bound).all()):
        raise VerificationError(
            f"converted net differs from the ANN in rate mode: largest |difference| {worst:.3g} "
            f"(tolerance {atol:g} + {rtol:g} * |ANN output|)"
        )
    return worst
