"""The paper's five networks as data (SPEC section 4), a builder, and per-layer counts.

A :class:`NetSpec` lists layers; :func:`build` turns it into an ``nn.Sequential`` with a chosen
activation (soft LIF with the paper's parameters, ReLU, or IF); :func:`layer_table` gives the
neurons, synapses and flops of every weight layer, the counts behind the energy model.

Counting rules (Hunsberger & Eliasmith 2016, arXiv 1611.05141, sec. 3): synapses of a conv or
locally connected layer = output positions x input channels x kernel area x filters (padded
taps included); of a dense layer = inputs x outputs. Every weight layer but the last feeds a
layer of neurons of its own output size.

>>> [row.neurons for row in layer_table(NETS["mnist"])]
[12544, 12544, 2000, 0]
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from .activations import RateNeuron
from .layers import LocallyConnected2d, avg_pool
from .neurons import IF, LIF_CIFAR, LIF_MNIST, NeuronType, neuron_from_dict, neuron_to_dict


@dataclass(frozen=True)
class Conv:
    filters: int
    kernel: int
    stride: int = 1
    padding: int = 0


@dataclass(frozen=True)
class Local:
    """Locally connected: unshared weights and a bias per output position and filter."""

    filters: int
    kernel: int
    padding: int = 0


@dataclass(frozen=True)
class Pool:
    """Average pooling, ceil mode, dividing by in-bounds pixels (cuda-convnet)."""

    kernel: int
    stride: int


@dataclass(frozen=True)
class Dense:
    units: int


@dataclass(frozen=True)
class Dropout:
    p: float = 0.5


Layer = Conv | Local | Pool | Dense | Dropout


@dataclass(frozen=True)
class NetSpec:
    """A network: input shape (C, H, W), layers in order, and the paper's neuron."""

    name: str
    input_shape: tuple[int, int, int]
    layers: tuple[Layer, ...]
    neuron: NeuronType = field(default=LIF_MNIST)

    @property
    def classes(self) -> int:
        last = self.layers[-1]
        assert isinstance(last, Dense)
        return last.units


_MNIST_LAYERS: tuple[Layer, ...] = (
    Conv(16, 5, padding=2), Pool(2, 2), Conv(64, 5, padding=2), Pool(2, 2),
    Dense(2000), Dropout(0.5), Dense(10),
)


def _cifar_layers(classes: int) -> tuple[Layer, ...]:
    return (
        Conv(64, 5, padding=2), Pool(3, 2), Conv(64, 5, padding=2), Pool(3, 2),
        Local(64, 3, padding=1), Local(32, 3, padding=1), Dense(classes),
    )


NETS: dict[str, NetSpec] = {
    "mnist": NetSpec("mnist", (1, 28, 28), _MNIST_LAYERS, LIF_MNIST),
    "svhn": NetSpec("svhn", (3, 28, 28), _MNIST_LAYERS, LIF_MNIST),
    "cifar10": NetSpec("cifar10", (3, 24, 24), _cifar_layers(10), LIF_CIFAR),
    "cifar100": NetSpec("cifar100", (3, 24, 24), _cifar_layers(100), LIF_CIFAR),
    "imagenet": NetSpec(
        "imagenet", (3, 224, 224),
        (
            Conv(64, 11, stride=4, padding=2), Pool(3, 2), Conv(192, 5, padding=2), Pool(3, 2),
            Conv(384, 3, padding=1), Conv(256, 3, padding=1), Conv(256, 3, padding=1),
            Pool(3, 2), Dense(4096), Dropout(0.5), Dense(4096), Dropout(0.5), Dense(1000),
        ),
        LIF_CIFAR,
    ),
}


#: The authors' weight initialisation (SPEC section 4): per weight layer in order, the std of
#: the Gaussian weights and the constant bias. Their values assume their input scales
#: (:data:`softlif.data.PAPER_PIXEL_DIVISOR`): 0-255 for CIFAR, SVHN and ImageNet.
PAPER_INIT: dict[str, tuple[tuple[float, float], ...]] = {
    "mnist": ((0.1, 0.0), (0.1, 0.0), (0.01, 0.0), (0.01, 0.0)),
    "svhn": ((1e-4, 0.0), (1e-4, 0.0), (1e-3, 0.0), (0.01, 0.0)),
    "cifar10": ((1e-4, 0.0), (0.01, 0.0), (0.04, 0.0), (0.04, 0.0), (0.01, 0.0)),
    "cifar100": ((1e-4, 0.0), (0.01, 0.0), (0.04, 0.0), (0.04, 0.0), (0.01, 0.0)),
    "imagenet": ((0.01, 0.0), (0.01, 1.0), (0.03, 0.0), (0.03, 1.0), (0.03, 1.0),
                 (0.01, 1.0), (0.01, 1.0), (0.01, 0.0)),
}


