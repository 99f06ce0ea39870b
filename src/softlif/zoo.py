"""The model zoo: trained nets shipped with softlif, loaded offline and checked by hash.

Each net is a weights-only safetensors checkpoint (:mod:`softlif.checkpoint`) in the package's
``pretrained_nets`` folder, listed in its ``manifest.json`` with its SHA-256, the data it was trained on,
the recipe, the epochs, the command that trained it and the errors and rates measured from
exactly these weights. Names follow the data set: the default net plain (``mnist``,
``cifar10``), variants with a suffix (``cifar10-relu``, ``cifar10-sigma0``).

``pretrained("cifar10")`` (``sl.pretrained``) returns the :class:`Checkpoint`; every command
that takes a checkpoint takes ``pretrained:NAME`` too (:func:`load`). A file whose hash is not
the manifest's is refused, naming both hashes; nothing is downloaded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .checkpoint import SAFETENSORS_SUFFIX, Checkpoint, load_checkpoint
from .errors import CheckpointError
from .io import file_digest, write_json_atomic

#: where the shipped nets and their manifest live
ZOO_DIR = Path(__file__).parent / "pretrained_nets"
MANIFEST = "manifest.json"
MANIFEST_FORMAT = "softlif-zoo-1"
#: the prefix naming a zoo net where a checkpoint path is expected
PREFIX = "pretrained:"
#: the fields every manifest entry has
FIELDS = ("file", "sha256", "bytes", "data", "recipe", "epochs", "command", "measured")
_MANIFEST_CAP = 1 << 20  # bytes: a manifest is a few kB


def sha256_of(path: Path) -> str:
    """SHA-256 of a file, hex."""
    return file_digest(path, "sha256")


def manifest(folder: Path | None = None) -> dict[str, dict[str, Any]]:
    """The zoo's entries by name (an empty zoo: {})."""
    path = (folder or ZOO_DIR) / MANIFEST
    if not path.exists():
        return {}
    if path.stat().st_size > _MANIFEST_CAP:
        raise CheckpointError(f"{path} is larger than {_MANIFEST_CAP} bytes: not a zoo manifest")
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{path} is not readable JSON ({e})") from None
    if not isinstance(doc, dict) or doc.get("format") != MANIFEST_FORMAT or not isinstance(
            doc.get("models"), dict):
        raise CheckpointError(f"{path} is not a softlif zoo manifest ({MANIFEST_FORMAT})")
    for name, entry in doc["models"].items():
        missing = [k for k in FIELDS if not isinstance(entry, dict) or k not in entry]
        if missing:
            raise CheckpointError(f"{path}: entry {name!r} lacks {', '.join(missing)}")
    return dict(doc["models"])


def names(folder: Path | None = None) -> list[str]:
    """The names of the zoo's nets."""
    return sorted(manifest(folder))


def pretrained(name: str, folder: Path | None = None) -> Checkpoint:
    """The zoo net ``name`` as a :class:`Checkpoint`, offline, after checking its SHA-256
    against the manifest (:class:`~softlif.errors.CheckpointError` naming the expected and the
    actual hash if they differ, or the known names if ``name`` is not one)."""
    folder = folder or ZOO_DIR
    entries = manifest(folder)
    if name not in entries:
        known = ", ".join(sorted(entries)) or "none yet"
        raise CheckpointError(f"no pretrained net {name!r}; the zoo has: {known}")
    entry = entries[name]
    path = folder / str(entry["file"])
    if Path(str(entry["file"])).name != str(entry["file"]) or not path.is_file():
        raise CheckpointError(f"pretrained net {name!r}: its file {entry['file']!r} is missing "
                              f"from {folder}")
    actual = sha256_of(path)
    if actual != entry["sha256"]:
        raise CheckpointError(f"pretrained net {name!r}: {path} has sha256 {actual}, the manifest "
                              f"expects {entry['sha256']}; the file was changed or damaged "
                              "(restore it from the repository)")
    return load_checkpoint(path)


def load(ref: str | Path) -> Checkpoint:
    """A checkpoint from a path, or from the zoo for ``pretrained:NAME``."""
    text = str(ref)
    if text.startswith(PREFIX):
        return pretrained(text[len(PREFIX):])
    return load_checkpoint(ref)


def publish(ck: Checkpoint, name: str, info: dict[str, Any], folder: Path | None = None) -> \
        dict[str, Any]:
    """Add (or replace) the zoo net ``name``: ``ck``'s weights without its training state,
    written as ``NAME.safetensors``, and its manifest entry: ``info`` (data, recipe, epochs,
    command, measured, ...) with the file, its size and SHA-256. Returns the entry."""
    folder = folder or ZOO_DIR
    if not name or Path(name).name != name or name.startswith("."):
        raise ValueError(f"a zoo name is a plain file stem, got {name!r}")
    file = f"{name}{SAFETENSORS_SUFFIX}"
    weights = Checkpoint(spec=ck.spec, activation=ck.activation, neuron=ck.neuron,
                         preprocess=ck.preprocess, state_dict=ck.state_dict, config=ck.config,
                         metrics={k: v for k, v in ck.metrics.items() if k != "history"},
                         epoch=ck.epoch, train_state=None)
    folder.mkdir(parents=True, exist_ok=True)
    weights.save(folder / file)
    entry = {**info, "file": file, "bytes": (folder / file).stat().st_size,
             "sha256": sha256_of(folder / file)}
    missing = [k for k in FIELDS if k not in entry]
    if missing:
        raise ValueError(f"zoo entry {name!r} lacks {', '.join(missing)}")
    entries = manifest(folder)
    entries[name] = entry
    write_json_atomic(folder / MANIFEST, {"format": MANIFEST_FORMAT,
                                          "models": dict(sorted(entries.items()))})
    return entry


__all__ = ["PREFIX", "ZOO_DIR", "load", "manifest", "names", "pretrained", "publish",
           "sha256_of"]
