"""Checkpoints: everything needed to rebuild, convert, simulate or resume a trained network.

Written atomically (temporary file, then rename) with ``torch.save``; read with
``torch.load(weights_only=True)`` (no pickled code) and checked field by field: a missing or
malformed field, or a NaN/inf weight or mean image, is a :class:`CheckpointError` naming the
file and the field. Simulation and evaluation import this module, never the training loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .activations import set_smoothing
from .data import Preprocess
from .errors import CheckpointError, SoftlifError
from .io import atomic_path
from .networks import NetSpec, build, spec_from_dict, spec_to_dict
from .neurons import NeuronType, neuron_from_dict, neuron_to_dict

CHECKPOINT_FORMAT = "softlif-checkpoint-1"


@dataclass
class Checkpoint:
    """Everything a run needs to rebuild, convert, simulate or resume a network."""

    spec: NetSpec
    activation: str
    neuron: NeuronType | None
    preprocess: Preprocess
    state_dict: dict[str, torch.Tensor]
    config: dict[str, Any]
    metrics: dict[str, Any] = field(default_factory=dict)
    epoch: int = 0
    train_state: dict[str, Any] | None = None  # optimizer, RNG: for resuming

    def build_model(self) -> nn.Sequential:
        """The trained ANN, in eval mode, with the checkpoint's weights."""
        model = build(self.spec, self.activation, self.neuron)  # type: ignore[arg-type]
        if self.neuron is not None:
            g = self.metrics.get("final_smoothing")
            if g is not None:
                set_smoothing(model, g)
        try:
            model.load_state_dict(self.state_dict)
        except RuntimeError as e:  # missing/unexpected keys, wrong shapes
            first = str(e).strip().splitlines()
            raise CheckpointError(
                f"the checkpoint's weights do not fit its {self.spec.name} net with "
                f"{self.activation} units: {' '.join(first[:3])}"[:400]) from None
        return model.eval()

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "spec": spec_to_dict(self.spec),
            "activation": self.activation,
            "neuron": None if self.neuron is None else neuron_to_dict(self.neuron),
            "preprocess": self.preprocess.to_dict(),
            "state_dict": self.state_dict,
            "config": self.config,
            "metrics": self.metrics,
            "epoch": self.epoch,
            "train_state": self.train_state,
        }

    def save(self, path: str | Path) -> Path:
        """Write atomically: to a temporary file beside ``path``, then rename over it."""
        path = Path(path)
        with atomic_path(path) as tmp:
            torch.save(self.to_dict(), tmp)
        return path


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Load and check a checkpoint safely (``weights_only=True``: no pickled code).

    Raises :class:`CheckpointError` naming the file and the field for a missing, unreadable,
    malformed or non-finite checkpoint (NaN/inf weights or mean image are refused, with the
    tensor's name), never a bare KeyError/TypeError.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist (train one with `softlif train`)")
    try:
        d = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file gets the same advice
        raise CheckpointError(
            f"{path} is not a readable softlif checkpoint ({type(e).__name__}: {e}"[:400]
            + "). Checkpoints are written by `softlif train`."
        ) from None
    if not isinstance(d, dict) or d.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a softlif checkpoint (format {CHECKPOINT_FORMAT})")
    missing = [k for k in _FIELDS if k not in d]
    if missing:
        raise CheckpointError(f"{path}: checkpoint lacks {', '.join(map(repr, missing))}; "
                              "it was not written by `softlif train` or is damaged")

    def field(name: str, build: Any) -> Any:
        try:
            return build(d[name])
        except SoftlifError as e:
            raise CheckpointError(f"{path}: field {name!r}: {e}") from None
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise CheckpointError(f"{path}: field {name!r} is malformed "
                                  f"({type(e).__name__}: {e})"[:400]) from None

    def typed(kind: type | tuple[type, ...], what: str) -> Any:
        def check(v: Any) -> Any:
            if not isinstance(v, kind) or isinstance(v, bool) and kind is int:
                raise TypeError(f"expected {what}, got {type(v).__name__}")
            return v
        return check

    state = field("state_dict", typed(dict, "a dict of tensors"))
    for name, t in state.items():
        if not isinstance(name, str) or not isinstance(t, torch.Tensor):
            raise CheckpointError(f"{path}: field 'state_dict' entry {name!r} is not a tensor")
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise CheckpointError(f"{path}: weight {name!r} holds NaN or infinite values; the "
                                  "training that wrote it diverged (use an earlier checkpoint)")
    ck = Checkpoint(
        spec=field("spec", spec_from_dict),
        activation=field("activation", typed(str, "a string")),
        neuron=field("neuron", lambda v: None if v is None else neuron_from_dict(v)),
        preprocess=field("preprocess", Preprocess.from_dict),
        state_dict=state,
        config=field("config", typed(dict, "a dict")),
        metrics=field("metrics", typed(dict, "a dict")),
        epoch=field("epoch", typed(int, "an int")),
        train_state=field("train_state", lambda v: v if v is None else typed(dict, "a dict")(v)),
    )
    if ck.activation not in ("softlif", "lif", "relu", "if"):
        raise CheckpointError(f"{path}: field 'activation' is {ck.activation!r}; expected "
                              "softlif, lif, relu or if")
    if ck.epoch < 0:
        raise CheckpointError(f"{path}: field 'epoch' is negative ({ck.epoch})")
    return ck


_FIELDS = ("spec", "activation", "neuron", "preprocess", "state_dict", "config", "metrics",
           "epoch", "train_state")
