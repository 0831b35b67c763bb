"""Layers shared by the cascade networks."""

from __future__ import annotations

import copy
import math
from typing import TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..ops import native

Net = TypeVar("Net", bound=nn.Module)


class CeilMaxPool2d(nn.Module):
    """``nn.MaxPool2d(kernel, stride, ceil_mode=True)`` computed as strided elementwise maxima.

    Same result as the pooling layer, but on CPU 2-7x faster for the small kernels of the cascades
    on channels-last tensors, where PyTorch's pooling kernel (which also computes indices there)
    took a quarter of P-Net's time. Rows are reduced first, then columns.
    """

    def __init__(self, kernel: int, stride: int) -> None:
        super().__init__()
        if kernel < stride:
            raise ValueError("CeilMaxPool2d needs kernel >= stride")
        self.kernel, self.stride = kernel, stride

    def _out(self, size: int) -> int:
        return math.ceil((size - self.kernel) / self.stride) + 1

    def _reduce(self, x: Tensor, dim: int) -> Tensor:
        """Max over ``kernel`` taps ``stride`` apart along ``dim`` (-2 or -1); taps that would
        overhang the end (ceil mode) are skipped instead of padded, which saves a copy."""
        k, s = self.kernel, self.stride
        n_out = self._out(x.shape[dim])

        def tap(j: int) -> tuple[Tensor, int]:
            n = min(n_out, (x.shape[dim] - j + s - 1) // s)
            view = x.narrow(dim, j, (n - 1) * s + 1)
            return (view[..., ::s, :] if dim == -2 else view[..., ::s]), n

        first, _ = tap(0)  # (n_out - 1) * s <= size - 1 because kernel >= stride
        second, n = tap(1)
        if n == n_out:
            out = torch.maximum(first, second)
        else:
            out = first.clone()
            torch.maximum(out.narrow(dim, 0, n), second, out=out.narrow(dim, 0, n))
        for j in range(2, k):
            view, n = tap(j)
            torch.maximum(out.narrow(dim, 0, n), view, out=out.narrow(dim, 0, n))
        return out

    def forward(self, x: Tensor) -> Tensor:
        if (torch.is_grad_enabled() and x.requires_grad) or min(x.shape[-2:]) < self.kernel:
            # Training (the in-place maxima have no autograd) and inputs smaller than the kernel.
            return F.max_pool2d(x, self.kernel, self.stride, ceil_mode=True)
        return self._reduce(self._reduce(x, -2), -1)

    def extra_repr(self) -> str:
        return f"kernel={self.kernel}, stride={self.stride}, ceil_mode=True"


class PReLU(nn.PReLU):
    """``nn.PReLU`` (same parameter) with a faster CPU inference path for channels-last inputs with
    fewer than 16 channels, where PyTorch's kernel broadcasts the slopes over an innermost
    dimension too short to vectorise (P-Net's 10-channel first layer: 0.78 ms per canvas band).

    That path computes ``x + (a - 1) * min(x, 0)`` **in place on its input** (in the cascades,
    always the fresh output of the convolution before it) on the ``(N * H, W * C)`` view of the
    channels-last tensor, with the slopes tiled along a whole row so the operation vectorises, 16
    rows at a time so the temporary stays small (0.14 ms for the same band; one full-size
    temporary cost a fresh, page-faulted allocation per call). With 16 channels or more
    PyTorch's own kernel is the fastest (0.09 vs 0.33 ms for R-Net's first layer).
    """

    ROWS = 16

    def forward(self, x: Tensor) -> Tensor:
        if (
            x.dim() != 4
            or x.shape[1] >= 16
            or x.requires_grad
            or x.is_cuda
            or not x.is_contiguous(memory_format=torch.channels_last)
        ):
            return super().forward(x)
        n, c, h, w = x.shape
        rows = x.permute(0, 2, 3, 1).view(n * h, w * c)  # channels innermost
        slope = (self.weight - 1).expand(c).repeat(w)
        for r in range(0, n * h, self.ROWS):
            part = rows[r : r + self.ROWS]
            part.addcmul_(part.clamp_max(0), slope)
        return x


def conv_prelu(cin: int, cout: int, kernel: int) -> list[nn.Module]:
    """A valid (unpadded) convolution followed by a per-channel PReLU."""
    return [nn.Conv2d(cin, cout, kernel), PReLU(cout)]


class PReLUMaxPool(nn.Module):
    """Inference-time fusion of a `PReLU` and the `CeilMaxPool2d` after it (same result, to float32
    rounding): one native pass (`facecascade.ops.native.prelu_max_pool`) over channels-last
    float32 CPU tensors whose channel count is a multiple of 16, where it measured 2-2.6x faster
    than the two layers (R-Net's 48-channel and O-Net's 32- and 64-channel maps); the two layers
    otherwise (R-Net's 28-channel first map, where PyTorch's kernels are as fast)."""

    def __init__(self, prelu: nn.PReLU, pool: CeilMaxPool2d) -> None:
        super().__init__()
        self.prelu, self.pool = prelu, pool

    def forward(self, x: Tensor) -> Tensor:
        if native.prelu_max_pool_ok(x) and x.shape[1] % 16 == 0 and min(x.shape[-2:]) >= self.pool.kernel:
            return native.prelu_max_pool(x, self.prelu.weight, self.pool.kernel, self.pool.stride)
        return self.pool(self.prelu(x))


class WindowStem(nn.Module):
    """Inference-time fusion of a window network's first three layers, a 3x3 convolution from 3
    to at most 32 channels, its `PReLU` and the `CeilMaxPool2d` after it (same result, to float32
    rounding): one native pass per window (`facecascade.ops.native.window_stem`) on float32
    channels-last CPU input, the three layers otherwise. R-Net's and O-Net's first layers run at
    a fraction of the float32 peak in oneDNN (3 input channels) and write a map 4x the size of
    the pooled one; the native pass keeps that map in cache."""

    packed_weight: Tensor  # buffers, registered in __init__
    packed_bias: Tensor
    packed_slope: Tensor

    def __init__(self, conv: nn.Conv2d, prelu: nn.PReLU, pool: CeilMaxPool2d) -> None:
        super().__init__()
        self.conv, self.prelu, self.pool = conv, prelu, pool
        for name, tensor in zip(
            ("packed_weight", "packed_bias", "packed_slope"), native.pack_window_stem(conv, prelu.weight)
        ):
            self.register_buffer(name, tensor.to(conv.weight.device), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        if native.window_stem_ok(x, self.conv):
            packed = (self.packed_weight, self.packed_bias, self.packed_slope)
            return native.window_stem(x, packed, self.conv.out_channels, self.pool.kernel, self.pool.stride)
        return self.pool(self.prelu(self.conv(x)))


def _fuse_stem(seq: nn.Sequential) -> None:
    """`WindowStem` in place of a leading conv 3 -> <= 32 (3x3), PReLU, CeilMaxPool2d."""
    names, layers = zip(*seq.named_children()) if len(seq) else ((), ())
    if (
        len(layers) >= 3
        and isinstance(layers[0], nn.Conv2d)
        and isinstance(layers[1], nn.PReLU)
        and isinstance(layers[2], CeilMaxPool2d)
        and layers[0].weight.shape[1:] == (3, 3, 3)
        and layers[0].out_channels <= native.WINDOW_STEM_CHANNELS
        and layers[0].bias is not None
    ):
        setattr(seq, names[0], WindowStem(*layers[:3]))
        setattr(seq, names[1], nn.Identity())
        setattr(seq, names[2], nn.Identity())


def with_fused_layers(net: Net) -> Net:
    """A copy of ``net`` (``net`` itself is untouched) for inference in which, inside its
    ``nn.Sequential`` containers, a leading 3-channel conv + PReLU + pool is one `WindowStem` and
    each other `PReLU` directly followed by a `CeilMaxPool2d` is one `PReLUMaxPool` (replaced
    layers become ``nn.Identity``, so layer indices stay)."""
    net = copy.deepcopy(net)
    for seq in [m for m in net.modules() if isinstance(m, nn.Sequential)]:
        _fuse_stem(seq)
        children = list(seq.named_children())
        for (name, child), (next_name, next_child) in zip(children, children[1:]):
            if isinstance(child, nn.PReLU) and isinstance(next_child, CeilMaxPool2d):
                setattr(seq, name, PReLUMaxPool(child, next_child))
                setattr(seq, next_name, nn.Identity())
    return net