def init_paper(model: nn.Module, spec: NetSpec, generator: torch.Generator | None = None) -> None:
    """Re-initialise ``model`` (built from ``spec``) in place with the authors' scheme:
    Gaussian weights of std initW per layer, constant biases (:data:`PAPER_INIT`).

    Raises ValueError when ``spec`` is not one of the paper's nets or the model's weight
    layers do not match it.
    """
    if spec.name not in PAPER_INIT:
        raise ValueError(f"no paper initialisation for net {spec.name!r}; known: "
                         f"{', '.join(PAPER_INIT)}")
    table = PAPER_INIT[spec.name]
    layers = [m for m in model.modules()
              if isinstance(m, (nn.Conv2d, nn.Linear, LocallyConnected2d))]
    if len(layers) != len(table):
        raise ValueError(f"model has {len(layers)} weight layers, the {spec.name} net "
                         f"{len(table)}")
    with torch.no_grad():
        for layer, (std, bias) in zip(layers, table, strict=True):
            w = torch.randn(layer.weight.shape, generator=generator, dtype=torch.float32)
            layer.weight.copy_(w * std)
            if layer.bias is not None:
                layer.bias.fill_(bias)


_LAYER_TYPES: dict[str, type] = {"conv": Conv, "local": Local, "pool": Pool, "dense": Dense,
                                  "dropout": Dropout}


def spec_to_dict(spec: NetSpec) -> dict:
    """Plain-data form of a spec (for checkpoints, JSON and config files)."""
    return {
        "name": spec.name,
        "input_shape": list(spec.input_shape),
        "layers": [{"kind": type(layer).__name__.lower(), **dataclasses.asdict(layer)}
                   for layer in spec.layers],
        "neuron": neuron_to_dict(spec.neuron),
    }


def spec_from_dict(d: dict) -> NetSpec:
    """Inverse of :func:`spec_to_dict`, with clear errors for malformed specs."""
    try:
        layers = []
        for item in d["layers"]:
            item = dict(item)
            kind = item.pop("kind")
            if kind not in _LAYER_TYPES:
                raise ValueError(f"unknown layer kind {kind!r}; known: {', '.join(_LAYER_TYPES)}")
            layers.append(_LAYER_TYPES[kind](**item))
        neuron = neuron_from_dict(d["neuron"])  # any registered neuron type
        c, h, w = (int(v) for v in d["input_shape"])
        return NetSpec(str(d["name"]), (c, h, w), tuple(layers), neuron)
    except (KeyError, TypeError) as e:
        raise ValueError(f"malformed network spec: {type(e).__name__}: {e}") from None


def get_spec(name: str) -> NetSpec:
    """The paper's network by name (mnist, svhn, cifar10, cifar100, imagenet)."""
    try:
        return NETS[name]
    except KeyError:
        raise ValueError(f"unknown network {name!r}; choose one of {', '.join(NETS)}") from None


Activation = Literal["softlif", "lif", "relu", "if"]


def _pool_out(size: int, k: int, s: int) -> int:
    return math.ceil((size - k) / s) + 1


