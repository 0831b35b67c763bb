"""Per-image matching of detections to annotated faces, PASCAL VOC style.

Detections are taken in order of descending score (stable for ties). Each one looks up the
ground-truth face it overlaps most (IoU over *all* faces of the image, ignored or not):

* IoU below the threshold (or no faces at all): a false positive;
* that face is ignored (flagged, or lower than ``min_size`` pixels): the detection is dropped,
  neither a true nor a false positive;
* that face was already taken by a higher-scoring detection: a false positive (a duplicate);
* otherwise: a true positive, and the face is taken.

Unlike the VOC devkit, IoU uses continuous coordinates (no "+1" pixel areas), matching the
``x1, y1, x2, y2`` convention of `Faces` and `FaceRecord`, and a detection counts as matching
when ``IoU >= threshold``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..ops.boxes import box_iou as ops_box_iou

TRUE_POSITIVE = 1
FALSE_POSITIVE = 0
DROPPED = -1


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(len(a), len(b))`` float64 IoU of ``x1, y1, x2, y2`` boxes (`facecascade.ops.box_iou`,
    i.e. torchvision's); 0 where the union is empty, and inverted boxes count as empty."""
    ta = torch.as_tensor(np.asarray(a, np.float64)).reshape(-1, 4)
    tb = torch.as_tensor(np.asarray(b, np.float64)).reshape(-1, 4)
    ta = torch.cat([ta[:, :2], torch.maximum(ta[:, 2:], ta[:, :2])], 1)
    tb = torch.cat([tb[:, :2], torch.maximum(tb[:, 2:], tb[:, :2])], 1)
    return torch.nan_to_num(ops_box_iou(ta, tb), nan=0.0).numpy()


def effective_ignore(gt_boxes: np.ndarray, gt_ignore: np.ndarray | None = None, min_size: float = 0.0) -> np.ndarray:
    """``(N,)`` bool: faces flagged ignored, or whose box height is below ``min_size`` pixels."""
    gt_boxes = np.asarray(gt_boxes, np.float64).reshape(-1, 4)
    ignore = np.zeros(len(gt_boxes), bool) if gt_ignore is None else np.asarray(gt_ignore, bool).reshape(-1)
    if len(ignore) != len(gt_boxes):
        raise ValueError(f"{len(ignore)} ignore flags for {len(gt_boxes)} ground-truth boxes")
    if min_size > 0:
        ignore = ignore | ((gt_boxes[:, 3] - gt_boxes[:, 1]) < min_size)
    return ignore


@dataclass(frozen=True)
class ImageMatch:
    """How the detections of one image were judged.

    Attributes:
        labels: ``(D,)`` int8 per detection, in the order they were given: `TRUE_POSITIVE` (1),
            `FALSE_POSITIVE` (0) or `DROPPED` (-1, matched an ignored face).
        matched: ``(D,)`` int64, index of the ground-truth face each detection matched (the
            highest-IoU face at or above the threshold, also for duplicates and dropped ones), or -1.
        ignore: ``(N,)`` bool, the faces treated as ignored (flags and ``min_size``).
    """

    labels: np.ndarray
    matched: np.ndarray
    ignore: np.ndarray

    @property
    def num_gt(self) -> int:
        """Faces that count: not ignored."""
        return int((~self.ignore).sum())

    @property
    def num_ignored(self) -> int:
        return int(self.ignore.sum())

    @property
    def num_tp(self) -> int:
        return int((self.labels == TRUE_POSITIVE).sum())

    @property
    def num_fp(self) -> int:
        return int((self.labels == FALSE_POSITIVE).sum())


def match_detections(
    boxes: np.ndarray,
    scores: np.ndarray,
    gt_boxes: np.ndarray,
    gt_ignore: np.ndarray | None = None,
    iou_threshold: float = 0.5,
    min_size: float = 0.0,
) -> ImageMatch:
    """Judge the detections of one image against its annotated faces (see the module docstring).

    Args:
        boxes: ``(D, 4)`` detected boxes, ``x1, y1, x2, y2``.
        scores: ``(D,)`` their scores; higher ones are matched first.
        gt_boxes: ``(N, 4)`` annotated faces.
        gt_ignore: ``(N,)`` bool flags of faces to ignore, or ``None``.
        iou_threshold: smallest IoU that counts as a match.
        min_size: faces lower than this many pixels are ignored too (0: none).
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    scores = np.asarray(scores, np.float64).reshape(-1)
    if len(scores) != len(boxes):
        raise ValueError(f"{len(scores)} scores for {len(boxes)} detected boxes")
    ignore = effective_ignore(gt_boxes, gt_ignore, min_size)
    labels = np.full(len(boxes), FALSE_POSITIVE, np.int8)
    matched = np.full(len(boxes), -1, np.int64)
    if len(boxes) == 0 or len(ignore) == 0:
        return ImageMatch(labels, matched, ignore)
    iou = box_iou(boxes, gt_boxes)
    taken = np.zeros(len(ignore), bool)
    for d in np.argsort(-scores, kind="stable"):
        g = int(np.argmax(iou[d]))
        if iou[d, g] < iou_threshold:
            continue
        matched[d] = g
        if ignore[g]:
            labels[d] = DROPPED
        elif not taken[g]:
            labels[d] = TRUE_POSITIVE
            taken[g] = True
    return ImageMatch(labels, matched, ignore)
