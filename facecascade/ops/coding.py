"""MTCNN box and landmark coding.

The cascade regresses box offsets relative to the window size, and landmarks relative to the
window. Zhang et al.'s reference code counts pixels inclusively (a box ``[x1, x2]`` is
``x2 - x1 + 1`` wide) in stages 2 and 3 but not in stage 1; ``inclusive`` selects the convention so
that the original weights reproduce their published behaviour. ``encode_*`` are the exact inverses
(used to make training targets).
"""

from __future__ import annotations

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
