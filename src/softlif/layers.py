"""Layers the paper's networks need beyond ``torch.nn``.

* :class:`LocallyConnected2d`: a convolution with *unshared* weights, one filter bank and one
  bias per output position (the "local" layers of the CIFAR-10 net, SPEC section 4).
* :func:`avg_pool`: cuda-convnet style average pooling (ceil mode, dividing by the number of
  in-bounds pixels), which is ``nn.AvgPool2d(k, s, ceil_mode=True)`` with no padding.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def avg_pool(kernel_size: int, stride: int) -> nn.AvgPool2d:
    """Average pooling as in the paper: ceil mode, divide by in-bounds pixels.

    With ``padding=0`` PyTorch clips ceil-mode windows at the border and divides by the clipped
    window size, which is exactly cuda-convnet's rule (tested in ``tests/test_layers.py``).
    """
    return nn.AvgPool2d(kernel_size, stride, padding=0, ceil_mode=True, count_include_pad=False)


class LocallyConnected2d(nn.Module):
    """2-D locally connected layer: like ``nn.Conv2d`` but with a separate filter bank per output
    position (weights are not shared across space), and a bias per output position and filter.

    Implemented as a patch gather + one batched matmul over positions, so its cost is that of a dense
    layer with ``out_h * out_w * in_channels * k * k * out_channels`` multiply-adds.

    Shapes: input ``(B, C_in, H, W)`` -> output ``(B, C_out, H_out, W_out)``.
    ``weight``: ``(H_out * W_out, k * k * C_in, C_out)``, the middle axis ordered
    (kernel row, kernel column, input channel); ``bias``: ``(C_out, H_out, W_out)``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        in_size: tuple[int, int],
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.in_size = (int(in_size[0]), int(in_size[1]))
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding
        h, w = self.in_size
        self.out_size = (
            (h + 2 * padding - kernel_size) // stride + 1,
            (w + 2 * padding - kernel_size) // stride + 1,
        )
        n_pos = self.out_size[0] * self.out_size[1]
        fan_in = in_channels * kernel_size * kernel_size
        self.weight = nn.Parameter(torch.empty(n_pos, fan_in, out_channels))
        self.bias = nn.Parameter(torch.empty(out_channels, *self.out_size)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Same scale as nn.Conv2d's default (kaiming-uniform with a=sqrt(5)) for the same fan-in.
        bound = 1.0 / math.sqrt(self.weight.shape[1])
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    def effective_weight(self) -> torch.Tensor:
        """The weight the forward pass uses (a subclass may quantise it)."""
        return self.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-3:] != (self.in_channels, *self.in_size):
            raise ValueError(
                f"LocallyConnected2d expects input (B, {self.in_channels}, {self.in_size[0]}, "
                f"{self.in_size[1]}), got {tuple(x.shape)}"
            )
        b, k, s, p = x.shape[0], self.kernel_size, self.stride, self.padding
        # Work channels-last: (B, H, W, C), contiguous (free when x is channels-last already).
        xl = x.permute(0, 2, 3, 1).contiguous()
        if p:
            xl = F.pad(xl, (0, 0, p, p, p, p))
        patches = xl.unfold(1, k, s).unfold(2, k, s)  # view: (B, H_out, W_out, C_in, k, k)
        # One gather into (L, B, k*k*C_in) with C_in innermost, matching memory order (a gather
        # in F.unfold's (C_in, k, k) order from channels-last memory ran 4x slower).
        weight = self.effective_weight()
        cols = patches.permute(1, 2, 0, 4, 5, 3).reshape(-1, b, weight.shape[1])
        out = torch.bmm(cols, weight.to(x.dtype))  # (L, B, C_out)
        # a view, no copy: (B, C_out, H_out, W_out) with position-major strides
        out = out.permute(1, 2, 0).reshape(b, self.out_channels, *self.out_size)
        if self.bias is not None:
            out = out + self.bias.to(x.dtype)
        return out

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, in_size={self.in_size}, "
            f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"
        )
