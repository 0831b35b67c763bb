"""Faces the annotators left out, found by an earlier cascade and ignored when sampling.

Caltech WebFaces is not exhaustive (its README: "some small/profile faces are unlabeled"): in a
group photo often only a few of the faces carry points (``pic00123.jpg``: 3 of 12). Sampling
treats everything else as background, so random and near-face windows over the other faces
become *negatives*, and the cascade learns to reject small faces next to labelled ones, exactly
the faces it later misses on unseen photos (model card, "Where Caltech was lost").

The fix is the usual one for missing annotations: a cascade trained earlier (for the shipped
``mtcnn`` weights, the original weights with ``min_score=0.95``: our own earlier weights miss the
same small faces they would have to flag) looks at the training images at loose thresholds, and
each confident detection that overlaps no annotated face (IoU < 0.3) joins the
record as an *ignored* face. Windows overlapping an ignored face are dropped instead of being
called negatives (`facecascade.train.samples.label_windows`); the flagged boxes never become
positives, so the cascade learns faces only from the human annotations.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..data.records import FaceRecord
from ..io import load_image
from ..models.weights import weights_fingerprint
from ..ops.boxes import box_iou
from ..outputs import write_json_atomic

SEARCH_THRESHOLDS = (0.3, 0.05, 0.05)  # loose stage thresholds: find what the cascade half-believes
MIN_SCORE = 0.5  # ... and keep the detections it scores at least this high
MAX_IOU = 0.3  # overlap with every annotated face below this: unlabelled


def unlabeled_boxes(
    record: FaceRecord, boxes: np.ndarray, scores: np.ndarray, min_score: float = MIN_SCORE, max_iou: float = MAX_IOU
) -> np.ndarray:
    """``(K, 4)`` float32 detections scoring ``>= min_score`` whose IoU with every annotated box
    (ignored ones included) is below ``max_iou``."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    confident = boxes[np.asarray(scores) >= min_score]
    if len(confident) == 0 or len(record) == 0:
        return confident
    overlap = box_iou(torch.from_numpy(confident), torch.from_numpy(record.boxes)).max(1).values.numpy()
    return confident[overlap < max_iou]


def with_ignored(record: FaceRecord, extra: np.ndarray) -> FaceRecord:
    """``record`` with ``extra (K, 4)`` boxes appended as ignored faces (no points, no attributes)."""
    extra = np.asarray(extra, np.float32).reshape(-1, 4)
    if len(extra) == 0:
        return record
    if record.attributes is not None or record.labels is not None:
        raise ValueError(f"{record.image}: only face-box records can take ignored boxes")
    landmarks = None
    if record.landmarks is not None:
        landmarks = np.concatenate(
            [record.landmarks, np.full((len(extra), *record.landmarks.shape[1:]), np.nan, np.float32)]
        )
    return replace(
        record,
        boxes=np.concatenate([record.boxes, extra]),
        landmarks=landmarks,
        ignore=np.concatenate([record.ignore, np.ones(len(extra), bool)]),
    )


def find_unlabeled(
    records: Sequence[FaceRecord], detector, min_score: float = MIN_SCORE, quiet: bool = False
) -> dict[str, list[list[float]]]:
    """``{image path: boxes}`` of the unlabelled faces ``detector`` (a `FaceDetector`) finds, for
    the images that have any; unreadable images are skipped (the sampler reports them)."""
    found: dict[str, list[list[float]]] = {}
    for record in tqdm(records, desc="unlabelled faces", unit="img", disable=quiet):
        try:
            faces = detector.detect_arrays([load_image(record.image)])[0]
        except (ValueError, FileNotFoundError):
            continue
        extra = unlabeled_boxes(record, faces.boxes, faces.scores, min_score)
        if len(extra):
            found[str(record.image)] = np.round(extra, 2).tolist()
    return found


def cached_unlabeled(
    records: Sequence[FaceRecord], weights: str, cache: Path, min_score: float = MIN_SCORE, quiet: bool = False
) -> dict[str, list[list[float]]]:
    """`find_unlabeled` with ``weights`` at `SEARCH_THRESHOLDS`, read from ``cache`` (JSON) when it
    was made by the same weights (by content: `weights_fingerprint`) for these images, else
    computed and written there."""
    from ..detect import FaceDetector

    key = {
        "sha256": weights_fingerprint(weights),
        "thresholds": list(SEARCH_THRESHOLDS),
        "min_score": min_score,
        "max_iou": MAX_IOU,
        "images": len(records),
    }
    if cache.is_file():
        saved = json.loads(cache.read_text())
        if saved.get("key") == key:
            return saved["boxes"]
    detector = FaceDetector(weights=weights, thresholds=SEARCH_THRESHOLDS, precision="fp32")
    boxes = find_unlabeled(records, detector, min_score, quiet=quiet)
    cache.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(cache, {"key": key, "weights": str(weights), "boxes": boxes})
    return boxes


def mark_unlabeled(records: Sequence[FaceRecord], boxes: dict[str, list[list[float]]]) -> list[FaceRecord]:
    """``records`` with the boxes found for their images added as ignored faces."""
    return [with_ignored(r, np.asarray(boxes.get(str(r.image), []), np.float32)) for r in records]
