"""Evaluate a trained network as an ANN and as a spiking net: errors, rates, energy, sweeps.

One spiking simulation per (synapse, presentation time) serves every window [c0, c1]; the
per-layer rates it measures feed the energy model (SPEC section 5).
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from .activations import RateNeuron
from .ann import error_rate, predict
from .checkpoint import Checkpoint
from .config import check_bool, check_choice, check_float, check_int
from .convert import SpikingNetwork, convert, verify
from .distributed import ANN_CHUNK, current, sharded_chunks, simulate_sharded
from .energy import energy_report
from .errors import ConfigError
from .hardware import machine
from .networks import layer_table
from .simulate import PRECISIONS, InitMode, Precision, SimResult, choose_kernels
from .synapses import Synapse


@dataclass(frozen=True)
class SimSettings:
    """How to simulate: times in seconds."""

    synapse: str = "alpha"  # none | lowpass | alpha
    tau_s: float = 0.005  # synaptic time constant (s)
    presentation_time: float = 0.2  # s per image
    dt: float = 0.001  # s
    c0: float = 0.12  # classification window start (s)
    c1: float = 0.2  # classification window end (s)
    reset: bool = False  # reset state per image (else back to back)
    init: InitMode = "zero"  # initial voltages: zero | uniform
    batch_size: int = 50  # streams simulated side by side
    fused: bool = True  # torch.compile the per-layer updates
    precision: Precision = "auto"  # auto (= float32) | float32 | bfloat16 (maps on spikes) | float64
    device: str = "cpu"  # torch device that runs the simulation: cpu | cuda | cuda:N
    float_maps: bool = False  # keep every map on spikes float32 (no split int8 maps)
    cuda_graph: bool = True  # on CUDA devices, replay blocks of steps as recorded CUDA graphs

    def __post_init__(self) -> None:
        """Validate every field (ConfigError naming it), so a bad value fails before work."""
        check_choice("synapse", self.synapse, ("none", "lowpass", "alpha"))
        check_float("tau_s", self.tau_s, min_value=0)
        t = check_float("presentation_time", self.presentation_time, min_value=0, min_open=True)
        dt = check_float("dt", self.dt, min_value=0, min_open=True)
        if dt >= t:
            raise ConfigError(f"dt ({dt:g} s) must be shorter than the presentation time "
                              f"({t:g} s)")
        c0 = check_float("c0", self.c0, min_value=0)
        c1 = check_float("c1", self.c1, min_value=0)
        if not c0 < c1 <= t + 1e-12:
            raise ConfigError(f"the window must satisfy 0 <= c0 < c1 <= presentation_time "
                              f"({t:g} s); got c0 = {c0:g} s, c1 = {c1:g} s")
        check_bool("reset", self.reset)
        check_choice("init", self.init, ("zero", "uniform"))
        check_int("batch_size", self.batch_size, min_value=1)
        check_bool("fused", self.fused)
        check_bool("float_maps", self.float_maps)
        check_bool("cuda_graph", self.cuda_graph)
        check_choice("precision", self.precision, PRECISIONS)
        if not isinstance(self.device, str):
            raise ConfigError(f"device must be a string such as 'cpu' or 'cuda', got "
                              f"{self.device!r}")
        try:
            dev = torch.device(self.device)
        except RuntimeError:
            raise ConfigError(f"device {self.device!r} is not a torch device (cpu, cuda, "
                              "cuda:N)") from None
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError(f"device {self.device!r}: this machine has no CUDA device; use "
                              "cpu")

    def synapse_obj(self) -> Synapse:
        return Synapse(self.synapse, self.tau_s)  # type: ignore[arg-type]


#: Settings that choose how a simulation runs, not what it computes.
HOW_NOT_WHAT = ("device", "cuda_graph")


def same_simulation(saved: Any, settings: dict[str, Any]) -> bool:
    """Whether settings recorded in a results file (a dict, possibly from before a field
    existed: missing fields count as their defaults) simulate what ``settings`` do; the
    device and CUDA graphs do not count."""
    if not isinstance(saved, dict):
        return False
    defaults = SimSettings().__dict__

    def key(st: dict[str, Any]) -> dict[str, Any]:
        full = json.loads(json.dumps({**defaults, **st}))
        return {k: v for k, v in full.items() if k not in HOW_NOT_WHAT}

    return key(saved) == key(settings)


TestOrder = Literal["dataset", "shuffled"]


def test_indices(total: int, n: int | None = None, order: TestOrder = "dataset",
                 seed: int = 0) -> np.ndarray:
    """Indices (int64) of the test images to evaluate out of ``total``: the first ``n`` in the
    data set's order, or, with ``order="shuffled"``, the first ``n`` of a fixed pseudo-random
    order (a permutation seeded with ``seed``). The order matters twice: ``n`` < N takes a
    prefix, and images are shown back to back, so a test set sorted by class (such as the JPEG
    copy of CIFAR-10) would give a prefix of one or two classes and streams of one class.
    """
    n = total if n is None else min(n, total)
    if order == "shuffled":
        return torch.randperm(total, generator=torch.Generator().manual_seed(seed))[:n].numpy()
    if order == "dataset":
        return np.arange(n, dtype=np.int64)
    raise ValueError(f"order must be 'dataset' or 'shuffled', got {order!r}")


def select_test(images: Any, labels: Any, n: int | None = None, order: TestOrder = "dataset",
                seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The test images (uint8 ``(N, C, H, W)``) and labels at :func:`test_indices`, as
    tensors."""
    idx = test_indices(len(labels), n, order, seed)
    return torch.as_tensor(images[idx]), torch.as_tensor(labels[idx])


