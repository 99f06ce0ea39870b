"""Rate-neuron activations for training the ANN (``nn.Module`` wrappers of a neuron type).

``RateNeuron(LIF(...))`` computes ``amplitude * soft_rate(gain * x + bias)`` and, in training
mode only, adds rate noise (Hz) to active units (Hunsberger & Eliasmith 2015, sec. 2.3;
SPEC section 2): Gaussian, or the filtered spike train at a random phase. The converter
replaces each ``RateNeuron`` by the spiking neuron of the same type and parameters.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import torch
from torch import nn

from .hardware import compile_cache
from .neurons import NeuronType, with_params
from .synapses import periodic_train

RateMode = Literal["soft", "hard"]


# splitmix64 constants (Steele, Lea & Flood 2014) as signed int64 (torch wraps on overflow)
_GOLDEN = 0x9E3779B97F4A7C15 - 2**64
_MIX1 = 0xBF58476D1CE4E5B9 - 2**64
_MIX2 = 0x94D049BB133111EB - 2**64


def _shr(z: torch.Tensor, k: int) -> torch.Tensor:
    """Logical right shift of int64 (torch's >> is arithmetic)."""
    return (z >> k) & ((1 << (64 - k)) - 1)


def _hash_bits(seed: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """64 random bits (int64) per element of ``like``: splitmix64 of (seed + i) * golden.

    Being a function of (seed, index) it fuses into the activation kernel (torch's CPU
    generator costs ~4 ns per number, as much as the rest of the soft-LIF forward).
    """
    idx = torch.arange(like.numel(), device=like.device, dtype=torch.int64).view(like.shape)
    # (seed + i) * golden, not i * golden + seed: inductor folds the latter into its index
    # arithmetic, whose constants then overflow int64 when it generates the kernel
    z = (idx + seed) * _GOLDEN
    z = (z ^ _shr(z, 30)) * _MIX1
    z = (z ^ _shr(z, 27)) * _MIX2
    return z ^ _shr(z, 31)


def hash_normal(seed: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Standard normal noise shaped like ``like``, a pure function of ``seed`` (int64 tensor):
    two 24-bit uniforms of :func:`_hash_bits` through Box-Muller; tails reach ~5.9 sigma."""
    z = _hash_bits(seed, like)
    u1 = (_shr(z, 40).to(like.dtype) + 0.5) * 2.0**-24  # (0, 1)
    u2 = ((z >> 16) & 0xFFFFFF).to(like.dtype) * 2.0**-24  # [0, 1)
    return torch.sqrt(-2.0 * torch.log(u1)) * torch.cos((2.0 * math.pi) * u2)


def hash_uniform(seed: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Uniform noise in [0, 1) (24 bits) shaped like ``like``, a pure function of ``seed``."""
    return _shr(_hash_bits(seed, like), 40).to(like.dtype) * 2.0**-24


def _activation_forward(x, seed, value, params, consts, noise_order: int = 0,
                        noise_tau: float = 0.0, out_dtype: torch.dtype = torch.float32):
    """amplitude * noisy(rate(J)), J = gain x + bias, as ``out_dtype``; no noise when ``seed``
    is None.

    Noise only where J > 1. ``noise_order`` 0: ``max(rate + noise_std * N(0, 1), 0)``
    (Gaussian); 1 or 2: the rate's periodic spike train through a lowpass / alpha synapse of
    ``noise_tau`` s, at a uniformly random phase (:func:`~softlif.synapses.periodic_train`).
    ``params``: the rate curve's parameters, ``consts``: (gain, bias, amplitude, noise_std);
    both 0-d float32 tensors, so that new values (annealed g) do not make torch.compile
    recompile. The curve and the noise are computed in float32 (or float64) whatever the
    dtype of ``x`` (bfloat16 under autocast); the output has the dtype of ``x``, the saved
    rate and aux for the backward stay in the compute dtype."""
    gain, bias, amplitude, noise_std = consts
    x = x.to(gain.dtype)
    z = gain * x + (bias - 1.0)  # excess current over the threshold 1
    rate, aux = value(z, *params)  # Hz
    noisy = rate
    if seed is not None and noise_order == 0:
        noise = hash_normal(seed, x)
        noisy = torch.clamp(rate + noise_std * noise * (z > 0), min=0.0)
    elif seed is not None:
        train = periodic_train(hash_uniform(seed, x), rate, noise_tau, noise_order)
        noisy = torch.where(z > 0, train, rate)
    return (amplitude * noisy).to(out_dtype), rate, aux


def _activation_backward(grad, out, rate, aux, derivative, params, consts, clipped: bool,
                         out_dtype: torch.dtype = torch.float32):
    gain, _, amplitude, _ = consts
    d = derivative(rate, aux, *params)
    if clipped:  # units the Gaussian noise pushed below 0 were clipped: no gradient
        d = d * (out > 0)
    return (grad.to(d.dtype) * (amplitude * gain) * d).to(out_dtype)


# The elementwise work of a rate activation, forward and backward; `use_fused_kernels(True)`
# compiles each into one kernel (torch.compile), which is what makes soft-LIF training cheap.
_KERNELS: dict[str, Callable] = {"forward": _activation_forward,
                                 "backward": _activation_backward}


_COMPILED: dict[str, Callable] = {}


def use_fused_kernels(enabled: bool = True) -> None:
    """Fuse the rate activations' forward and backward into single kernels with torch.compile.

    One-off compile cost (tens of seconds on CPU, cached on disk by PyTorch); the formulas are
    the same, up to float rounding. See benchmarks/bench_training.py for the speed-up.
    """
    if enabled and not _COMPILED:
        compile_cache()  # kernels cached per machine (capability caps included)
        # one compiled kernel per activation shape (train, eval, last partial batch, per layer):
        # more than dynamo's default limit of 8 for the larger nets
        cfg = torch._dynamo.config
        limit = "recompile_limit" if hasattr(cfg, "recompile_limit") else "cache_size_limit"
        setattr(cfg, limit, max(getattr(cfg, limit), 64))
        # Compiled once per process and kept. Static shapes: with dynamic=True, torch 2.13's
        # CPU codegen returned garbage for the IF curve (tests/test_neurons.py checks fused ==
        # eager); a net has only a few activation shapes, each compiled once.
        _COMPILED["forward"] = torch.compile(_activation_forward, dynamic=False)
        _COMPILED["backward"] = torch.compile(_activation_backward, dynamic=False)
    if enabled:
        _KERNELS.update(_COMPILED)
    else:
        _KERNELS.update(forward=_activation_forward, backward=_activation_backward)


_NOISE_ORDER = {"gaussian": 0, "lowpass": 1, "alpha": 2}  # synapse stages of a noise model


class _RateActivation(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, seed, neuron, soft: bool, fused: bool):  # type: ignore[override]
        value, derivative, params = neuron.rate_kernels(soft)
        fwd = _KERNELS["forward"] if fused else _activation_forward
        # reduced-precision inputs (bf16/fp16 under autocast) are computed in float32
        dtype = x.dtype if x.dtype == torch.float64 else torch.float32
        p = torch.tensor(params, dtype=dtype).unbind()
        consts = torch.tensor([neuron.gain, neuron.bias, neuron.amplitude, neuron.noise_std],
                              dtype=dtype).unbind()
        order = _NOISE_ORDER[neuron.noise_model]
        out, rate, aux = fwd(x, seed, value, p, consts, order, float(neuron.noise_tau), x.dtype)
        ctx.save_for_backward(out, rate, aux)
        ctx.derivative, ctx.params, ctx.consts = derivative, p, consts
        ctx.clipped, ctx.fused, ctx.in_dtype = seed is not None and order == 0, fused, x.dtype
        return out

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        out, rate, aux = ctx.saved_tensors
        bwd = _KERNELS["backward"] if ctx.fused else _activation_backward
        gx = bwd(grad, out, rate, aux, ctx.derivative, ctx.params, ctx.consts, ctx.clipped,
                 ctx.in_dtype)
        return gx, None, None, None, None


class RateNeuron(nn.Module):
    """Rate activation of a neuron type: ``amplitude * rate(gain * x + bias)``.

    ``mode="soft"`` uses the smoothed rate (for training), ``"hard"`` the spiking neuron's true
    rate curve (which predicts the SNN). Training noise where the unit is above threshold
    (``J > 1``), on only in ``.train()``, as the neuron's ``noise_model`` says: ``rate +=
    N(0, noise_std^2)`` (Hz) clipped at 0, or the rate's filtered periodic spike train at a
    random phase; no gradient flows through the noise. Pass ``generator`` for repeatable noise.
    """

    def __init__(
        self,
        neuron: NeuronType,
        mode: RateMode = "soft",
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if mode not in ("soft", "hard"):
            raise ValueError(f"RateNeuron mode must be 'soft' or 'hard', got {mode!r}")
        self.neuron = neuron
        self.mode: RateMode = mode
        self.generator = generator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seed = None
        if self.training and self.neuron.has_training_noise:
            # one draw from the (explicit or default) generator seeds this call's noise
            seed = torch.randint(-(2**62), 2**62, (), generator=self.generator).to(x.device)
        # inference (no autograd) stays eager: it is cheap and its batch shapes vary
        fused = torch.is_grad_enabled() and x.requires_grad
        return _RateActivation.apply(x, seed, self.neuron, self.mode == "soft", fused)

    def extra_repr(self) -> str:
        return f"{self.neuron}, mode={self.mode!r}"


def set_rate_mode(model: nn.Module, mode: RateMode) -> None:
    """Switch every :class:`RateNeuron` in ``model`` to ``"soft"`` or ``"hard"`` in place."""
    for m in model.modules():
        if isinstance(m, RateNeuron):
            m.mode = mode


def set_smoothing(model: nn.Module, smoothing: float) -> None:
    """Set the soft-rate smoothing g of every :class:`RateNeuron` (for annealing g -> 0)."""
    for m in model.modules():
        if isinstance(m, RateNeuron):
            m.neuron = with_params(m.neuron, smoothing=float(smoothing))


def set_noise(model: nn.Module, noise_std: float) -> None:
    """Set the training noise (Hz) of every :class:`RateNeuron`."""
    for m in model.modules():
        if isinstance(m, RateNeuron):
            m.neuron = with_params(m.neuron, noise_std=float(noise_std))
