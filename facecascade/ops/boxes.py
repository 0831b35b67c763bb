"""Box geometry. Every box is ``Tensor[N, 4]`` ``x1, y1, x2, y2`` in pixels."""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch
from torch import Tensor
from torchvision.ops import batched_nms
from torchvision.ops import box_area as _tv_box_area
from torchvision.ops import box_iou as _tv_box_iou

BoxesT = TypeVar("BoxesT", Tensor, np.ndarray)


def box_area(boxes: Tensor) -> Tensor:
    """Areas ``(N,)`` of ``boxes (N, 4)`` (continuous convention: ``(x2 - x1) * (y2 - y1)``)."""
    return _tv_box_area(boxes)


def box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """Pairwise IoU ``(N, M)`` of ``boxes1 (N, 4)`` and ``boxes2 (M, 4)``."""
    return _tv_box_iou(boxes1, boxes2)


def square_boxes(boxes: Tensor) -> Tensor:
    """Grow each box to a square around its centre; side = the longer side. Returns a new tensor."""
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    side = torch.maximum(w, h)
    x1 = boxes[:, 0] + w * 0.5 - side * 0.5  # this order of operations is the reference's
    y1 = boxes[:, 1] + h * 0.5 - side * 0.5
    return torch.stack([x1, y1, x1 + side, y1 + side], dim=1)


def mirror_boxes(boxes: BoxesT, width: int) -> BoxesT:
    """Boxes ``(N, 4)`` of an image ``width`` pixels wide, mirrored left-right; a tensor or a
    NumPy array, returned as the same kind (a new one)."""
    out = boxes.clone() if isinstance(boxes, Tensor) else boxes.copy()
    out[:, [0, 2]] = width - boxes[:, [2, 0]]
    return out


def clip_boxes(boxes: Tensor, width: int, height: int) -> Tensor:
    """Clip ``boxes (N, 4)`` to the image ``[0, width] x [0, height]``."""
    out = boxes.clone()
    out[:, 0::2] = out[:, 0::2].clamp(0, width)
    out[:, 1::2] = out[:, 1::2].clamp(0, height)
    return out


def crop_windows(boxes: Tensor, width: Tensor, height: Tensor) -> Tensor:
    """Integer pixel windows ``(N, 4)`` ``[x0, y0, x1, y1)`` (0-based, end exclusive) to crop.

    MTCNN's convention (Zhang et al.'s reference code, 1-based inclusive pixels): the window of a
    box is ``trunc(x1) .. trunc(x2)`` inclusive, clipped to the image; 0-based and end-exclusive
    that is ``[max(trunc(x1) - 1, 0), min(trunc(x2), W))``. ``width``/``height`` are per box.
    """
    t = boxes.trunc()
    x0 = (t[:, 0] - 1).clamp(min=0)
    y0 = (t[:, 1] - 1).clamp(min=0)
    x1 = torch.minimum(t[:, 2], width.to(t.dtype))
    y1 = torch.minimum(t[:, 3], height.to(t.dtype))
    return torch.stack([x0, y0, x1, y1], dim=1).long()


def top_k_per_group(ranked: Tensor, groups: Tensor, k: int) -> Tensor:
    """The first ``k`` of ``ranked`` (indices, best first) within each group, still best first.

    ``groups``: the group id of every box that ``ranked`` indexes into."""
    if k <= 0 or len(ranked) <= k:
        return ranked
    g = groups[ranked]
    by_group = torch.argsort(g, stable=True)  # rank order kept inside each group
    sorted_g = g[by_group]
    rank = torch.arange(len(g), device=g.device) - torch.searchsorted(sorted_g, sorted_g)
    return ranked[torch.sort(by_group[rank < k]).values]