def build(
    spec: NetSpec,
    activation: Activation = "softlif",
    neuron: NeuronType | None = None,
    generator: torch.Generator | None = None,
) -> nn.Sequential:
    """Build the network as ``nn.Sequential``.

    activation: ``"softlif"`` (soft LIF rate with training noise; the paper's ANN), ``"lif"``
    (hard LIF rate), ``"relu"`` (the conventional baseline) or ``"if"`` (soft IF rate).
    neuron: override the spec's neuron parameters. generator: for the training noise.
    """
    if activation not in ("softlif", "lif", "relu", "if"):
        raise ValueError(f"activation must be softlif, lif, relu or if; got {activation!r}")
    n = neuron if neuron is not None else (IF() if activation == "if" else spec.neuron)

    def act() -> nn.Module:
        if activation == "relu":
            return nn.ReLU()
        return RateNeuron(n, mode="hard" if activation == "lif" else "soft", generator=generator)

    c, h, w = spec.input_shape
    mods: list[nn.Module] = []
    weight_layers = [i for i, layer in enumerate(spec.layers) if not isinstance(layer, (Pool, Dropout))]
    flat = False
    for i, layer in enumerate(spec.layers):
        if isinstance(layer, Conv):
            mods.append(nn.Conv2d(c, layer.filters, layer.kernel, layer.stride, layer.padding))
            c = layer.filters
            h = (h + 2 * layer.padding - layer.kernel) // layer.stride + 1
            w = (w + 2 * layer.padding - layer.kernel) // layer.stride + 1
        elif isinstance(layer, Local):
            lc = LocallyConnected2d(c, layer.filters, (h, w), layer.kernel, 1, layer.padding)
            mods.append(lc)
            c, (h, w) = layer.filters, lc.out_size
        elif isinstance(layer, Pool):
            mods.append(avg_pool(layer.kernel, layer.stride))
            h, w = _pool_out(h, layer.kernel, layer.stride), _pool_out(w, layer.kernel, layer.stride)
        elif isinstance(layer, Dense):
            if not flat:
                mods.append(nn.Flatten())
                c, h, w, flat = c * h * w, 1, 1, True
            mods.append(nn.Linear(c, layer.units))
            c = layer.units
        elif isinstance(layer, Dropout):
            mods.append(nn.Dropout(layer.p))
        if i in weight_layers[:-1]:
            mods.append(act())
    model = nn.Sequential(*mods)
    bits = getattr(n, "weight_bits", None) if activation != "relu" else None
    if bits:  # a neuron type for hardware with narrow weights (QuantizedLIF)
        from .quantized import quantize_layers
        quantize_layers(model, int(bits))
    return model


@dataclass(frozen=True)
class LayerCount:
    """Counts for one weight layer (one population of neurons, or the readout).
    flops = 2 * synapses + neurons (SPEC section 5).

    synapses: the paper's convention: a layer's multiply-adds, its inputs being the units it
    reads (pooled units after a pooling layer).
    sources: the layers feeding it (indices into the table's neuron layers; -1 the analog
    input; empty: the previous layer, or the input for the first). source_synapses: the
    synapses from each source (paper convention; they sum to ``synapses``).
    chip_synapses: per source, the synaptic events one spike per second of every source neuron
    causes when each spike is delivered through every pooled unit that contains it (what a
    chip without pooling units sees: ``k * k`` times the paper's count after a k x k pool).
    """

    name: str
    kind: str
    out_shape: tuple[int, ...]
    neurons: int  # neurons driven by this layer (0 for the readout)
    synapses: int
    sources: tuple[int, ...] = ()
    source_synapses: tuple[int, ...] = ()
    chip_synapses: tuple[float, ...] = ()

    @property
    def flops(self) -> int:
        return 2 * self.synapses + self.neurons


def layer_table(spec: NetSpec) -> list[LayerCount]:
    """Neurons and synapses of every weight layer of ``spec``, in order."""
    c, h, w = spec.input_shape
    rows: list[LayerCount] = []
    weight_layers = [x for x in spec.layers if isinstance(x, (Conv, Local, Dense))]
    fan = 1  # paths per pooled unit from the neurons below (k * k after a k x k pool)
    for layer in spec.layers:
        if isinstance(layer, (Conv, Local)):
            stride = layer.stride if isinstance(layer, Conv) else 1
            oh = (h + 2 * layer.padding - layer.kernel) // stride + 1
            ow = (w + 2 * layer.padding - layer.kernel) // stride + 1
            syn = oh * ow * c * layer.kernel**2 * layer.filters
            c, h, w = layer.filters, oh, ow
            shape: tuple[int, ...] = (c, h, w)
        elif isinstance(layer, Dense):
            syn = c * h * w * layer.units
            c, h, w = layer.units, 1, 1
            shape = (c,)
        elif isinstance(layer, Pool):
            h, w = _pool_out(h, layer.kernel, layer.stride), _pool_out(w, layer.kernel, layer.stride)
            fan *= layer.kernel**2
            continue
        else:
            continue
        last = len(rows) == len(weight_layers) - 1
        kind = type(layer).__name__.lower()
        source = len(rows) - 1
        rows.append(LayerCount(f"{kind}{len(rows) + 1}", kind, shape,
                               0 if last else int(math.prod(shape)), syn, (source,), (syn,),
                               (float(syn * fan),)))
        fan = 1
    return rows
