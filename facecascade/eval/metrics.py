"""Precision, recall, average precision and FDDB-style discrete ROC over a whole dataset.

Every image is matched with `match_detections` (VOC style); the judged detections of all images
are then ranked together by descending score (stable: ties keep image order) and accumulated.

* AP is PASCAL VOC 2010+'s all-point interpolated average precision: precision made monotone
  from the right (the best precision at this or any higher recall), integrated over recall as
  a step function at the recall change points.
* Recall is the final recall: true positives over non-ignored faces, all detections counted.
* The discrete ROC (FDDB's "discontinuous score") counts true and false positives at every
  distinct score threshold. Unlike FDDB's tool, faces and detections are matched greedily by
  score rather than by a maximum bipartite matching, which can only differ for crowded,
  overlapping faces.

A dataset without any counted face has undefined AP and recall: they are NaN (``None`` in JSON).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Union

import numpy as np

from ..data.records import FaceRecord
from .matching import DROPPED, TRUE_POSITIVE, effective_ignore, match_detections

# (boxes, scores) or anything with .boxes, .scores; Union: `X | Any` fails at run time on Python 3.10
Prediction = Union[tuple[np.ndarray, np.ndarray], Any]  # noqa: UP007


def precision_recall(tp: np.ndarray, num_gt: int) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative ``(precision, recall)`` after each detection, for ``tp`` flags in ranked order.

    Recall is NaN throughout when ``num_gt`` is 0.
    """
    tp = np.asarray(tp, bool).reshape(-1)
    hits = np.cumsum(tp, dtype=np.float64)
    precision = hits / np.arange(1, len(tp) + 1, dtype=np.float64)
    recall = hits / num_gt if num_gt > 0 else np.full(len(tp), np.nan)
    return precision, recall


def average_precision(precision: np.ndarray, recall: np.ndarray) -> float:
    """VOC 2010+ all-point interpolated AP of a ranked list's cumulative precision and recall.

    The curve is padded with recall 0 and 1 (precision 0 past the last detection), precision is
    replaced by its maximum at any higher recall, and the area under that step function is summed
    where recall changes. No detections give 0.
    """
    precision = np.asarray(precision, np.float64).reshape(-1)
    recall = np.asarray(recall, np.float64).reshape(-1)
    if len(precision) == 0:
        return 0.0
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    steps = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[steps + 1] - mrec[steps]) * mpre[steps + 1]))


def tp_rate_at_fp(false_positives: np.ndarray, tp_rate: np.ndarray, max_fp: float) -> float:
    """Best true-positive rate of a discrete ROC with at most ``max_fp`` false positives (0 if none)."""
    keep = np.asarray(false_positives) <= max_fp
    rates = np.asarray(tp_rate, np.float64)[keep]
    return float(rates.max()) if len(rates) else 0.0


def _subsample(candidates: np.ndarray, max_points: int) -> np.ndarray:
    """At most ``max_points`` indices of ``candidates`` (sorted), evenly spread, the last one kept."""
    if len(candidates) <= max_points:
        return candidates
    picks = np.unique(np.round(np.linspace(0, len(candidates) - 1, max_points)).astype(np.int64))
    return candidates[picks]


def _json_float(value: float) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