def nms(boxes: Tensor, scores: Tensor, threshold: float, groups: Tensor | None = None, mode: str = "union") -> Tensor:
    """Greedy non-maximum suppression; returns kept indices in descending score order.

    Args:
        boxes: ``(N, 4)`` x1, y1, x2, y2 in pixels.
        scores: ``(N,)``.
        threshold: a box is dropped when its overlap with a kept, higher-scoring box is > threshold.
        groups: ``(N,)`` integer ids; boxes of different groups never suppress each other.
        mode: ``"union"`` = IoU (torchvision's kernel); ``"min"`` = intersection over the smaller
            box's area, with MTCNN's inclusive-pixel areas ``(w + 1) * (h + 1)``, as in the
            reference O-Net stage.
    """
    if groups is None:
        groups = torch.zeros(len(boxes), dtype=torch.long, device=boxes.device)
    if mode == "union":
        return batched_nms(boxes, scores, groups, threshold)
    if mode != "min":
        raise ValueError(f"nms mode must be 'union' or 'min', got {mode!r}")
    return _nms_min(boxes, scores, threshold, groups)


def vote_boxes(boxes: Tensor, scores: Tensor, keep: Tensor, threshold: float, groups: Tensor | None = None) -> Tensor:
    """Box voting: each kept box ``boxes[keep]`` replaced by the score-weighted mean of the boxes of
    its group that overlap it at IoU >= ``threshold`` (itself included), ``(K, 4)``.

    NMS keeps the best-scoring box of a cluster and throws the others away; its neighbours' boxes
    are further evidence of where the face is (Gidaris & Komodakis, "Object detection via a
    multi-region & semantic segmentation-aware CNN model", ICCV 2015). ``scores`` must be > 0.
    Each mean is summed in float64 over that box's own neighbours only, so a face's box does not
    depend on the other images of a batch (a matrix product over all of them rounds differently).
    """
    out = boxes[keep].clone()
    if len(keep) == 0:
        return out
    near = box_iou(boxes[keep], boxes) >= threshold
    if groups is not None:
        near &= groups[keep, None] == groups[None, :]
    for i, row in enumerate(near):
        idx = torch.nonzero(row).squeeze(1)
        weights = scores[idx].double()
        out[i] = ((boxes[idx].double() * weights[:, None]).sum(0) / weights.sum()).to(boxes.dtype)
    return out


MIN_NMS_MATRIX = 512  # up to this many boxes, `_nms_min` computes all overlaps at once (a few
# float64 N x N temporaries: 2 MB each at 512)


def _nms_min(boxes: Tensor, scores: Tensor, threshold: float, groups: Tensor) -> Tensor:
    """Greedy intersection-over-minimum NMS. Up to `MIN_NMS_MATRIX` boxes (O-Net's few dozen at
    inference), all pairwise overlaps are computed in one vectorised step and the greedy pass only
    reads rows of that matrix; beyond, in O(N) memory, each kept box suppresses in one step the
    lower-scoring boxes of its group that it overlaps by more than ``threshold`` (a cascade that
    fires everywhere, e.g. while training, can leave tens of thousands of boxes here)."""
    if len(boxes) == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    order = torch.argsort(scores, descending=True, stable=True)
    x1, y1, x2, y2 = boxes[order].double().cpu().numpy().T
    g = groups[order].cpu().numpy()
    area = (x2 - x1 + 1) * (y2 - y1 + 1)

    def suppresses(kept, rest: slice) -> np.ndarray:
        """Whether boxes ``kept`` (an index, or ``(slice(None), None)``: every box, as a column)
        overlap boxes ``rest`` of their group by more than ``threshold``."""
        w = np.clip(np.minimum(x2[kept], x2[rest]) - np.maximum(x1[kept], x1[rest]) + 1, 0, None)
        h = np.clip(np.minimum(y2[kept], y2[rest]) - np.maximum(y1[kept], y1[rest]) + 1, 0, None)
        return (w * h / np.minimum(area[kept], area[rest]) > threshold) & (g[kept] == g[rest])

    n = len(area)
    matrix = suppresses((slice(None), None), slice(None)) if n <= MIN_NMS_MATRIX else None
    suppressed = np.zeros(n, bool)
    for i in range(n):
        if suppressed[i]:
            continue
        rest = slice(i + 1, None)
        suppressed[rest] |= matrix[i, rest] if matrix is not None else suppresses(i, rest)
    return order[torch.from_numpy(~suppressed).to(order.device)]
