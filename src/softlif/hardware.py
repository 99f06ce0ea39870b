"""What the machine computes natively, and the speed choices that follow from it.

softlif's defaults must be fast on the machine they run on, not on the one they were measured
on. Two kinds of choice:

* **By capability** (deterministic, no timing): bfloat16 arithmetic is used by default
  (``precision="auto"``) only where the device computes it natively: a CUDA device with bf16
  support, or an x86 CPU with AMX-BF16 or AVX512-BF16 (elsewhere oneDNN emulates bf16, 4-14x
  slower than float32 on an AVX2-only CPU). Maps on spikes in split 8-bit integer arithmetic
  (:mod:`softlif.split_int8`) are used only where the CPU has int8 dot-product instructions
  (AVX512-VNNI, AVX-VNNI or AMX-INT8).
* **By a one-off micro-calibration** cached per machine (:func:`calibration`): the input
  density below which a fully connected map on spikes runs event-driven.

The capability honours the switches that cap what PyTorch uses, so that one machine can
emulate another: ``ATEN_CPU_CAPABILITY`` (ATen's kernels, read back through
``torch.backends.cpu.get_cpu_capability()``) and ``ONEDNN_MAX_CPU_ISA`` (oneDNN's). On a CPU
with AMX, ``ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2`` makes both take their AVX2 paths,
and :func:`machine` then reports what an AVX2-only CPU would.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import time
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from .io import write_json_atomic

#: what may be asked for: "auto" resolves by :func:`resolve_precision`
RequestedPrecision = Literal["auto", "float32", "bfloat16"]
REQUESTED_PRECISIONS: tuple[str, ...] = ("auto", "float32", "bfloat16")

# oneDNN's ISA ladder (ONEDNN_MAX_CPU_ISA values, lowest first; oneDNN's dnnl_cpu_isa_t).
# A cap admits an instruction set if the set's entry is at or below the cap's.
_ONEDNN_ISAS = ("sse41", "avx", "avx2", "avx2_vnni", "avx2_vnni_2", "avx512_core",
                "avx512_core_vnni", "avx512_core_bf16", "avx10_1_512", "avx512_core_fp16",
                "avx10_1_512_amx", "avx512_core_amx", "avx10_1_512_amx_fp16",
                "avx512_core_amx_fp16", "default", "all")
# the lowest oneDNN ISA that runs each native kernel family
_NEEDS = {"avx512_bf16": "avx512_core_bf16", "amx_bf16": "avx512_core_amx",
          "avx_vnni": "avx2_vnni", "avx512_vnni": "avx512_core_vnni",
          "amx_int8": "avx512_core_amx"}
# ATen capabilities below AVX512: its bf16 conversions and elementwise kernels are emulated
_ATEN_NO_BF16 = ("DEFAULT", "AVX", "AVX2", "NO AVX")
_FLAGS_OF_INTEREST = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "avx_vnni", "amx_tile",
                      "amx_bf16", "amx_int8")


@dataclass(frozen=True)
class Machine:
    """The CPU (and CUDA device, if any) as PyTorch will use it."""

    cpu_model: str  # e.g. "AMD EPYC", "Intel(R) Xeon(R) Platinum 8480+"
    capability: str  # torch's ATen CPU capability ("AVX2", "AVX512", ...), as capped
    onednn_max_isa: str | None  # ONEDNN_MAX_CPU_ISA if set (a cap on oneDNN's kernels)
    flags: tuple[str, ...]  # the CPU flags that matter here, as the CPU reports them
    threads: int  # torch's intra-op threads
    torch_version: str
    cuda_device: str | None  # name of CUDA device 0, None without one

    def _admits(self, flag: str) -> bool:
        """The CPU has ``flag`` and no ONEDNN_MAX_CPU_ISA cap rules its kernels out."""
        if flag not in self.flags:
            return False
        cap = (self.onednn_max_isa or "").lower()
        if not cap or cap not in _ONEDNN_ISAS:  # unknown caps are ignored, as oneDNN does
            return True
        return _ONEDNN_ISAS.index(_NEEDS[flag]) <= _ONEDNN_ISAS.index(cap)

    @property
    def native_bf16(self) -> bool:
        """Whether this CPU computes bfloat16 products natively (AMX-BF16 or AVX512-BF16,
        neither capped away)."""
        if self.capability.upper() in _ATEN_NO_BF16:
            return False
        return self._admits("amx_bf16") or self._admits("avx512_bf16")

    @property
    def native_int8_dot(self) -> bool:
        """Whether this CPU has int8 dot-product instructions (VNNI or AMX-INT8) that
        oneDNN may use."""
        return any(self._admits(f) for f in ("amx_int8", "avx512_vnni", "avx_vnni"))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the fields and the derived choices."""
        return {**asdict(self), "flags": list(self.flags), "native_bf16": self.native_bf16,
                "native_int8_dot": self.native_int8_dot}

    def line(self) -> str:
        """One line for logs: the CPU, what torch uses of it, and the native precisions."""
        cap = f", oneDNN capped at {self.onednn_max_isa}" if self.onednn_max_isa else ""
        gpu = f"; CUDA: {self.cuda_device}" if self.cuda_device else ""
        return (f"CPU: {self.cpu_model} ({self.threads} threads), torch {self.torch_version} "
                f"capability {self.capability}{cap}; flags: {' '.join(self.flags) or 'none'}; "
                f"bf16 {'native' if self.native_bf16 else 'emulated'}, int8 dot product "
                f"{'native' if self.native_int8_dot else 'none'}{gpu}")


