"""Box and landmark coding: MTCNN's offsets and landmarks, and R-CNN box deltas.

The cascade regresses box offsets relative to the window size, and landmarks relative to the
window. Zhang et al.'s reference code counts pixels inclusively (a box ``[x1, x2]`` is
``x2 - x1 + 1`` wide) in stages 2 and 3 but not in stage 1; ``inclusive`` selects the convention so
that the original weights reproduce their published behaviour. ``encode_*`` are the exact inverses
(used to make training targets).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def _sizes(boxes: Tensor, inclusive: bool) -> tuple[Tensor, Tensor]:
    extra = 1.0 if inclusive else 0.0
    return boxes[:, 2] - boxes[:, 0] + extra, boxes[:, 3] - boxes[:, 1] + extra


def apply_offsets(boxes: Tensor, offsets: Tensor, inclusive: bool) -> Tensor:
    """Calibrate ``boxes (N, 4)`` by ``offsets (N, 4)`` (dx1, dy1, dx2, dy2 in box sizes)."""
    w, h = _sizes(boxes, inclusive)
    scale = torch.stack([w, h, w, h], dim=1)
    return boxes + offsets * scale


def encode_offsets(boxes: Tensor, targets: Tensor, inclusive: bool) -> Tensor:
    """Offsets ``(N, 4)`` that `apply_offsets` turns ``boxes`` into ``targets``."""
    w, h = _sizes(boxes, inclusive)
    scale = torch.stack([w, h, w, h], dim=1)
    return (targets - boxes) / scale


def decode_landmarks(boxes: Tensor, relative: Tensor) -> Tensor:
    """Landmarks ``(N, K, 2)`` in pixels from ``relative (N, K, 2)`` positions in ``boxes (N, 4)``.

    Reference convention: ``x = x1 - 1 + rx * (x2 - x1 + 1)`` (1-based box, 0-based points).
    """
    w, h = _sizes(boxes, inclusive=True)
    origin = boxes[:, None, :2] - 1.0
    return origin + relative * torch.stack([w, h], dim=1)[:, None, :]


def encode_landmarks(boxes: Tensor, landmarks: Tensor) -> Tensor:
    """Inverse of `decode_landmarks`: relative positions ``(N, K, 2)``."""
    w, h = _sizes(boxes, inclusive=True)
    origin = boxes[:, None, :2] - 1.0
    return (landmarks - origin) / torch.stack([w, h], dim=1)[:, None, :]


# -- two-stage detectors (Faster / Cascade R-CNN) ------------------------------------------------

BOX_DELTA_CLAMP = math.log(1000.0 / 16)  # largest log-size change decoded (Detectron's value)


def _centres(boxes: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    return boxes[:, 0] + 0.5 * w, boxes[:, 1] + 0.5 * h, w, h


def encode_deltas(boxes: Tensor, targets: Tensor, std: tuple[float, float, float, float]) -> Tensor:
    """R-CNN regression targets ``(N, 4)`` (dx, dy, dw, dh) that move ``boxes`` onto ``targets``
    (both ``x1, y1, x2, y2`` pixels), divided by ``std`` (zero-mean normalisation; Cascade R-CNN's
    per-stage "stat")."""
    x, y, w, h = _centres(boxes)
    tx, ty, tw, th = _centres(targets)
    deltas = torch.stack([(tx - x) / w, (ty - y) / h, torch.log(tw / w), torch.log(th / h)], 1)
    return deltas / deltas.new_tensor(std)


def decode_deltas(boxes: Tensor, deltas: Tensor, std: tuple[float, float, float, float]) -> Tensor:
    """Inverse of `encode_deltas`: ``boxes (N, 4)`` moved by normalised ``deltas (N, 4)``."""
    x, y, w, h = _centres(boxes)
    d = deltas * deltas.new_tensor(std)
    cx, cy = x + d[:, 0] * w, y + d[:, 1] * h
    half_w = 0.5 * w * torch.exp(d[:, 2].clamp(max=BOX_DELTA_CLAMP))
    half_h = 0.5 * h * torch.exp(d[:, 3].clamp(max=BOX_DELTA_CLAMP))
    return torch.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], 1)
