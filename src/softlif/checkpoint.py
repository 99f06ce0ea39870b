"""Checkpoints: everything needed to rebuild, convert, simulate or resume a trained network.

Two file formats, chosen by the file name when saving and by the content when loading:

* ``.safetensors`` (:data:`SAFETENSORS_SUFFIX`): every tensor (weights, mean image, optimizer
  state, random-generator states) as a safetensors record, everything else as one JSON
  document in the file's metadata; no pickle anywhere, readable by any safetensors reader.
  The model zoo and the checkpoints committed to the repository use it.
* anything else: ``torch.save``'s zip, read with ``torch.load(weights_only=True)`` after a dry
  run of its pickle (:func:`dry_run`: no pickled code, no allocation the file asks for).

Written atomically (temporary file, then rename); read and checked field by field: a missing or
malformed field, or a NaN/inf weight or mean image, is a :class:`CheckpointError` naming the
file and the field. Simulation and evaluation import this module, never the training loop.
"""

from __future__ import annotations

import collections
import io
import json
import math
import pickle
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from .activations import set_smoothing
from .data import Preprocess
from .errors import CheckpointError, SoftlifError
from .io import atomic_path
from .networks import NetSpec, build, spec_from_dict, spec_to_dict
from .neurons import NeuronType, neuron_from_dict, neuron_to_dict

CHECKPOINT_FORMAT = "softlif-checkpoint-1"
SAFETENSORS_SUFFIX = ".safetensors"
_META_KEY = "softlif"  # the metadata entry holding the JSON document


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
        """Write atomically: to a temporary file beside ``path``, then rename over it; as
        safetensors when ``path`` ends in ``.safetensors``, else with ``torch.save``."""
        path = Path(path)
        with atomic_path(path) as tmp:
            if path.suffix == SAFETENSORS_SUFFIX:
                save_safetensors(self.to_dict(), tmp)
            else:
                torch.save(self.to_dict(), tmp)
        return path


# -- the safetensors form: tensors as records, the rest as JSON in the metadata --------------

def _flatten(obj: Any, name: str, tensors: dict[str, torch.Tensor]) -> Any:
    """``obj`` as JSON with each tensor replaced by ``{"__tensor__": record name}`` (its path)
    and each dict with non-string keys (an optimizer's per-parameter state) by
    ``{"__items__": [[key, value], ...]}``; the tensors go to ``tensors``."""
    if isinstance(obj, torch.Tensor):
        if name in tensors:
            raise ValueError(f"two tensors would be stored as {name!r}")
        tensors[name] = obj.detach().to("cpu", copy=True).contiguous()
        return {"__tensor__": name}
    if isinstance(obj, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in obj):
            return {k: _flatten(v, f"{name}.{k}", tensors) for k, v in obj.items()}
        if not all(isinstance(k, (str, int)) and not isinstance(k, bool) for k in obj):
            raise TypeError(f"{name}: dict keys must be str or int")
        return {"__items__": [[k, _flatten(v, f"{name}.{i}", tensors)]
                              for i, (k, v) in enumerate(obj.items())]}
    if isinstance(obj, (list, tuple)):
        return [_flatten(v, f"{name}.{i}", tensors) for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, (str, bool, int, float)):
        return obj
    raise TypeError(f"{name}: cannot store a {type(obj).__name__} in a checkpoint")


