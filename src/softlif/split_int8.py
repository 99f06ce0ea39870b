"""Linear maps on spikes in 8-bit integer arithmetic at float32 accuracy (issue 10, item 2).

Spikes are exactly 0 or 1, and average-pooled spikes are exact fractions ``k / d`` (``d`` the
number of pixels in the window), so a map's input is exactly ``q / m`` with ``q`` a small
integer (uint8) and ``m`` fixed by the pooling in front of the weight layer. Weights are not
integers, so each weight tensor is split into three signed 8-bit parts with per-output-channel
scales::

    W = s (Q1 + Q2 / 254 + Q3 / 254^2) + R,     |R| <= s / (2 * 254^2),  s = max|W_o| / 127

(``Q1 = round(W / s)``, then each part rounds what the previous ones left), i.e. 7 + 8 + 8
bits: the remainder is at most ``max|W_o| / (2 * 127 * 254^2) = max|W_o| * 1.02 * 2^-24``,
one to two float32 half-ulps at the magnitude of the channel's largest weight. Each part's
product with ``q`` is exact in int32 (oneDNN's u8 x s8 kernels, AMX or VNNI where the CPU has
them), scaled to float32 once, and the three float32 results are summed small to large. The
result differs from the exact product by about as much as a float32 convolution does (which
rounds at every addition); ``tests/test_split_int8.py`` bounds it against float64 and against
the float32 map's own error.

Used by :class:`softlif.simulate.Simulator` (``split_int8``) for stages whose map is average
pooling (or nothing) followed by one convolution or fully connected layer, fed by plain 0/1
spikes; anything else keeps its float map.
"""

from __future__ import annotations

import math

import torch
from torch import nn

Tensor = torch.Tensor

#: parts of the weight split (7 + 8 + 8 bits)
PARTS = 3
_STEP = 254.0


def available() -> bool:
    """Whether this torch build has oneDNN's quantized kernels (x86 CPU builds do)."""
    return (hasattr(torch.ops, "onednn") and hasattr(torch.ops.onednn, "qconv_pointwise")
            and hasattr(torch.ops.onednn, "qlinear_pointwise")
            and torch.backends.mkldnn.is_available())


def split_weight(w: Tensor) -> tuple[list[Tensor], list[Tensor]]:
    """``w`` (out, ...) as :data:`PARTS` int8 tensors and their float32 scales per output
    channel (the module docstring's split; computed in float64)."""
    r = w.detach().double()
    dims = tuple(range(1, w.dim()))
    s = r.abs().amax(dim=dims) / 127.0
    s = torch.where(s > 0, s, torch.ones_like(s))  # an all-zero channel: any scale
    parts, scales = [], []
    for _ in range(PARTS):
        sb = s.reshape(-1, *([1] * len(dims)))
        q = torch.clamp(torch.round(r / sb), -127, 127)
        parts.append(q.to(torch.int8))
        scales.append(s.float())
        r = r - q * sb
        s = s / _STEP
    return parts, scales


def input_multiplier(pre: list[nn.Module]) -> int | None:
    """``m`` such that the output of the modules ``pre`` (pooling, flattening) applied to 0/1
    spikes is always an integer over ``m`` in [0, 1]; None if a module is not one of those.
    Average pooling over a ``kh x kw`` window divides by the in-bounds pixel count ``a * b``
    (1 <= a <= kh, 1 <= b <= kw), so ``m`` = lcm(1..kh) * lcm(1..kw) covers every window."""
    m = 1
    for mod in pre:
        if isinstance(mod, nn.AvgPool2d) and mod.divisor_override is None:
            kh, kw = _pair(mod.kernel_size)
            m *= math.lcm(*range(1, kh + 1)) * math.lcm(*range(1, kw + 1))
        elif not isinstance(mod, (nn.MaxPool2d, nn.Flatten, nn.Identity, nn.Dropout)):
            return None
    return m if m <= 255 else None


def _pair(k: int | tuple[int, ...]) -> tuple[int, int]:
    return (k, k) if isinstance(k, int) else (int(k[0]), int(k[1]))


def _zero_padded(layer: nn.Conv2d) -> bool:
    """Whether the convolution pads with zeros by a number of pixels (what oneDNN's quantized
    convolution takes)."""
    return not isinstance(layer.padding, str) and layer.padding_mode == "zeros"