def _cpuinfo() -> tuple[str, set[str]]:
    """(model name, flags) from /proc/cpuinfo; ("", set()) where it does not exist."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return "", set()
    model, flags = "", set[str]()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and not model:
            model = value.strip()
        elif key in ("flags", "Features") and not flags:
            flags = set(value.split())
        if model and flags:
            break
    return model, flags


def _torch_flags() -> set[str]:
    """The flags torch's own cpuinfo reports (macOS, Windows: no /proc/cpuinfo)."""
    probes = {"avx512_bf16": "_is_avx512_bf16_supported", "amx_tile": "_is_amx_tile_supported",
              "avx512_vnni": "_is_avx512_vnni_supported", "avx2": "_is_avx2_supported",
              "avx512f": "_is_avx512_supported"}
    found = set()
    for flag, fn in probes.items():
        probe = getattr(torch.cpu, fn, None)
        try:
            if probe is not None and probe():
                found.add(flag)
        except (RuntimeError, AttributeError):  # not built for this architecture
            pass
    if "amx_tile" in found:  # torch reports the tile unit; AMX CPUs have both data types
        found |= {"amx_bf16", "amx_int8"}
    return found


def detect(env: Mapping[str, str] | None = None) -> Machine:
    """Read the machine now (no cache); ``env`` stands in for ``os.environ`` (tests)."""
    env = os.environ if env is None else env
    model, flags = _cpuinfo()
    if not flags:
        flags = _torch_flags()
    cuda = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return Machine(
        cpu_model=model or platform.processor() or platform.machine() or "unknown CPU",
        capability=str(torch.backends.cpu.get_cpu_capability()),
        onednn_max_isa=env.get("ONEDNN_MAX_CPU_ISA") or env.get("DNNL_MAX_CPU_ISA") or None,
        flags=tuple(f for f in _FLAGS_OF_INTEREST if f in flags),
        threads=torch.get_num_threads(),
        torch_version=str(torch.__version__),
        cuda_device=cuda,
    )


@functools.lru_cache(maxsize=1)
def machine() -> Machine:
    """This machine, read once per process."""
    return detect()


def resolve_precision(requested: str, device: str | torch.device = "cpu",
                      info: Machine | None = None) -> Literal["float32", "bfloat16"]:
    """The training arithmetic to use: ``requested`` unless it is ``"auto"``, which gives
    ``"bfloat16"`` where ``device`` computes it natively (a CUDA device with bf16 support; a CPU
    with AMX-BF16 or AVX512-BF16, see :class:`Machine`) and ``"float32"`` elsewhere."""
    if requested not in REQUESTED_PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(REQUESTED_PRECISIONS)}, got "
                         f"{requested!r}")
    if requested != "auto":
        return requested  # type: ignore[return-value]
    dev = torch.device(device)
    if dev.type == "cuda":
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float32"
    if dev.type != "cpu":
        return "float32"
    return "bfloat16" if (info or machine()).native_bf16 else "float32"


# ---------------------------------------------------------------------------------------------
# One-off micro-calibration, cached per machine

#: bump when what :func:`calibrate` measures changes (older cache files are then ignored)
CALIBRATION_VERSION = 1
#: the event-driven crossover is clamped to this range (input density, 0-1)
CROSSOVER_RANGE = (0.005, 0.2)
#: safety factor on the measured break-even density (a sparse product's cost grows faster
#: than linearly with density on larger layers: benchmarks/bench_event_driven.py)
CROSSOVER_MARGIN = 0.7


@dataclass(frozen=True)
class Calibration:
    """Speed choices measured on this machine (see :func:`calibrate`)."""

    event_crossover: float  # input density below which an fc map on spikes goes event-driven
    dense_ms: float  # the probe's dense product (ms), for the record
    sparse_ms: float  # the probe's sparse product at PROBE_DENSITY (ms)
    seconds: float  # what the calibration took


#: the probe: one step of a fully connected map on spikes, batch of rows x inputs -> outputs,
#: sparse at this density
PROBE_SHAPE = (256, 2048, 1024)
PROBE_DENSITY = 0.03


