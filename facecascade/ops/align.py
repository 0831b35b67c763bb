"""Face crops: similarity alignment from 5 landmarks, square box crops, bilinear warps.

Coordinates are pixel indices (pixel ``(i, j)`` sits at ``x = j, y = i``), the convention of the
landmark tables below and of OpenCV's ``warpAffine``, so crops made here match what
face-recognition models trained on such crops expect.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

ARCFACE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float64,
)
"""Where the 5 landmarks (image-left eye, image-right eye, nose, mouth corners) sit in a 112 x 112
crop: the reference layout of ArcFace (Deng et al., CVPR 2019) and the InsightFace models."""


def similarity_transforms(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) from ``src`` to ``dst``.

    Umeyama's closed form (IEEE TPAMI 13(4), 1991), reflection excluded.

    Args:
        src: ``(N, K, 2)`` points per face, K >= 2.
        dst: ``(K, 2)`` target points shared by all faces.

    Returns:
        ``(N, 2, 3)`` float64 matrices ``A`` with ``dst ~ A[:, :2] @ p + A[:, 2]``.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.ndim != 3 or src.shape[1:] != dst.shape or dst.shape[0] < 2:
        raise ValueError(f"need src (N, K, 2) and dst (K, 2) with K >= 2, got {src.shape} and {dst.shape}")
    src_mean, dst_mean = src.mean(axis=1, keepdims=True), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean  # (N, K, 2), (K, 2)
    cov = np.einsum("kd,nke->nde", dst_c, src_c) / src.shape[1]  # (N, 2, 2)
    u, s, vt = np.linalg.svd(cov)
    sign = np.sign(np.linalg.det(u) * np.linalg.det(vt))  # -1 where the best fit would mirror
    d = np.stack([np.ones_like(sign), sign], axis=1)  # (N, 2)
    rotation = u @ (d[:, :, None] * vt)
    variance = (src_c**2).sum(axis=(1, 2)) / src.shape[1]
    scale = (s * d).sum(axis=1) / np.maximum(variance, 1e-12)
    linear = scale[:, None, None] * rotation
    translation = dst_mean - np.einsum("nde,ne->nd", linear, src_mean[:, 0])
    return np.concatenate([linear, translation[:, :, None]], axis=2)


def box_transforms(boxes: np.ndarray, size: int, margin: float = 0.0) -> np.ndarray:
    """``(N, 2, 3)`` maps from each box's enclosing square (side grown by ``margin``) onto a
    ``size x size`` crop; boxes ``(N, 4)`` x1, y1, x2, y2 in pixels."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    side = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) * (1.0 + margin)
    side = np.maximum(side, 1e-6)
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    scale = size / side
    out = np.zeros((len(boxes), 2, 3))
    out[:, 0, 0] = out[:, 1, 1] = scale
    # the square's corner (cx - side/2, cy - side/2) goes to -0.5, the outer edge of pixel 0
    out[:, 0, 2] = -0.5 - (cx - side / 2) * scale
    out[:, 1, 2] = -0.5 - (cy - side / 2) * scale
    return out


def warp_crops(image: np.ndarray, transforms: np.ndarray, size: int) -> np.ndarray:
    """Crops ``(N, size, size, 3) uint8`` of an RGB ``(H, W, 3) uint8`` image, one per transform.

    Args:
        transforms: ``(N, 2, 3)`` maps from image pixels to crop pixels.

    Bilinear sampling (``grid_sample``); outside the image is black. Only the part of the image
    each crop sees is converted to float, so the cost follows the faces' size, not the image's.
    """
    transforms = np.asarray(transforms, dtype=np.float64).reshape(-1, 2, 3)
    out = torch.zeros((len(transforms), size, size, 3), dtype=torch.uint8)
    if len(transforms) == 0:
        return out.numpy()
    inverse = torch.from_numpy(_invert(transforms)).float()  # (N, 2, 3): crop pixel -> image pixel
    ys, xs = torch.meshgrid(
        torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32), indexing="ij"
    )
    pixels = torch.stack([xs, ys, torch.ones_like(xs)], dim=-1).reshape(-1, 3)  # (size * size, 3)
    source = torch.from_numpy(np.ascontiguousarray(image))
    h, w = image.shape[:2]
    for i, where in enumerate(pixels @ inverse.transpose(1, 2)):  # (size * size, 2) image x, y per crop
        x0, y0 = (max(int(v), 0) for v in torch.floor(where.min(dim=0).values))
        x1, y1 = min(int(torch.ceil(where[:, 0].max())) + 1, w), min(int(torch.ceil(where[:, 1].max())) + 1, h)
        if x1 <= x0 or y1 <= y0:
            continue  # the crop sees only what lies outside the image: black
        # the region the crop sees, with a 1-pixel black border standing for "outside the image"
        region = F.pad(source[y0:y1, x0:x1].permute(2, 0, 1).float(), (1, 1, 1, 1))[None]
        rh, rw = region.shape[-2:]
        grid = torch.stack([2 * (where[:, 0] - x0 + 1) / (rw - 1) - 1, 2 * (where[:, 1] - y0 + 1) / (rh - 1) - 1], -1)
        crop = F.grid_sample(
            region, grid.reshape(1, size, size, 2), mode="bilinear", padding_mode="zeros", align_corners=True
        )
        out[i] = crop[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8)
    return out.numpy()


def warp_batch(images: torch.Tensor, transforms: torch.Tensor, size: int) -> torch.Tensor:
    """One crop per image of a same-size batch: ``images (B, C, H, W)`` float, ``transforms
    (B, 2, 3)`` image pixel -> crop pixel; returns ``(B, C, size, size)``, bilinear, black outside
    the image. Differentiable and batched (training-time augmentation)."""
    h, w = images.shape[-2:]
    linear = torch.linalg.inv(transforms[:, :, :2])
    inverse = torch.cat([linear, -linear @ transforms[:, :, 2:]], dim=2)  # crop pixel -> image pixel
    ys, xs = torch.meshgrid(
        torch.arange(size, dtype=images.dtype, device=images.device),
        torch.arange(size, dtype=images.dtype, device=images.device),
        indexing="ij",
    )
    pixels = torch.stack([xs, ys, torch.ones_like(xs)], dim=-1).reshape(-1, 3)
    where = pixels @ inverse.transpose(1, 2).to(images.dtype)  # (B, size * size, 2)
    grid = torch.stack([2 * where[..., 0] / max(w - 1, 1) - 1, 2 * where[..., 1] / max(h - 1, 1) - 1], -1)
    return F.grid_sample(
        images, grid.view(-1, size, size, 2), mode="bilinear", padding_mode="zeros", align_corners=True
    )


def transform_points(transforms: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``(N, K, 2)`` points mapped by ``(N, 2, 3)`` affine transforms (one per set of points)."""
    return np.einsum("nij,nkj->nki", transforms[:, :, :2], points) + transforms[:, None, :, 2]


def invert_transforms(transforms: np.ndarray) -> np.ndarray:
    """The ``(N, 2, 3)`` inverses of ``(N, 2, 3)`` affine transforms."""
    return _invert(np.asarray(transforms, np.float64))


def _invert(transforms: np.ndarray) -> np.ndarray:
    linear = np.linalg.inv(transforms[:, :, :2])
    return np.concatenate([linear, -linear @ transforms[:, :, 2:]], axis=2)


def mirror_crops(crops: np.ndarray) -> np.ndarray:
    """``(N, S, S, C)`` crops mirrored left-right (contiguous, as the networks take them)."""
    return np.ascontiguousarray(crops[:, :, ::-1])