def sorted_by_class(labels: torch.Tensor) -> bool:
    """True when neighbouring labels are mostly equal (a test set sorted by class): over half of
    all neighbours, where a shuffled set with K balanced classes has about 1/K."""
    if len(labels) < 2:
        return False
    return float((labels[1:] == labels[:-1]).float().mean()) > 0.5


def spiking_net(ck: Checkpoint, synapse: Synapse) -> tuple[torch.nn.Module, SpikingNetwork]:
    """The checkpoint's ANN and its verified spiking conversion."""
    ann = ck.build_model()
    if not any(isinstance(m, RateNeuron) for m in ann.modules()):
        raise ValueError(f"a {ck.activation} network has no spiking neurons to convert; train "
                         "with --activation softlif (or lif / if)")
    snn = convert(ann, ck.preprocess.output_shape, synapse)
    probe = ck.preprocess.test(torch.zeros((2, *ck.preprocess.input_shape), dtype=torch.uint8))
    verify(ann, snn, probe + 0.1 * torch.randn_like(probe))
    return ann, snn


def ann_errors(ck: Checkpoint, images: torch.Tensor, labels: torch.Tensor,
               device: str | torch.device = "cpu") -> dict[str, float]:
    """Test error of the ANN as trained (soft rate) and with the hard rate (predicts the SNN),
    evaluated on ``device``."""
    model = ck.build_model().to(device)
    world = current()  # under torchrun: whole batches of ANN_CHUNK images per rank, gathered

    def logits(mode: str | None) -> torch.Tensor:
        return sharded_chunks(lambda a, b: predict(model, images[a:b], ck.preprocess,
                                                   ANN_CHUNK, mode=mode), len(images), world)

    out = {"ann_error": error_rate(logits(None), labels)}
    if any(isinstance(m, RateNeuron) for m in model.modules()):
        out["ann_error_hard"] = error_rate(logits("hard"), labels)
    return out


@torch.no_grad()
def neuron_hard_rates(snn: SpikingNetwork, x: torch.Tensor) -> list[torch.Tensor]:
    """Per hidden layer, each neuron's rate (Hz) as the hard-rate ANN predicts it on ``x``:
    tensors ``(N, *out_shape)``."""
    out: list[torch.Tensor] = []
    snn.rate_forward(x, "hard", rates=out)
    return out


def hard_rates(snn: SpikingNetwork, x: torch.Tensor, batch: int = ANN_CHUNK) -> list[float]:
    """Mean rate (Hz) per hidden layer that the hard-rate ANN predicts on ``x`` (under torchrun
    the batches are shared out and their sums gathered, then added in the same order)."""
    def batch_sums(a: int, b: int) -> torch.Tensor:
        return torch.tensor([[float(r.sum()) for r in neuron_hard_rates(snn, x[a:b])]],
                            dtype=torch.float64)

    sums = [0.0] * len(snn.hidden_stages)
    for row in sharded_chunks(batch_sums, len(x), current(), batch).tolist():
        for k, v in enumerate(row):
            sums[k] += v
    return [s / (len(x) * n) for s, n in zip(sums, snn.neurons_per_layer, strict=True)]


