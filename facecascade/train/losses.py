"""MTCNN's multi-task losses (Zhang et al. 2016, §II-C), as pure functions.

Every training sample has a type (`SampleKind`): negatives and positives train face
classification, positives and part faces train box regression, landmark faces train landmark
regression (the paper's sample type indicator ``beta``). Face classification uses online hard
sample mining: in each mini-batch only the top 70 % of the classification losses contribute.
"""

from __future__ import annotations

import enum
import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor


class SampleKind(enum.IntEnum):
    NEGATIVE = 0  # IoU < 0.3 with every face
    POSITIVE = 1  # IoU > 0.65 with a face
    PART = 2  # IoU 0.4 .. 0.65
    LANDMARK = 3  # a face with 5 annotated points


class TaskWeights(NamedTuple):
    """``alpha_det, alpha_box, alpha_landmark``: 1/0.5/0.5 for P-Net and R-Net, 1/0.5/1 for O-Net."""

    det: float = 1.0
    box: float = 0.5
    landmark: float = 0.5


def hard_sample_classification_loss(logits: Tensor, labels: Tensor, keep: float = 0.7) -> Tensor:
    """Mean cross-entropy of the ``ceil(keep * N)`` largest per-sample losses (``keep=1``: all).

    ``logits (N, 2)``, ``labels (N,)`` in {0, 1}. Zero (with a gradient path) when ``N == 0``.
    """
    if not 0.0 < keep <= 1.0:
        raise ValueError(f"keep must be in (0, 1], got {keep}")
    if len(labels) == 0:
        return logits.sum() * 0.0
    losses = F.cross_entropy(logits, labels.long(), reduction="none")
    k = max(1, math.ceil(keep * len(losses)))
    if k < len(losses):
        losses = losses.topk(k, sorted=False).values
    return losses.mean()


def euclidean_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Mean over samples of the squared L2 distance, ``1/N sum ||pred - target||^2`` (0 for N=0)."""
    if len(pred) == 0:
        return pred.sum() * 0.0
    return (pred - target).pow(2).flatten(1).sum(1).mean()


class LossParts(NamedTuple):
    total: Tensor
    det: Tensor
    box: Tensor
    landmark: Tensor


def mtcnn_loss(
    logits: Tensor,
    offsets: Tensor,
    landmarks: Tensor | None,
    kinds: Tensor,
    box_targets: Tensor,
    landmark_targets: Tensor,
    weights: TaskWeights = TaskWeights(),
    keep: float = 0.7,
) -> LossParts:
    """The weighted sum over tasks, each task seeing only its sample kinds.

    Args:
        logits: ``(N, 2)``; offsets: ``(N, 4)``; landmarks: ``(N, 5, 2)`` or ``None`` (no head).
        kinds: ``(N,)`` `SampleKind` values.
        box_targets: ``(N, 4)`` (read for positives and part faces; rows with NaN train no box:
            faces of a source whose boxes do not follow the shipped convention,
            `facecascade.train.generate.SamplingConfig.box_sources`).
        landmark_targets: ``(N, 5, 2)`` (read for landmark faces).
        weights: task importances; a zero weight switches a task off.
        keep: hard-sample fraction for classification (1.0 disables mining).
    """
    cls_mask = (kinds == SampleKind.NEGATIVE) | (kinds == SampleKind.POSITIVE)
    box_mask = (kinds == SampleKind.POSITIVE) | (kinds == SampleKind.PART)
    box_mask &= torch.isfinite(box_targets).all(1)  # NaN: a source whose boxes train no regression
    lm_mask = kinds == SampleKind.LANDMARK
    det = hard_sample_classification_loss(logits[cls_mask], (kinds[cls_mask] == SampleKind.POSITIVE), keep)
    box = euclidean_loss(offsets[box_mask], box_targets[box_mask])
    if landmarks is None or weights.landmark == 0:
        landmark = offsets.sum() * 0.0
    else:
        landmark = euclidean_loss(landmarks[lm_mask], landmark_targets[lm_mask])
    total = weights.det * det + weights.box * box + weights.landmark * landmark
    return LossParts(total, det.detach(), box.detach(), landmark.detach())