class SplitInt8Map(nn.Module):
    """``pre`` (pooling, flattening) then a convolution or fully connected layer, the latter
    in split 8-bit integer arithmetic (module docstring). The input must be 0/1 spikes
    (float32); ``m``: :func:`input_multiplier` of ``pre``."""

    def __init__(self, pre: list[nn.Module], layer: nn.Conv2d | nn.Linear, m: int) -> None:
        super().__init__()
        self.pre = nn.Sequential(*pre)
        self.m = int(m)
        self.conv = isinstance(layer, nn.Conv2d)
        parts, self.scales = split_weight(layer.weight)
        self.bias = None if layer.bias is None else layer.bias.detach().float()
        self.out_features = layer.weight.shape[0]
        self.zero_points = torch.zeros(self.out_features, dtype=torch.int64)
        if self.conv:
            assert isinstance(layer, nn.Conv2d)
            if not _zero_padded(layer):
                raise ValueError("split int8 convolutions take numeric zero padding only")
            self.geometry = (list(_pair(layer.stride)), list(_pair(layer.padding)),  # type: ignore[arg-type]
                             list(_pair(layer.dilation)), layer.groups)
            stride, padding, dilation, groups = self.geometry
            self.packed = [torch.ops.onednn.qconv_prepack(
                p.contiguous(memory_format=torch.channels_last), s, 1.0 / self.m, 0, stride,
                padding, dilation, groups, None) for p, s in zip(parts, self.scales, strict=True)]
        else:
            self.packed = [torch.ops.onednn.qlinear_prepack(p, None) for p in parts]

    def forward(self, x: Tensor) -> Tensor:
        h = self.pre(x)
        if not self.conv:
            h = h.reshape(h.shape[0], -1)
        q = torch.round(h * self.m).to(torch.uint8)
        q = q.contiguous(memory_format=torch.channels_last if self.conv
                         else torch.contiguous_format)
        y = None
        for k in reversed(range(PARTS)):  # small parts first
            bias = self.bias if k == 0 else None
            if not self.conv:  # (oneDNN takes no float32 bias with a float32 output here)
                part = torch.ops.onednn.qlinear_pointwise(
                    q, 1.0 / self.m, 0, self.packed[k], self.scales[k], self.zero_points, None,
                    1.0, 0, torch.float32, "none", [], "")
                y = part if y is None else y.add_(part)
                if bias is not None:
                    y.add_(bias)
                continue
            stride, padding, dilation, groups = self.geometry
            if y is None:
                y = torch.ops.onednn.qconv_pointwise(
                    q, 1.0 / self.m, 0, self.packed[k], self.scales[k], self.zero_points, bias,
                    stride, padding, dilation, groups, 1.0, 0, torch.float32, "none", [], "")
            else:  # the convolution adds its result into y as it writes it (oneDNN's sum)
                y = torch.ops.onednn.qconv2d_pointwise.binary(
                    q, 1.0 / self.m, 0, self.packed[k], self.scales[k], self.zero_points, y,
                    bias, stride, padding, dilation, groups, 1.0, 0, torch.float32, 1.0, 0,
                    "sum", 1.0, "none", [], "")
        assert y is not None
        return y


#: Smallest fan-in (inputs per output: in_channels x kernel area, or in_features) whose map
#: gains from the split: three integer products plus the input's conversion to uint8 beat one
#: float32 product only where the product is long. Measured on this project's 2-core CPU
#: (AMX), blocks of 10-15 steps at batch 32 (ad-hoc per-map timing inside the simulator):
#: the CIFAR-10 net's conv2 (fan-in 1,600) 5.45 -> 4.27 ms per step; the MNIST net's conv2
#: (fan-in 400) 2.7 -> 3.1 ms, slower.
MIN_FAN_IN = 1024
#: Smallest number of outputs per input position (output channels or features): a short
#: product row (the 10-unit readouts) leaves the fixed costs unpaid. Measured in one run of
#: ``benchmarks/bench_simulation.py`` on the MNIST net, where the 2000 -> 10 readout was the
#: only split map: 15.9 img/s with it split against 17.4 with float maps.
MIN_OUT = 32


def split_int8_map(m: nn.Module, min_fan_in: int | None = None,
                   min_out: int | None = None) -> SplitInt8Map | None:
    """The split-int8 form of a stage's linear map ``m`` (an ``nn.Sequential`` of pooling /
    flattening then one ``Conv2d`` or ``Linear``, or that layer alone), or None if ``m`` has
    another form, its layer's fan-in is below ``min_fan_in`` (default :data:`MIN_FAN_IN`), it
    has fewer than ``min_out`` outputs (default :data:`MIN_OUT`) or the kernels are
    unavailable."""
    if not available():
        return None
    mods = list(m) if isinstance(m, nn.Sequential) else [m]
    if not mods or not isinstance(mods[-1], (nn.Conv2d, nn.Linear)):
        return None
    layer = mods[-1]
    if layer.weight[0].numel() < (MIN_FAN_IN if min_fan_in is None else min_fan_in) \
            or layer.weight.shape[0] < (MIN_OUT if min_out is None else min_out):
        return None
    mult = input_multiplier(mods[:-1])
    if mult is None or (isinstance(layer, nn.Conv2d) and not _zero_padded(layer)):
        return None
    return SplitInt8Map(mods[:-1], layer, mult)
