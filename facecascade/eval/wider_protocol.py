"""The WIDER FACE evaluation procedure (the official WiderFace-Evaluation eval_tools), reimplemented.

For one detector over a set of images and one *setting* (which faces count; `wider_settings`):

1. Scores are normalised over the whole dataset, ``(s - min) / (max - min)`` across every
   detection of the detector (all scores become 1 when they are all equal).
2. Per image, detections are taken by descending normalised score (stable for ties). Each one
   looks up the face of largest IoU; at IoU >= the threshold, if that face does not count in the
   setting, the detection is ignored (no proposal) and the face is flagged -1; else, if the face
   is not yet recalled, it is recalled (a detection on an already recalled face is a proposal that
   recalls nothing). ``pred_recall[h]`` is the number of recalled faces after detections ``0..h``.
3. PR info at 1,000 thresholds ``1 - (t + 1) / 1000``, ``t = 0..999``: with ``r`` the last
   detection scoring at least the threshold, ``proposals`` = non-ignored detections among
   ``0..r`` and ``recalled = pred_recall[r]`` (both 0 when no detection reaches it), summed over
   the images. Precision = recalled / proposals (0 where there are no proposals), recall =
   recalled / faces that count.
4. AP is VOC's all-point AP of that curve (`metrics.average_precision`: sentinels recall 0 and 1,
   precision 0 and 0, precision envelope from the end, summed where recall changes).

As in the official tool, an image without any annotated face is skipped: its detections are no
proposals at all (a face-free image costs no precision). Its faces-that-count add to the recall
denominator whether or not the image has detections.

IoU: the official ``bbox_overlaps`` uses inclusive "+1" pixel areas; here IoU is
`matching.box_iou` (`facecascade.ops.box_iou`, continuous coordinates, no "+1"), the one the VOC
AP of `metrics` uses, so that both protocols judge a box the same way. On a dataset where the two
coincide (distinct scores at least 2/1000 apart after normalisation, images with faces only), the
WIDER AP equals `metrics.evaluate_detections`' VOC AP.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..data.records import FaceRecord
from .matching import box_iou
from .metrics import Prediction, _boxes_scores, _json_float, _subsample, average_precision
from .wider_settings import WiderSettings

THRESH_NUM = 1000
IOU_THRESHOLDS = (0.5, 0.75)


def thresholds(thresh_num: int = THRESH_NUM) -> np.ndarray:
    """``(T,)`` score thresholds ``1 - (t + 1) / T`` for ``t = 0..T-1``, from high to low."""
    return 1.0 - (np.arange(thresh_num, dtype=np.float64) + 1.0) / thresh_num


def normalise_scores(scores: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Per image, ``(s - min) / (max - min)`` with min and max over all images (1 where max == min)."""
    arrays = [np.asarray(s, np.float64).reshape(-1) for s in scores]
    every = np.concatenate(arrays) if arrays else np.zeros(0)
    if len(every) == 0:
        return arrays
    low, high = float(every.min()), float(every.max())
    if high == low:
        return [np.ones_like(s) for s in arrays]
    return [(s - low) / (high - low) for s in arrays]


