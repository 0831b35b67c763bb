"""Image patches around landmarks, for local landmark refinement (DCRN's LRN state).

Points are in *crop units*: ``u = (pixel + 0.5) / S`` for an ``S x S`` crop, so ``(0, 0)`` is the
crop's top-left corner and ``(1, 1)`` its bottom-right corner whatever its resolution. This is also
``grid_sample``'s convention with ``align_corners=False`` (grid = 2u - 1).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def to_crop_units(pixels, size: int):
    """Crop pixel coordinates (array or tensor) to crop units of an ``size x size`` crop."""
    return (pixels + 0.5) / size


def from_crop_units(units, size: int):
    """Crop units back to crop pixel coordinates."""
    return units * size - 0.5


def patch_offsets(size: int, extent: float, device=None, dtype=torch.float32) -> Tensor:
    """``(size, size, 2)`` x, y offsets (crop units) of a patch's sample centres from its centre."""
    steps = (torch.arange(size, device=device, dtype=dtype) + 0.5) / size - 0.5
    ys, xs = torch.meshgrid(steps * extent, steps * extent, indexing="ij")
    return torch.stack([xs, ys], dim=-1)


def extract_patches(crops: Tensor, points: Tensor, size: int, extent: float) -> Tensor:
    """Bilinear patches centred on each point: ``(B, K, C, size, size)``.

    Args:
        crops: ``(B, C, S, S)`` float images.
        points: ``(B, K, 2)`` x, y in crop units (see the module docstring).
        size: samples per patch side.
        extent: patch side in crop units (0.25 = a quarter of the crop).

    Outside the crop reads as zeros, so patches at the border are partly black, never shifted.
    Differentiable with respect to ``crops`` and ``points``.
    """
    if crops.ndim != 4 or points.ndim != 3 or points.shape[-1] != 2 or crops.shape[0] != points.shape[0]:
        raise ValueError(
            f"need crops (B, C, S, S) and points (B, K, 2), got {tuple(crops.shape)} and {tuple(points.shape)}"
        )
    b, k = points.shape[:2]
    offsets = patch_offsets(size, extent, crops.device, crops.dtype)  # (P, P, 2)
    where = points[:, :, None, None, :].to(crops.dtype) + offsets  # (B, K, P, P, 2)
    grid = (2 * where - 1).reshape(b, k * size, size, 2)
    patches = F.grid_sample(crops, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return patches.reshape(b, crops.shape[1], k, size, size).permute(0, 2, 1, 3, 4)
