"""Thin-plate-spline image warps: move a few control points and let the rest of the image follow.

The pose augmentation of the aligner's training (`facecascade.train.dcrn_data`) moves a face's 5
points as a turn of the head would (`facecascade.ops.head_pose.rotate_yaw`) while points on the
crop's border stay put; the spline (Bookstein 1989: radial basis ``r^2 log r^2`` plus an affine
part, interpolating the control points exactly) carries the pixels in between.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def _kernel(a: Tensor, b: Tensor) -> Tensor:
    """``(B, N, M)`` ``r^2 log r^2`` between points ``a (B, N, 2)`` and ``b (B, M, 2)``."""
    r2 = ((a[:, :, None] - b[:, None]) ** 2).sum(-1)
    return r2 * torch.log(r2.clamp_min(1e-12))


def tps_fit(control: Tensor, values: Tensor) -> Tensor:
    """Coefficients ``(B, M + 3, 2)`` of the spline that sends ``control (B, M, 2)`` to ``values (B, M, 2)``."""
    b, m, _ = control.shape
    ones = control.new_ones(b, m, 1)
    p = torch.cat([ones, control], 2)  # (B, M, 3)
    top = torch.cat([_kernel(control, control), p], 2)
    bottom = torch.cat([p.transpose(1, 2), control.new_zeros(b, 3, 3)], 2)
    system = torch.cat([top, bottom], 1)
    rhs = torch.cat([values, control.new_zeros(b, 3, 2)], 1)
    return torch.linalg.solve(system, rhs)


def tps_apply(coefficients: Tensor, control: Tensor, points: Tensor) -> Tensor:
    """The spline of `tps_fit` at ``points (B, N, 2)``: ``(B, N, 2)``."""
    basis = torch.cat([_kernel(points, control), points.new_ones(*points.shape[:2], 1), points], 2)
    return basis @ coefficients


def border_anchors(size: int, per_side: int = 3, device=None, dtype=torch.float32) -> Tensor:
    """``(4 * (per_side - 1), 2)`` pixel positions spread along the border of a ``size`` square."""
    ticks = torch.linspace(0, size - 1, per_side, device=device, dtype=dtype)
    low, high = torch.zeros_like(ticks), torch.full_like(ticks, size - 1)
    sides = [
        torch.stack([ticks[:-1], low[:-1]], 1),
        torch.stack([high[:-1], ticks[:-1]], 1),
        torch.stack([ticks.flip(0)[:-1], high[:-1]], 1),
        torch.stack([low[:-1], ticks.flip(0)[:-1]], 1),
    ]
    return torch.cat(sides)


def tps_warp(images: Tensor, source: Tensor, target: Tensor) -> Tensor:
    """``images (B, C, S, S)`` warped so that pixel positions ``source (B, K, 2)`` land on
    ``target (B, K, 2)`` and the border stays in place (bilinear; pixel centres at integers)."""
    b, _, size, width = images.shape
    if size != width:
        raise ValueError(f"tps_warp expects square images, got {size}x{width}")
    anchors = border_anchors(size, device=images.device, dtype=images.dtype).expand(b, -1, -1)
    control = torch.cat([target, anchors], 1)  # output positions ...
    coefficients = tps_fit(control, torch.cat([source, anchors], 1))  # ... -> where to sample
    ys, xs = torch.meshgrid(
        torch.arange(size, dtype=images.dtype, device=images.device),
        torch.arange(size, dtype=images.dtype, device=images.device),
        indexing="ij",
    )
    grid = torch.stack([xs, ys], -1).reshape(1, -1, 2).expand(b, -1, -1)
    where = tps_apply(coefficients, control, grid)
    normalised = 2 * where / max(size - 1, 1) - 1
    return F.grid_sample(
        images, normalised.view(b, size, size, 2), mode="bilinear", padding_mode="border", align_corners=True
    )