@dataclass(frozen=True, eq=False)
class ThresholdResult:
    """Precision and recall of a dataset at one IoU threshold.

    Attributes:
        iou_threshold: the IoU a detection needs with a face to match it.
        scores: ``(M,)`` scores of the counted detections (all but the dropped ones), descending.
        tp: ``(M,)`` bool, which of them are true positives.
        num_gt: faces that count (not ignored) in the evaluated images.
        num_dropped: detections that matched an ignored face and were left out.
    """

    iou_threshold: float
    scores: np.ndarray
    tp: np.ndarray
    num_gt: int
    num_dropped: int

    @property
    def precision(self) -> np.ndarray:
        """``(M,)`` precision after each ranked detection."""
        return precision_recall(self.tp, self.num_gt)[0]

    @property
    def recall_curve(self) -> np.ndarray:
        """``(M,)`` recall after each ranked detection (NaN without faces)."""
        return precision_recall(self.tp, self.num_gt)[1]

    @property
    def ap(self) -> float:
        """All-point interpolated average precision; NaN when there are no faces."""
        if self.num_gt == 0:
            return math.nan
        return average_precision(*precision_recall(self.tp, self.num_gt))

    @property
    def recall(self) -> float:
        """Recall with every detection counted; NaN when there are no faces."""
        return self.num_tp / self.num_gt if self.num_gt else math.nan

    @property
    def num_tp(self) -> int:
        return int(self.tp.sum())

    @property
    def num_fp(self) -> int:
        return int(len(self.tp) - self.tp.sum())

    def roc(self, normalize: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Discrete ROC: ``(false positives, true-positive rate)`` at each distinct score threshold.

        Point ``k`` counts the detections scoring at least the ``k``-th highest distinct score.
        ``normalize=False`` gives true-positive counts instead of rates (NaN rates without faces).
        """
        tp_count = np.cumsum(self.tp, dtype=np.int64)
        fp_count = np.arange(1, len(self.tp) + 1, dtype=np.int64) - tp_count
        ends = np.flatnonzero(np.append(self.scores[1:] != self.scores[:-1], len(self.tp) > 0))
        fp, tp = fp_count[ends], tp_count[ends]
        if not normalize:
            return fp, tp
        return fp, (tp / self.num_gt if self.num_gt else np.full(len(tp), np.nan))

    def to_dict(self, max_points: int = 200) -> dict[str, Any]:
        """JSON-ready summary with the PR curve at ≤ ``max_points`` points.

        The curve keeps the recall change points (true positives, where precision peaks) and the
        last detection, evenly thinned when there are more.
        """
        precision, recall = precision_recall(self.tp, self.num_gt)
        candidates = np.flatnonzero(self.tp)
        if len(self.tp) and (not len(candidates) or candidates[-1] != len(self.tp) - 1):
            candidates = np.append(candidates, len(self.tp) - 1)
        keep = _subsample(candidates, max_points)
        return {
            "iou_threshold": float(self.iou_threshold),
            "ap": _json_float(self.ap),
            "recall": _json_float(self.recall),
            "num_tp": self.num_tp,
            "num_fp": self.num_fp,
            "num_dropped": int(self.num_dropped),
            "curve": {
                "precision": [round(float(v), 6) for v in precision[keep]],
                "recall": [_json_float(round(float(v), 6)) for v in recall[keep]],
                "score": [round(float(v), 6) for v in self.scores[keep]],
            },
        }


@dataclass(frozen=True, eq=False)
class DetectionReport:
    """Evaluation of one detector on one dataset, at one or more IoU thresholds.

    Attributes:
        num_images: images evaluated.
        num_detections: detections given, dropped ones included.
        num_gt: faces that count (not ignored).
        num_ignored: faces ignored (flagged in the annotations, or lower than ``min_size``).
        min_size: the height in pixels below which faces were ignored.
        results: `ThresholdResult` per IoU threshold, in the order asked for.
    """

    num_images: int
    num_detections: int
    num_gt: int
    num_ignored: int
    min_size: float
    results: dict[float, ThresholdResult]

    def __getitem__(self, iou_threshold: float) -> ThresholdResult:
        return self.results[float(iou_threshold)]

    @property
    def iou_thresholds(self) -> list[float]:
        return list(self.results)

    def ap(self, iou_threshold: float = 0.5) -> float:
        return self[iou_threshold].ap

    def recall(self, iou_threshold: float = 0.5) -> float:
        return self[iou_threshold].recall

    def to_dict(self, max_points: int = 200) -> dict[str, Any]:
        """JSON-ready: counts, and per IoU threshold (keyed like ``"0.5"``) AP, recall and PR curve."""
        return {
            "num_images": self.num_images,
            "num_detections": self.num_detections,
            "num_gt": self.num_gt,
            "num_ignored": self.num_ignored,
            "min_size": float(self.min_size),
            "iou": {f"{t:g}": r.to_dict(max_points) for t, r in self.results.items()},
        }


def _boxes_scores(prediction: Prediction) -> tuple[np.ndarray, np.ndarray]:
    if hasattr(prediction, "boxes") and hasattr(prediction, "scores"):
        found: Any = prediction  # `Faces`, or anything else with both
        boxes, scores = found.boxes, found.scores
    else:
        boxes, scores = prediction
    return np.asarray(boxes, np.float64).reshape(-1, 4), np.asarray(scores, np.float64).reshape(-1)


def evaluate_detections(
    predictions: Sequence[Prediction],
    records: Sequence[FaceRecord],
    iou_thresholds: Sequence[float] = (0.5, 0.3),
    min_size: float = 0.0,
) -> DetectionReport:
    """Match every image's detections to its faces and accumulate PR curves over the dataset.

    Args:
        predictions: per image, ``(boxes (D, 4), scores (D,))`` or a `Faces`, in the order of ``records``.
        records: the annotated faces of the same images (``boxes`` and ``ignore`` are used).
        iou_thresholds: IoU thresholds to evaluate at, each from the same detections.
        min_size: faces lower than this many pixels count as ignored.
    """
    if len(predictions) != len(records):
        raise ValueError(f"{len(predictions)} predictions for {len(records)} records")
    thresholds = [float(t) for t in iou_thresholds]
    scores: dict[float, list[np.ndarray]] = {t: [] for t in thresholds}
    flags: dict[float, list[np.ndarray]] = {t: [] for t in thresholds}
    dropped = dict.fromkeys(thresholds, 0)
    num_detections = num_gt = num_ignored = 0
    for prediction, record in zip(predictions, records):
        boxes, det_scores = _boxes_scores(prediction)
        num_detections += len(boxes)
        ignore = effective_ignore(record.boxes, record.ignore, min_size)
        num_gt += int((~ignore).sum())
        num_ignored += int(ignore.sum())
        for t in thresholds:
            labels = match_detections(boxes, det_scores, record.boxes, ignore, t).labels
            counted = labels != DROPPED
            dropped[t] += int((~counted).sum())
            scores[t].append(det_scores[counted])
            flags[t].append(labels[counted] == TRUE_POSITIVE)
    results = {}
    for t in thresholds:
        all_scores = np.concatenate(scores[t]) if scores[t] else np.zeros(0)
        all_tp = np.concatenate(flags[t]) if flags[t] else np.zeros(0, bool)
        order = np.argsort(-all_scores, kind="stable")
        results[t] = ThresholdResult(t, all_scores[order], all_tp[order], num_gt, dropped[t])
    return DetectionReport(len(records), num_detections, num_gt, num_ignored, float(min_size), results)


def discrete_roc(
    predictions: Sequence[Prediction],
    records: Sequence[FaceRecord],
    iou_threshold: float = 0.5,
    min_size: float = 0.0,
    normalize: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """FDDB-style discrete ROC: ``(false positives, true-positive rate)`` at every distinct score.

    ``normalize=False`` gives true-positive counts instead of rates. See `ThresholdResult.roc`.
    """
    report = evaluate_detections(predictions, records, (iou_threshold,), min_size)
    return report[iou_threshold].roc(normalize)
