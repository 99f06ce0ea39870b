"""softlif: spiking deep networks with LIF neurons (Hunsberger & Eliasmith, arXiv 1510.08829).

Pipeline: data -> train (soft-LIF rate net) -> convert -> simulate (spiking) -> evaluate / energy.

The public API, for a model of your own::

    import softlif as sl
    ann = sl.prepare(model, sl.LIF(), example_input=x)   # fold BN, ReLU -> soft LIF
    sl.fit(ann, train_loader, sl.TrainConfig(epochs=5))  # fine-tune (annealing, noise)
    snn = sl.convert(ann, input_shape=x.shape[1:])       # spiking populations, alpha synapses
    sl.verify(ann.eval(), snn, x)                        # rate mode == the ANN
    result = sl.simulate(snn, images)                    # 200 ms per image, 1 ms steps
    report = sl.energy(snn, result)                      # synops, efficiency, joules
    graph = sl.to_nir(snn)                               # NIR for other tools and hardware

Names are loaded on first use, so ``import softlif`` (and the command line) stays light.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "LIF": "neurons", "IF": "neurons", "LIF_MNIST": "neurons", "LIF_CIFAR": "neurons",
    "AdaptiveLIF": "adaptive", "QuantizedLIF": "quantized", "quantize_layers": "quantized",
    "RateNeuron": "activations", "set_rate_mode": "activations",
    "Synapse": "synapses",
    "prepare": "prepare",
    "convert": "convert", "verify": "convert", "SpikingNetwork": "convert",
    "ConversionError": "convert", "VerificationError": "convert",
    "simulate": "simulate", "Simulator": "simulate", "SimResult": "simulate",
    "energy": "energy", "energy_report": "energy", "EnergyReport": "energy",
    "DEVICES": "energy", "Device": "energy",
    "fit": "finetune", "TrainConfig": "train", "loader_error": "ann",
    "SoftlifError": "errors",
    "to_nir": "nir_io", "from_nir": "nir_io",
    "pretrained": "zoo",
}

__all__ = [  # the same names as _EXPORTS (a literal, for linters)
    "__version__", "LIF", "IF", "AdaptiveLIF", "QuantizedLIF", "quantize_layers", "LIF_MNIST",
    "LIF_CIFAR", "RateNeuron", "set_rate_mode",
    "Synapse", "prepare", "convert", "verify", "SpikingNetwork", "ConversionError",
    "VerificationError", "simulate", "Simulator", "SimResult", "energy", "energy_report",
    "EnergyReport", "DEVICES", "Device", "fit", "TrainConfig", "loader_error", "SoftlifError",
    "to_nir", "from_nir", "pretrained",
]

if TYPE_CHECKING:  # the same names, for type checkers and editors
    from .activations import RateNeuron, set_rate_mode
    from .adaptive import AdaptiveLIF
    from .ann import loader_error
    from .convert import ConversionError, SpikingNetwork, VerificationError, convert, verify
    from .energy import DEVICES, Device, EnergyReport, energy, energy_report
    from .errors import SoftlifError
    from .finetune import fit
    from .neurons import IF, LIF, LIF_CIFAR, LIF_MNIST
    from .nir_io import from_nir, to_nir
    from .prepare import prepare
    from .quantized import QuantizedLIF, quantize_layers
    from .simulate import SimResult, Simulator, simulate
    from .synapses import Synapse
    from .train import TrainConfig
    from .zoo import pretrained


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'softlif' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


class _Package(types.ModuleType):
    """``softlif.convert`` (and ``prepare``, ``simulate``, ``energy``) name both a submodule
    and the function the API exports from it. Importing the submodule would make the package
    attribute the module; the function wins instead (``from softlif.convert import ...``
    still reaches the module through ``sys.modules``)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and name in _EXPORTS \
                and _EXPORTS[name] == name:
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