def image_eval(iou: np.ndarray, counted: np.ndarray, iou_threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """``(pred_recall (D,) int64, proposal (D,) bool)`` of one image's detections, ranked by score.

    Args:
        iou: ``(D, N)`` IoU of the ranked detections with the image's faces.
        counted: ``(N,)`` bool, the faces that count in the setting.
        iou_threshold: the IoU a detection needs with its best face.
    """
    num_det = iou.shape[0]
    pred_recall = np.zeros(num_det, np.int64)
    proposal = np.ones(num_det, bool)
    flags = np.zeros(len(counted), np.int8)  # 1: recalled, -1: hit but does not count
    recalled = 0
    for h in range(num_det if iou.shape[1] else 0):
        g = int(np.argmax(iou[h]))
        if iou[h, g] >= iou_threshold:
            if not counted[g]:
                flags[g] = -1
                proposal[h] = False
            elif flags[g] == 0:
                flags[g] = 1
                recalled += 1
        pred_recall[h] = recalled
    return pred_recall, proposal


def image_pr_info(
    scores: np.ndarray, proposal: np.ndarray, pred_recall: np.ndarray, cuts: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(proposals (T,), recalled (T,))`` int64 of one image at each threshold of ``cuts``.

    ``scores`` are the normalised scores in ranked (descending) order.
    """
    reached = np.searchsorted(-np.asarray(scores, np.float64), -cuts, side="right")  # count of scores >= cut
    last = np.maximum(reached - 1, 0)
    some = reached > 0
    proposals = np.cumsum(proposal, dtype=np.int64)
    if len(proposals) == 0:
        return np.zeros(len(cuts), np.int64), np.zeros(len(cuts), np.int64)
    return np.where(some, proposals[last], 0), np.where(some, pred_recall[last], 0)


@dataclass(frozen=True, eq=False)
class WiderCurve:
    """Summed PR info of one setting at one IoU threshold.

    Attributes:
        iou_threshold: the IoU a detection needs with its best face.
        num_faces: faces that count in the setting (the recall denominator).
        thresholds: ``(T,)`` normalised-score thresholds, from high to low.
        proposals: ``(T,)`` non-ignored detections at or above each threshold.
        recalled: ``(T,)`` faces recalled by them.
    """

    iou_threshold: float
    num_faces: int
    thresholds: np.ndarray
    proposals: np.ndarray
    recalled: np.ndarray

    @property
    def precision(self) -> np.ndarray:
        """``(T,)`` recalled / proposals, 0 where there are no proposals."""
        return np.divide(
            self.recalled, self.proposals, out=np.zeros(len(self.proposals)), where=self.proposals > 0
        ).astype(np.float64)

    @property
    def recall_curve(self) -> np.ndarray:
        """``(T,)`` recalled / faces that count (NaN without faces)."""
        if self.num_faces == 0:
            return np.full(len(self.recalled), np.nan)
        return self.recalled / self.num_faces

    @property
    def ap(self) -> float:
        """VOC all-point AP of the curve; NaN when no face counts."""
        return math.nan if self.num_faces == 0 else average_precision(self.precision, self.recall_curve)

    @property
    def recall(self) -> float:
        """Recall at the lowest threshold (every detection); NaN when no face counts."""
        return float(self.recall_curve[-1]) if len(self.recalled) else math.nan

    def to_dict(self, max_points: int = 100) -> dict[str, Any]:
        """JSON-ready: AP, final recall and the curve at ≤ ``max_points`` thresholds (the last kept)."""
        keep = _subsample(np.arange(len(self.thresholds)), max_points)
        return {
            "iou_threshold": float(self.iou_threshold),
            "ap": _json_float(self.ap),
            "recall": _json_float(self.recall),
            "num_proposals": int(self.proposals[-1]) if len(self.proposals) else 0,
            "curve": {
                "threshold": [round(float(v), 6) for v in self.thresholds[keep]],
                "precision": [round(float(v), 6) for v in self.precision[keep]],
                "recall": [_json_float(round(float(v), 6)) for v in self.recall_curve[keep]],
            },
        }


@dataclass(frozen=True, eq=False)
class WiderResult:
    """One setting's curves: ``curves[iou_threshold]``, and its ``key``, ``label`` and face count."""

    key: str
    label: str
    num_faces: int
    curves: dict[float, WiderCurve]

    def ap(self, iou_threshold: float = 0.5) -> float:
        return self.curves[float(iou_threshold)].ap

    def recall(self, iou_threshold: float = 0.5) -> float:
        return self.curves[float(iou_threshold)].recall

    def to_dict(self, max_points: int = 100) -> dict[str, Any]:
        return {
            "label": self.label,
            "num_faces": self.num_faces,
            "iou": {f"{t:g}": c.to_dict(max_points) for t, c in self.curves.items()},
        }


@dataclass(frozen=True, eq=False)
class WiderReport:
    """The WIDER protocol for one detector: images evaluated, images skipped (no annotated face),
    the kind of settings, and a `WiderResult` per setting key, in the settings' order."""

    num_images: int
    num_skipped: int
    settings_kind: str
    results: dict[str, WiderResult]

    def __getitem__(self, key: str) -> WiderResult:
        return self.results[key]

    def to_dict(self, max_points: int = 100) -> dict[str, Any]:
        """JSON-ready: counts, the settings' kind, per setting AP, final recall, faces and PR curve."""
        return {
            "settings_kind": self.settings_kind,
            "num_images": self.num_images,
            "num_skipped_images": self.num_skipped,
            "thresholds": THRESH_NUM,
            "settings": {k: r.to_dict(max_points) for k, r in self.results.items()},
        }


def _image_sums(
    scores: np.ndarray, iou: np.ndarray, counted: np.ndarray, iou_thresholds: Sequence[float], cuts: np.ndarray
) -> np.ndarray:
    """``(S, I, 2, T)`` proposals and recalled faces of one image per setting (rows of ``counted``),
    IoU threshold and score threshold; detections ranked, ``iou`` of shape ``(D, N)``."""
    out = np.zeros((len(counted), len(iou_thresholds), 2, len(cuts)), np.int64)
    for s, mask in enumerate(counted):
        for i, t in enumerate(iou_thresholds):
            pred_recall, proposal = image_eval(iou, mask, t)
            out[s, i] = image_pr_info(scores, proposal, pred_recall, cuts)
    return out


def evaluate_wider(
    predictions: Sequence[Prediction],
    records: Sequence[FaceRecord],
    settings: WiderSettings,
    iou_thresholds: Sequence[float] = IOU_THRESHOLDS,
    thresh_num: int = THRESH_NUM,
) -> WiderReport:
    """The WIDER FACE protocol (module docstring) for every setting and IoU threshold, from the
    same detections: ``predictions`` per image (``(boxes, scores)`` or a `Faces`) in the order of
    ``records``."""
    if len(predictions) != len(records):
        raise ValueError(f"{len(predictions)} predictions for {len(records)} records")
    pairs = [_boxes_scores(p) for p in predictions]
    normalised = normalise_scores([scores for _, scores in pairs])
    cuts, ious = thresholds(thresh_num), [float(t) for t in iou_thresholds]
    sums = np.zeros((len(settings.keys), len(ious), 2, thresh_num), np.int64)
    faces = np.zeros(len(settings.keys), np.int64)
    skipped = 0
    for (boxes, _), scores, record in zip(pairs, normalised, records):
        counted = settings.counted(record)
        faces += counted.sum(axis=1)
        if len(record) == 0:  # as the official tool: an image without faces is left out
            skipped += 1
            continue
        order = np.argsort(-scores, kind="stable")
        sums += _image_sums(scores[order], box_iou(boxes[order], record.boxes), counted, ious, cuts)
    results = {}
    for s, (key, label) in enumerate(zip(settings.keys, settings.labels)):
        curves = {t: WiderCurve(t, int(faces[s]), cuts, *sums[s, i]) for i, t in enumerate(ious)}
        results[key] = WiderResult(key, label, int(faces[s]), curves)
    return WiderReport(len(records), skipped, settings.kind, results)