def _unflatten(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {"__tensor__"}:
            if obj["__tensor__"] not in tensors:
                raise ValueError(f"the document names a tensor {obj['__tensor__']!r:.80} the "
                                 "file does not hold")
            return tensors[obj["__tensor__"]]
        if set(obj) == {"__items__"}:
            return {k: _unflatten(v, tensors) for k, v in obj["__items__"]}
        return {k: _unflatten(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_unflatten(v, tensors) for v in obj]
    return obj


def save_safetensors(d: dict[str, Any], path: str | Path) -> None:
    """Write a checkpoint dict (:meth:`Checkpoint.to_dict`) to ``path`` as safetensors."""
    tensors: dict[str, torch.Tensor] = {}
    doc = _flatten(d, "ck", tensors)
    save_file(tensors, str(path), metadata={"format": CHECKPOINT_FORMAT,
                                            _META_KEY: json.dumps(doc)})


def is_safetensors(path: Path) -> bool:
    """Whether ``path`` holds a safetensors file (an 8-byte header length, then JSON)."""
    with open(path, "rb") as f:
        head = f.read(9)
    return len(head) == 9 and head[8:9] == b"{" and not head.startswith(b"PK")


def _load_safetensors(path: Path) -> dict[str, Any]:
    """The checkpoint dict of a safetensors checkpoint. The reader checks that every record
    lies inside the file, so nothing it allocates exceeds the file's size."""
    with safe_open(str(path), framework="pt", device="cpu") as f:  # type: ignore[no-untyped-call]
        meta = f.metadata() or {}
        if meta.get("format") != CHECKPOINT_FORMAT or _META_KEY not in meta:
            raise ValueError("no softlif document in its metadata")
        doc = json.loads(meta[_META_KEY])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    d = _unflatten(doc, tensors)
    if not isinstance(d, dict):
        raise ValueError("its document is not a dict")
    return d


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
        if is_safetensors(path):
            d = _load_safetensors(path)
        else:
            dry_run(path)  # globals and storage sizes checked before torch allocates anything
            d = torch.load(path, map_location="cpu", weights_only=True)
    except CheckpointError:
        raise
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
    if ck.preprocess.output_shape != ck.spec.input_shape:
        raise CheckpointError(f"{path}: its preprocessing gives inputs of shape "
                              f"{ck.preprocess.output_shape}, its net takes {ck.spec.input_shape}")
    _check_weights_fit(ck, path)
    return ck


def _check_weights_fit(ck: Checkpoint, path: Path) -> None:
    """The spec's parameter shapes, built on the meta device (no memory), must be the stored
    weights' shapes: a spec claiming a (1, 100000, 100000) input cannot make softlif allocate
    its weights."""
    try:
        with torch.device("meta"):
            model = build(ck.spec, ck.activation, ck.neuron)  # type: ignore[arg-type]
    except (ValueError, TypeError, RuntimeError) as e:
        raise CheckpointError(f"{path}: field 'spec' does not build a net ({e})"[:400]) from None
    want = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    have = {k: tuple(v.shape) for k, v in ck.state_dict.items()}
    if want != have:
        diff = sorted(k for k in want.keys() | have.keys() if want.get(k) != have.get(k))
        k = diff[0]
        raise CheckpointError(
            f"{path}: the weights do not fit its {ck.spec.name} net with {ck.activation} units "
            f"({len(diff)} mismatch(es); {k!r}: the net wants {want.get(k, 'nothing')}, the file "
            f"holds {have.get(k, 'nothing')})")


# -- a dry run of the checkpoint's pickle, before torch.load --------------------------------
# torch's weights_only unpickler admits callables such as bytearray (bytearray(2**33) in a
# 1 kB file allocates 8 GiB) and allocates each tensor storage at the size the pickle declares.
# The dry run replays the pickle with inert stand-ins: it admits only the globals softlif's own
# checkpoints contain and checks every declared storage against the bytes the file holds.

_STORAGE_ITEMSIZE = {"FloatStorage": 4, "DoubleStorage": 8, "HalfStorage": 2,
                     "BFloat16Storage": 2, "LongStorage": 8, "IntStorage": 4, "ShortStorage": 2,
                     "CharStorage": 1, "ByteStorage": 1, "BoolStorage": 1, "UntypedStorage": 1}
_PICKLE_CAP = 64 * 2**20  # bytes of pickle (the tensors' data are separate records)


class _StorageType:
    def __init__(self, itemsize: int) -> None:
        self.itemsize = itemsize


def _inert(*args: Any, **kwargs: Any) -> None:
    return None


class _DryRun(pickle.Unpickler):
    def __init__(self, data: bytes, records: dict[str, int], source: str) -> None:
        super().__init__(io.BytesIO(data))
        self.records, self.source = records, source

    def find_class(self, module: str, name: str) -> Any:
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch" and name in _STORAGE_ITEMSIZE:
            return _StorageType(_STORAGE_ITEMSIZE[name])
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return self._check_view
        if (module == "torch._utils" and name.startswith("_rebuild_")) or (
                module == "torch" and name in ("device", "Size")):
            return _inert
        raise CheckpointError(f"{self.source}: refusing global {module}.{name}; softlif "
                              "checkpoints hold only tensors, numbers, strings and containers")

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise CheckpointError(f"{self.source}: unexpected persistent id {pid!r:.80}")
        kind, key, numel = pid[1], pid[2], pid[4]
        if not isinstance(kind, _StorageType) or not isinstance(numel, int) or numel < 0:
            raise CheckpointError(f"{self.source}: malformed storage {pid!r:.80}")
        have = self.records.get(str(key))
        if have is None or numel * kind.itemsize > have:
            raise CheckpointError(f"{self.source}: a tensor storage declares "
                                  f"{numel * kind.itemsize:,} bytes, the file holds "
                                  f"{have if have is not None else 'none'} for it: damaged")
        return _Storage(numel)

    def _check_view(self, storage: Any, offset: Any, size: Any, stride: Any, *rest: Any) -> None:
        """A tensor may view only elements its storage holds, each once: no stride-0 or
        overlapping view that would expand 8 stored bytes into gigabytes."""
        ok = (isinstance(storage, _Storage) and isinstance(offset, int) and offset >= 0
              and isinstance(size, tuple) and isinstance(stride, tuple)
              and len(size) == len(stride)
              and all(isinstance(v, int) and v >= 0 for v in (*size, *stride)))
        if not ok:
            raise CheckpointError(f"{self.source}: malformed tensor record")
        numel = math.prod(size)
        last = offset + sum((n - 1) * st for n, st in zip(size, stride, strict=True))
        if numel and (numel > storage.numel or last >= storage.numel
                      or any(st == 0 for n, st in zip(size, stride, strict=True) if n > 1)):
            raise CheckpointError(
                f"{self.source}: a tensor of shape {size} views {numel:,} elements of a storage "
                f"of {storage.numel:,} (strides {stride}): expanded or out of bounds, refused")


class _Storage:
    def __init__(self, numel: int) -> None:
        self.numel = numel


def dry_run(path: Path) -> None:
    """Check ``path``'s pickle (globals, storage sizes) without allocating what it declares.

    Raises CheckpointError for anything a softlif checkpoint never contains."""
    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
            pkl = [i for i in infos if i.filename.endswith("/data.pkl")]
            if len(pkl) != 1:
                raise CheckpointError(f"{path} is not a softlif checkpoint (no single data.pkl "
                                      "record: not written by torch.save)")
            if pkl[0].file_size > _PICKLE_CAP:
                raise CheckpointError(f"{path}: its pickle declares {pkl[0].file_size:,} bytes "
                                      f"(at most {_PICKLE_CAP:,})")
            prefix = pkl[0].filename[: -len("data.pkl")] + "data/"
            records = {i.filename[len(prefix):]: i.file_size for i in infos
                       if i.filename.startswith(prefix)}
            data = z.read(pkl[0])
    except CheckpointError:
        raise
    except (OSError, zipfile.BadZipFile, EOFError, zlib.error, ValueError, NotImplementedError,
            RuntimeError) as e:  # a damaged zip: bad names (UnicodeDecodeError), flags
        raise CheckpointError(f"{path} is not a readable softlif checkpoint ({type(e).__name__}: "
                              f"{e}). Checkpoints are written by `softlif train`."[:400]) from None
    try:
        _DryRun(data, records, str(path)).load()
    except CheckpointError:
        raise
    except Exception as e:  # noqa: BLE001 - a damaged pickle raises many types
        raise CheckpointError(f"{path}: damaged checkpoint pickle ({type(e).__name__}: "
                              f"{e})"[:400]) from None


_FIELDS = ("spec", "activation", "neuron", "preprocess", "state_dict", "config", "metrics",
           "epoch", "train_state")