@torch.no_grad()
def layer_activity(snn: SpikingNetwork, x: torch.Tensor,
                   batch: int = ANN_CHUNK) -> list[dict[str, float]]:
    """How much of each hidden layer the hard-rate ANN predicts to fire on the images ``x``.

    Per layer: ``mean_rate_hz`` (over neurons and images, Hz), ``active_share`` (the share of
    neuron-image pairs with a rate above 0), ``mean_active_rate_hz`` (the mean rate of those
    pairs, Hz; 0 if none) and ``never_active_share`` (the share of neurons silent on every
    image: units that take no part in the net's answer on these images)."""
    n_layers = len(snn.hidden_stages)
    total = [0.0] * n_layers
    active = [0] * n_layers
    ever: list[torch.Tensor | None] = [None] * n_layers
    for a in range(0, len(x), batch):
        for k, r in enumerate(neuron_hard_rates(snn, x[a:a + batch])):
            total[k] += float(r.sum(dtype=torch.float64))
            on = r > 0
            active[k] += int(on.sum())
            seen = on.any(0)
            prev = ever[k]
            ever[k] = seen if prev is None else prev | seen
    out = []
    for k, n in enumerate(snn.neurons_per_layer):
        e = ever[k]
        out.append({"mean_rate_hz": total[k] / (len(x) * n),
                    "active_share": active[k] / (len(x) * n),
                    "mean_active_rate_hz": total[k] / active[k] if active[k] else 0.0,
                    "never_active_share": 1.0 - (float(e.sum()) / n if e is not None else 0.0)})
    return out


def run_snn(ck: Checkpoint, images: torch.Tensor, labels: torch.Tensor, s: SimSettings,
            keep_neuron_counts: int = 0, progress: bool = False
            ) -> tuple[SimResult, dict[str, Any], SpikingNetwork]:
    """Simulate the checkpoint's SNN on uint8 ``images``; returns the raw result, a summary
    (error in the window, per-layer rates, energy at the presentation time, wall time) and the
    spiking net."""
    _, snn = spiking_net(ck, s.synapse_obj())
    x = ck.preprocess.test(images)
    t0 = time.perf_counter()
    world = current()  # under torchrun: whole streams per rank, every readout gathered
    res = simulate_sharded(snn, x, world, presentation_time=s.presentation_time, dt=s.dt,
                           batch_size=s.batch_size, reset=s.reset, init=s.init, fused=s.fused,
                           split_int8=False if s.float_maps else None,
                           cuda_graph=None if s.cuda_graph else False,
                           precision=s.precision, keep_neuron_counts=keep_neuron_counts,
                           progress=progress and world.main, device=s.device)
    wall = time.perf_counter() - t0
    rates = res.firing_rates()
    report = energy_report(layer_table(ck.spec), rates, s.presentation_time, s.dt)
    summary: dict[str, Any] = {
        "snn_error": res.error(labels, s.c0, s.c1),
        "window_s": [s.c0, s.c1],
        "snn_rates_hz": rates,
        "snn_rates_window_hz": res.firing_rates(s.c0, s.c1),  # the settled part, c0-c1
        "mean_rate_hz": sum(r * n for r, n in zip(rates, res.neurons_per_layer, strict=True))
        / sum(res.neurons_per_layer),
        "predicted_rates_hz": hard_rates(snn, x),
        "images": len(images),
        "simulation_seconds": wall,
        "images_per_second": len(images) / wall,
        "energy": report.to_dict(),
        "settings": s.__dict__,
        # what ran: "auto" resolved and the kernels chosen on this machine, and the machine
        "kernels": dataclasses.asdict(choose_kernels(
            s.device, s.precision, split_int8=False if s.float_maps else None)),
        "machine": machine().to_dict(),
    }
    return res, summary, snn


def sweep(ck: Checkpoint, images: torch.Tensor, labels: torch.Tensor, base: SimSettings,
          taus: list[float], times: list[float], windows: list[tuple[float, float]],
          progress: bool = False) -> list[dict]:
    """The Table-4 trade-off: error and efficiency for every (tau_s, c0, c1), one simulation per
    (tau_s, presentation time). Efficiency is computed at presentation time c1 (an image need
    not be shown longer), with the rates measured in that simulation."""
    rows = []
    for tau in taus:
        for t in times:
            c1 = min(base.c1, t)  # the base window only labels the run's own summary
            s = SimSettings(**{**base.__dict__, "tau_s": tau, "presentation_time": t,
                               "synapse": base.synapse if tau > 0 else "none",
                               "c1": c1, "c0": base.c0 if base.c0 < c1 else 0.0})
            res, summary, _ = run_snn(ck, images, labels, s, progress=progress)
            for c0, c1 in windows:
                if c1 > t + 1e-12 or c0 >= c1:
                    continue
                eff = energy_report(layer_table(ck.spec), summary["snn_rates_hz"], c1,
                                    s.dt).efficiency
                rows.append({"tau_s": tau, "presentation_time": t, "c0": c0, "c1": c1,
                             "error": res.error(labels, c0, c1), "efficiency": eff,
                             "rates_hz": summary["snn_rates_hz"]})
    return rows
