"""A restricted unpickler for the CIFAR "python version" files.

The official ``cifar-10-batches-py`` / ``cifar-100-python`` files are pickled dicts of
bytes/str keys, lists of ints, bytes and one uint8 ndarray (pickled by Python 2, hence
``encoding="bytes"``). A plain :func:`pickle.load` would run any callable a hostile file
names; :class:`RestrictedUnpickler` resolves only the globals such files contain and
refuses everything else before it can run.
"""

from __future__ import annotations

import builtins
import importlib
import io
import pickle
from pathlib import Path
from typing import Any

from .errors import DataError


def _numpy_attr(modules: tuple[str, ...], name: str) -> Any:
    """Resolve ``name`` in the first importable module of ``modules`` (numpy 2 vs 1 names)."""
    for mod in modules:
        try:
            return getattr(importlib.import_module(mod), name)
        except (ImportError, AttributeError):
            continue
    raise ImportError(f"numpy provides none of {[m + '.' + name for m in modules]}")


_BUILTINS = ("dict", "list", "str", "bytes", "int")
_MULTIARRAY = ("numpy._core.multiarray", "numpy.core.multiarray")
_NUMERIC = ("numpy._core.numeric", "numpy.core.numeric")

#: (module, name) -> how to get the object. Both the numpy >= 2 (``numpy._core``) and the
#: numpy 1 / Python 2 era (``numpy.core``) spellings resolve to the installed numpy's object,
#: without importing the deprecated ``numpy.core`` alias.
_ALLOWED: dict[tuple[str, str], Any] = {
    **{
        (mod, n): (lambda n=n: getattr(builtins, n))
        for mod, names in (("builtins", _BUILTINS), ("__builtin__", ("dict", "list", "str", "int")))
        for n in names
    },
    ("__builtin__", "unicode"): lambda: builtins.str,
    ("_codecs", "encode"): lambda: __import__("codecs").encode,  # bytes pickled by py3, protocol 2
    ("numpy", "ndarray"): lambda: __import__("numpy").ndarray,
    ("numpy", "dtype"): lambda: __import__("numpy").dtype,
    # ndarray.__reduce__ (protocols 0-4) -> _reconstruct(ndarray, (0,), b"b") + __setstate__
    ("numpy.core.multiarray", "_reconstruct"): lambda: _numpy_attr(_MULTIARRAY, "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"): lambda: _numpy_attr(_MULTIARRAY, "_reconstruct"),
    # ndarray.__reduce_ex__(5) -> _frombuffer(buffer, dtype, shape, order)
    ("numpy.core.numeric", "_frombuffer"): lambda: _numpy_attr(_NUMERIC, "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"): lambda: _numpy_attr(_NUMERIC, "_frombuffer"),
}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that admits only builtins dict/list/str/bytes/int, ``_codecs.encode`` and
    the numpy globals that rebuild an ndarray (``_reconstruct``, ``_frombuffer``,
    ``ndarray``, ``dtype``). Any other global raises :class:`DataError` naming the file
    and the global, before anything is called.
    """

    def __init__(self, file: Any, *, source: str = "<pickle>") -> None:
        super().__init__(file, encoding="bytes")
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        get = _ALLOWED.get((module, name))
        if get is None:
            raise DataError(
                f"{self.source}: refusing to unpickle forbidden global {module}.{name} "
                f"(CIFAR python files contain only dicts, lists, bytes, ints and uint8 "
                f"arrays; this file is corrupt or malicious)"
            )
        return get()

    def persistent_load(self, pid: Any) -> Any:
        raise DataError(f"{self.source}: refusing pickle persistent id {pid!r}")


def safe_pickle_load(path: str | Path) -> Any:
    """Unpickle ``path`` with :class:`RestrictedUnpickler` (``encoding="bytes"``).

    Raises:
        DataError: forbidden global, or the file is truncated / not a pickle.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise DataError(f"{path}: cannot read file ({e})") from e
    try:
        return RestrictedUnpickler(io.BytesIO(data), source=str(path)).load()
    except DataError:
        raise
    except Exception as e:  # truncated / garbage pickles raise many different types
        raise DataError(f"{path}: not a valid pickle file ({type(e).__name__}: {e})") from e