def cache_dir() -> Path:
    """softlif's cache folder: ``$SOFTLIF_CACHE``, else ``$XDG_CACHE_HOME/softlif``, else
    ``~/.cache/softlif``."""
    if os.environ.get("SOFTLIF_CACHE"):
        return Path(os.environ["SOFTLIF_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(base).expanduser() / "softlif"


def _min_ms(fn: Any, repeats: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best * 1e3


def calibrate(repeats: int = 3) -> Calibration:
    """Measure, on this machine now (no cache): the input density at which summing only the
    active inputs' weight rows (a CSR sparse-dense product, what
    :class:`~softlif.simulate.EventDrivenLinear` runs) costs as much as the dense product.
    Both costs are taken on one probe (:data:`PROBE_SHAPE` at :data:`PROBE_DENSITY`); the
    sparse cost grows in proportion to the density, so the break-even is
    ``PROBE_DENSITY * dense / sparse``, times :data:`CROSSOVER_MARGIN`, clamped to
    :data:`CROSSOVER_RANGE`. Takes about 0.1 s (once per machine: :func:`calibration`)."""
    t0 = time.perf_counter()
    rows, n_in, n_out = PROBE_SHAPE
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(n_in, n_out, generator=gen)
    x = (torch.rand(rows, n_in, generator=gen) < PROBE_DENSITY).float()
    dense = _min_ms(lambda: x @ w, repeats)
    with warnings.catch_warnings():  # torch's once-per-process "CSR is beta" notice
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support")
        sparse = _min_ms(lambda: torch.sparse.mm(x.to_sparse_csr(), w), repeats)
    even = PROBE_DENSITY * dense / max(sparse, 1e-9)
    lo, hi = CROSSOVER_RANGE
    crossover = min(hi, max(lo, CROSSOVER_MARGIN * even))
    return Calibration(event_crossover=round(crossover, 4), dense_ms=dense, sparse_ms=sparse,
                       seconds=time.perf_counter() - t0)


def _cache_key(info: Machine) -> str:
    ident = json.dumps([CALIBRATION_VERSION, info.cpu_model, info.capability,
                        info.onednn_max_isa, list(info.flags), info.threads,
                        info.torch_version])
    return hashlib.sha256(ident.encode()).hexdigest()[:16]


def calibration_path(info: Machine | None = None) -> Path:
    """Where this machine's calibration is cached."""
    return cache_dir() / "calibration" / f"{_cache_key(info or machine())}.json"


def _read_cached(path: Path) -> Calibration | None:
    try:
        raw = json.loads(path.read_text())
        cal = Calibration(**{k: float(raw["calibration"][k])
                             for k in Calibration.__dataclass_fields__})
    except (OSError, ValueError, KeyError, TypeError):
        return None  # missing, unreadable or from another version: measure again
    lo, hi = CROSSOVER_RANGE
    return cal if lo <= cal.event_crossover <= hi else None


def compile_cache() -> Path:
    """Point torch.compile's kernel cache at a folder of this machine's own (CPU model,
    capability caps, flags, threads, torch version) unless ``$TORCHINDUCTOR_CACHE_DIR`` is
    set, and return the folder in use.

    PyTorch keys its on-disk kernel cache without the capability caps: a kernel compiled with
    AVX-512 and loaded again under ``ATEN_CPU_CAPABILITY=avx2`` (the emulation of an AVX2
    machine) made soft-LIF training diverge within ten steps on an AVX-512 EPYC (torch 2.13);
    the same happens to a cache folder shared by machines of different CPUs. Called by the
    functions that compile (:func:`softlif.activations.use_fused_kernels`, fused simulation);
    it sets ``$TORCHINDUCTOR_CACHE_DIR`` in this process, once, and never moves one a user set.
    """
    if not os.environ.get("TORCHINDUCTOR_CACHE_DIR"):
        folder = cache_dir() / "inductor" / _cache_key(machine())
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(folder)
    return Path(os.environ["TORCHINDUCTOR_CACHE_DIR"])


_CALIBRATIONS: dict[Path, Calibration] = {}


def calibration() -> Calibration:
    """This machine's calibration: from the cache folder if measured before on the same CPU,
    capability, threads and torch version, else measured now (:func:`calibrate`) and cached
    (a cache folder that cannot be written only costs the measurement next time)."""
    path = calibration_path()
    if path in _CALIBRATIONS:
        return _CALIBRATIONS[path]
    cal = _read_cached(path)
    if cal is None:
        cal = calibrate()
        try:
            write_json_atomic(path, {"machine": machine().to_dict(),
                                     "calibration": asdict(cal)})
        except OSError:
            pass
    _CALIBRATIONS[path] = cal
    return cal


def record() -> dict[str, Any]:
    """The machine, for results files: CPU model, capability, flags, threads, torch."""
    return machine().to_dict()
