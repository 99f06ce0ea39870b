"""What the machine computes natively and what softlif picks on it (softlif.hardware).

The choice is tested with the machine mocked both ways (an AMX Xeon, an AVX2-only EPYC), so it
holds on whichever CPU runs the suite; the emulation switches are tested on the real one."""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import subprocess
import sys

import pytest
import torch

from softlif import hardware
from softlif.cli import main
from softlif.hardware import Machine, resolve_precision
from softlif.train import TrainConfig

AMX = Machine(cpu_model="Intel(R) Xeon(R) Platinum 8480+", capability="AVX512",
              onednn_max_isa=None,
              flags=("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "amx_bf16",
                     "amx_int8"),
              threads=2, torch_version=str(torch.__version__), cuda_device=None)
AVX2 = Machine(cpu_model="AMD EPYC", capability="AVX2", onednn_max_isa=None, flags=("avx2",),
               threads=2, torch_version=str(torch.__version__), cuda_device=None)


@pytest.fixture
def as_machine(monkeypatch):
    """Make softlif see ``m`` as this machine (the per-process cache cleared around it)."""
    def use(m: Machine) -> None:
        monkeypatch.setattr(hardware, "detect", lambda env=None: m)
        hardware.machine.cache_clear()
    yield use
    hardware.machine.cache_clear()


def test_native_bf16_and_int8_by_flags_and_caps():
    assert AMX.native_bf16 and AMX.native_int8_dot
    assert not AVX2.native_bf16 and not AVX2.native_int8_dot
    # the emulation switches: ATen capped to AVX2, or oneDNN capped below its bf16 kernels
    capped = {"capability": "AVX2", "onednn_max_isa": "AVX2"}
    emulated = Machine(**{**AMX.__dict__, **capped})
    assert not emulated.native_bf16 and not emulated.native_int8_dot
    only_onednn = Machine(**{**AMX.__dict__, "onednn_max_isa": "AVX512_CORE"})
    assert not only_onednn.native_bf16
    vnni = Machine(**{**AMX.__dict__, "onednn_max_isa": "avx512_core_vnni"})
    assert not vnni.native_bf16 and vnni.native_int8_dot  # VNNI admitted, AMX/BF16 not
    # AVX512-BF16 without AMX (Cooper Lake, Zen 4): native, unless capped below it
    zen4 = Machine(**{**AVX2.__dict__, "capability": "AVX512",
                      "flags": ("avx2", "avx512f", "avx512_bf16", "avx512_vnni")})
    assert zen4.native_bf16
    assert not Machine(**{**zen4.__dict__, "onednn_max_isa": "AVX512_CORE_VNNI"}).native_bf16
    # Alder Lake style AVX-VNNI: int8 dot products, no bf16
    adl = Machine(**{**AVX2.__dict__, "flags": ("avx2", "avx_vnni")})
    assert adl.native_int8_dot and not adl.native_bf16
    assert "bf16 emulated" in AVX2.line() and "bf16 native" in AMX.line()


def test_auto_precision_resolves_by_the_device():
    assert resolve_precision("auto", "cpu", AMX) == "bfloat16"
    assert resolve_precision("auto", "cpu", AVX2) == "float32"
    assert resolve_precision("float32", "cpu", AMX) == "float32"  # asked for: kept
    assert resolve_precision("bfloat16", "cpu", AVX2) == "bfloat16"
    with pytest.raises(ValueError, match="precision must be one of auto, float32, bfloat16"):
        resolve_precision("float16", "cpu", AVX2)


@pytest.mark.parametrize("m, used", [(AMX, "bfloat16"), (AVX2, "float32")])
def test_train_config_defaults_to_auto_and_records_both(as_machine, m, used):
    as_machine(m)
    cfg = TrainConfig()
    assert cfg.precision == "auto" and cfg.precision_requested is None
    run = cfg.resolved("cpu")
    assert (run.precision, run.precision_requested) == (used, "auto")
    # resolving again (another machine resumes the run) starts from what was asked
    other = AVX2 if m is AMX else AMX
    as_machine(other)
    assert run.resolved("cpu").precision == ("float32" if used == "bfloat16" else "bfloat16")
    assert TrainConfig(precision="float32").resolved("cpu").precision == "float32"


@pytest.mark.parametrize("m, used", [(AMX, "bfloat16"), (AVX2, "float32")])
def test_train_command_writes_the_precision_used_and_asked(as_machine, capsys, tmp_path, m,
                                                           used):
    """`softlif train` (no --precision): config.json and the checkpoint say what ran."""
    as_machine(m)
    out = tmp_path / "run"
    assert main(["train", "--dataset", "embedded-mnist", "--epochs", "1", "--limit-train",
                 "128", "--limit-test", "50", "--batch-size", "64", "--no-fuse",
                 "--no-progress", "--out", str(out)]) == 0
    cfg = json.loads((out / "config.json").read_text())["train_config"]
    assert (cfg["precision"], cfg["precision_requested"]) == (used, "auto")
    assert f"precision {used} (auto)" in capsys.readouterr().err
    from softlif.checkpoint import load_checkpoint
    ck = load_checkpoint(out / "checkpoint.pt")
    assert ck.config["precision"] == used and ck.config["precision_requested"] == "auto"
    assert ck.metrics["history"][-1]["precision"] == used
    assert ck.metrics["machine"]["cpu_model"] == m.cpu_model


