"""A restricted unpickler for the CIFAR "python version" files.

The official ``cifar-10-batches-py`` / ``cifar-100-python`` files are pickled dicts of
bytes/str keys, lists of ints, bytes and one uint8 ndarray (pickled by Python 2, hence
``encoding="bytes"``). A plain :func:`pickle.load` would run any callable a hostile file
names; :class:`RestrictedUnpickler` resolves only the globals such files contain and
refuses everything else before it can run.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from .errors import DataError
from .limits import check_alloc, check_file_size

# Stand-ins for the globals a CIFAR python file names. numpy's own dtype/_reconstruct accept
# states that crash the interpreter (a dtype rebuilt with a bad state segfaulted), and
# builtins such as bytes(2**33) allocate without bound; so none of them is ever called on
# file data. The stand-ins record and check their arguments, and :func:`_finish` builds the
# arrays itself from validated bytes, shape and dtype.

#: dtypes a CIFAR array may have (any byte order)
_DTYPES = {"u1", "i1", "u2", "i2", "u4", "i4", "u8", "i8", "f4", "f8", "b1"}


class _Dtype:
    """numpy.dtype(name, align, copy) + __setstate__, checked."""

    def __init__(self, name: Any, align: Any = False, copy: Any = False) -> None:
        if isinstance(name, bytes):
            name = name.decode("latin1")
        if not isinstance(name, str) or name not in _DTYPES:
            raise DataError(f"array dtype {name!r} is not one of {sorted(_DTYPES)}")
        self.name, self.byteorder = name, "="

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, tuple) or len(state) not in (8, 9):
            raise DataError(f"malformed dtype state {state!r:.80}")
        order = state[1].decode("latin1") if isinstance(state[1], bytes) else state[1]
        if order not in ("<", ">", "|", "=") or any(v is not None for v in state[2:5]):
            raise DataError(f"unsupported dtype state {state!r:.80} (structured or subarray)")
        self.byteorder = order

    def numpy(self) -> np.dtype:
        dt = np.dtype(self.name)
        if self.byteorder == "<":
            return dt.newbyteorder("<")
        return dt.newbyteorder(">") if self.byteorder == ">" else dt


class _NDArrayType:
    """Stands in for numpy.ndarray (only passed to _reconstruct)."""


class _Array:
    """The object ndarray.__reduce__ rebuilds: its state arrives through __setstate__."""

    def __init__(self) -> None:
        self.array: np.ndarray | None = None

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise DataError(f"malformed array state {state!r:.80}")
        shape, dtype, fortran, raw = state[-4:]
        self.array = _build_array(raw, dtype, shape, "F" if fortran is True else "C")


def _build_array(raw: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
    if isinstance(raw, pickle.PickleBuffer):
        raw = bytes(raw.raw())
    if isinstance(raw, str):  # Python 2 str pickled as unicode: one char per byte
        raw = raw.encode("latin1")
    if not isinstance(raw, (bytes, bytearray)) or not isinstance(dtype, _Dtype):
        raise DataError("array data must be bytes with a plain numeric dtype")
    if not isinstance(shape, tuple) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise DataError(f"bad array shape {shape!r:.80}")
    dt = dtype.numpy()
    want = check_alloc("array", "the pickled array", shape, dt.itemsize)
    if len(raw) != want:
        raise DataError(f"array of shape {shape} and dtype {dt} needs {want} bytes, the file "
                        f"holds {len(raw)}")
    if order not in ("C", "F", b"C", b"F"):
        raise DataError(f"bad array order {order!r}")
    order = order.decode() if isinstance(order, bytes) else order
    return np.frombuffer(bytes(raw), dtype=dt).reshape(shape, order=order).copy()


def _reconstruct(cls: Any, shape: Any, typecode: Any) -> _Array:
    if cls is not _NDArrayType:
        raise DataError("_reconstruct may only rebuild numpy.ndarray")
    return _Array()


def _frombuffer(buf: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
    return _build_array(buf, dtype, shape, order)


def _encode(obj: Any, encoding: Any = "utf-8") -> bytes:
    """_codecs.encode as protocol-2 pickles of bytes use it: (str, "latin1") only."""
    if not isinstance(obj, str) or encoding not in ("latin1", "latin-1"):
        raise DataError(f"_codecs.encode({type(obj).__name__}, {encoding!r}) is not allowed")
    return obj.encode("latin1")


def _bytes(*args: Any) -> bytes:
    """bytes() of existing bytes or str only: bytes(2**33) would allocate 8 GiB."""
    if not args:
        return b""
    if isinstance(args[0], (bytes, bytearray)) and len(args) == 1:
        return bytes(args[0])
    if isinstance(args[0], str) and len(args) == 2 and args[1] in ("latin1", "latin-1"):
        return args[0].encode("latin1")
    raise DataError(f"bytes{tuple(type(a).__name__ for a in args)} is not allowed")


def _int(*args: Any) -> int:
    if len(args) == 1 and isinstance(args[0], (int, str, bytes)) and not isinstance(args[0], bool):
        if isinstance(args[0], (str, bytes)) and len(args[0]) > 40:
            raise DataError("int() of a string longer than 40 characters is not allowed")
        return int(args[0])
    raise DataError(f"int{tuple(type(a).__name__ for a in args)} is not allowed")


def _str(*args: Any) -> str:
    if not args:
        return ""
    if isinstance(args[0], str) and len(args) == 1:
        return args[0]
    if isinstance(args[0], bytes) and len(args) == 2 and isinstance(args[1], str):
        return args[0].decode(args[1])
    raise DataError(f"str{tuple(type(a).__name__ for a in args)} is not allowed")


def _list(*args: Any) -> list:
    if not args:
        return []
    if len(args) == 1 and isinstance(args[0], (list, tuple)):
        return list(args[0])
    raise DataError("list() of anything but a list or tuple is not allowed")


def _dict(*args: Any) -> dict:
    if not args:
        return {}
    if len(args) == 1 and isinstance(args[0], dict):
        return dict(args[0])
    raise DataError("dict() of anything but a dict is not allowed")


_BUILTIN_STANDINS = {"dict": _dict, "list": _list, "str": _str, "bytes": _bytes, "int": _int,
                     "unicode": _str}

#: (module, name) -> the stand-in. numpy >= 2 (``numpy._core``) and numpy 1 / Python 2 era
#: (``numpy.core``) spellings both resolve to the same stand-ins; numpy is never asked to
#: rebuild anything from the file's values.
_ALLOWED: dict[tuple[str, str], Any] = {
    **{("builtins", n): f for n, f in _BUILTIN_STANDINS.items() if n != "unicode"},
    **{("__builtin__", n): f for n, f in _BUILTIN_STANDINS.items() if n != "bytes"},
    ("_codecs", "encode"): _encode,
    ("numpy", "ndarray"): _NDArrayType,
    ("numpy", "dtype"): _Dtype,
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy.core.numeric", "_frombuffer"): _frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,
}


def _finish(obj: Any, depth: int = 0) -> Any:
    """Replace the stand-ins in the loaded structure by real arrays (or refuse them)."""
    if depth > 50:
        raise DataError("pickle nests deeper than 50 levels")
    if isinstance(obj, _Array):
        if obj.array is None:
            raise DataError("an array was declared but never given its data")
        return obj.array
    if isinstance(obj, (_Dtype, _NDArrayType)) or obj is _NDArrayType:
        raise DataError("a bare dtype or ndarray type is not CIFAR data")
    if isinstance(obj, dict):
        return {_finish(k, depth + 1): _finish(v, depth + 1) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finish(v, depth + 1) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_finish(v, depth + 1) for v in obj)
    return obj


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals CIFAR files name (builtins dict/list/str/
    bytes/int, ``_codecs.encode``, numpy's ``_reconstruct``, ``_frombuffer``, ``ndarray``,
    ``dtype``), each to a checking stand-in, never to the real callable. Any other global
    raises :class:`DataError` naming the file and the global, before anything is called.
    """

    def __init__(self, file: Any, *, source: str = "<pickle>") -> None:
        super().__init__(file, encoding="bytes")
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        found = _ALLOWED.get((module, name))
        if found is None:
            raise DataError(
                f"{self.source}: refusing to unpickle forbidden global {module}.{name} "
                f"(CIFAR python files contain only dicts, lists, bytes, ints and uint8 "
                f"arrays; this file is corrupt or malicious)"
            )
        return found

    def load(self) -> Any:
        """The unpickled object, with every stand-in array replaced by a checked ndarray."""
        return _finish(super().load())

    def persistent_load(self, pid: Any) -> Any:
        raise DataError(f"{self.source}: refusing pickle persistent id {pid!r}")


def safe_pickle_load(path: str | Path) -> Any:
    """Unpickle ``path`` with :class:`RestrictedUnpickler` (``encoding="bytes"``).

    Raises:
        DataError: forbidden global, or the file is truncated / not a pickle.
    """
    path = Path(path)
    try:
        check_file_size(path)
        data = path.read_bytes()
    except OSError as e:
        raise DataError(f"{path}: cannot read file ({e})") from e
    try:
        return RestrictedUnpickler(io.BytesIO(data), source=str(path)).load()
    except DataError as e:
        if str(e).startswith(str(path)):
            raise
        raise DataError(f"{path}: {e}") from None
    except Exception as e:  # truncated / garbage pickles raise many different types
        raise DataError(f"{path}: not a valid pickle file ({type(e).__name__}: {e})") from e