def test_simulation_kernels_follow_the_machine(as_machine, monkeypatch):
    from softlif.split_int8 import available

    simulate = importlib.import_module("softlif.simulate")  # the module (sl.simulate: the function)

    monkeypatch.setattr(simulate, "event_crossover", lambda: 0.03)
    as_machine(AMX)
    k = simulate.choose_kernels("cpu")
    assert k.precision == "float32" and k.event_crossover == 0.03
    assert k.split_int8 == available()
    as_machine(AVX2)
    k = simulate.choose_kernels("cpu")
    assert not k.split_int8 and k.event_crossover == 0.03
    assert simulate.choose_kernels("cpu", split_int8=True).split_int8 == available()  # asked
    assert simulate.choose_kernels("cpu", "bfloat16").event_crossover is None
    assert simulate.choose_kernels("cpu", event_driven=False).event_crossover is None


def test_calibration_is_measured_once_and_cached(monkeypatch, tmp_path):
    monkeypatch.setenv("SOFTLIF_CACHE", str(tmp_path))
    monkeypatch.setattr(hardware, "_CALIBRATIONS", {})
    calls = []
    real = hardware.calibrate

    def counted(repeats: int = 3) -> hardware.Calibration:
        calls.append(1)
        return real(repeats=2)

    monkeypatch.setattr(hardware, "calibrate", counted)
    cal = hardware.calibration()
    lo, hi = hardware.CROSSOVER_RANGE
    assert lo <= cal.event_crossover <= hi and len(calls) == 1
    path = hardware.calibration_path()
    assert path.is_relative_to(tmp_path) and path.exists()
    assert json.loads(path.read_text())["machine"]["cpu_model"] == hardware.machine().cpu_model
    monkeypatch.setattr(hardware, "_CALIBRATIONS", {})  # a new process: read from the cache
    assert hardware.calibration() == cal and len(calls) == 1
    path.write_text('{"calibration": {"event_crossover": "x"}}')  # damaged: measured again
    monkeypatch.setattr(hardware, "_CALIBRATIONS", {})
    hardware.calibration()
    assert len(calls) == 2 and json.loads(path.read_text())["calibration"]["event_crossover"]


def test_compiled_kernels_are_cached_per_machine(as_machine, monkeypatch, tmp_path):
    # torch keys its kernel cache without ATEN_CPU_CAPABILITY: a kernel compiled with AVX-512
    # and reused under the AVX2 cap diverged training; each machine gets its own folder
    monkeypatch.setenv("SOFTLIF_CACHE", str(tmp_path))
    folders = []
    for m in (AMX, AVX2, dataclasses.replace(AMX, capability="AVX2", onednn_max_isa="AVX2")):
        monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
        as_machine(m)
        folders.append(hardware.compile_cache())
        assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(folders[-1])
        assert folders[-1].parent == tmp_path / "inductor"
    assert len(set(folders)) == 3
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "mine"))  # the user's choice
    assert hardware.compile_cache() == tmp_path / "mine"


def test_calibrated_crossover_separates_the_faster_product():
    """Below the calibrated density the sparse product is not slower than the dense one by
    more than noise (a loose check of the direction; the benchmark measures it properly)."""
    cal = hardware.calibrate(repeats=3)
    assert cal.sparse_ms > 0 and cal.dense_ms > 0
    # the probe density is above the crossover exactly when sparse lost there
    even = hardware.PROBE_DENSITY * cal.dense_ms / cal.sparse_ms
    lo, hi = hardware.CROSSOVER_RANGE
    assert cal.event_crossover == pytest.approx(
        min(hi, max(lo, hardware.CROSSOVER_MARGIN * even)), abs=1e-4)


def _in_subprocess(env: dict[str, str], code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=120, check=True)
    return done.stdout


@pytest.mark.skipif(not sys.platform.startswith("linux") or os.uname().machine != "x86_64",
                    reason="the emulation switches are x86 (oneDNN and ATen ISA caps)")
def test_emulation_switches_take_effect():
    """ONEDNN_MAX_CPU_ISA=AVX2 and ATEN_CPU_CAPABILITY=avx2 make torch report, and oneDNN run,
    AVX2 kernels; softlif then reads the machine as AVX2-only (bf16 emulated, auto float32)."""
    env = {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_VERBOSE": "1"}
    out = _in_subprocess(env, (
        "import json, torch\n"
        "from softlif.hardware import machine, resolve_precision\n"
        "torch.nn.functional.conv2d(torch.randn(2, 8, 16, 16), torch.randn(8, 8, 3, 3))\n"
        "print('RESULT', json.dumps([machine().to_dict(), resolve_precision('auto')]))\n"))
    result = next(line for line in out.splitlines() if line.startswith("RESULT"))
    info, auto = json.loads(result.split(" ", 1)[1])
    assert info["capability"] == "AVX2" and info["onednn_max_isa"] == "AVX2"
    assert not info["native_bf16"] and auto == "float32"
    isa = [line for line in out.splitlines() if "isa:" in line]
    assert isa, "oneDNN printed no ISA line under ONEDNN_VERBOSE=1"
    # oneDNN names the ISA it dispatches to: capped at AVX2, nothing above it
    assert "AVX2" in isa[0] and "AVX-512" not in isa[0] and "AMX" not in isa[0], isa[0]


def test_machine_command(capsys):
    assert main(["machine", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["machine"]["capability"] == str(torch.backends.cpu.get_cpu_capability())
    assert payload["training_precision_auto"] in ("float32", "bfloat16")
    assert main(["machine"]) == 0
    assert "training precision auto ->" in capsys.readouterr().out
