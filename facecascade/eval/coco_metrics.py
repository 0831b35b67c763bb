"""COCO-style box AP with pycocotools, for any number of classes: AP averaged over IoU 0.5:0.95
and AP at single IoU thresholds (the Cascade R-CNN paper reports AP50 .. AP90).

Ground truth comes from `FaceRecord`s (ignored boxes become ``iscrowd`` regions: detections on
them are neither true nor false positives), predictions are one ``{"boxes" (N, 4) x1 y1 x2 y2
pixels, "scores" (N,), "labels" (N,) optional, default class 1}`` per record.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..data.records import FaceRecord

REPORTED_IOUS = (0.5, 0.6, 0.7, 0.75, 0.8, 0.9)


def _xywh(boxes: np.ndarray) -> np.ndarray:
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    return np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], 1)


def coco_dicts(records: Sequence[FaceRecord], predictions: Sequence[dict]) -> tuple[dict, list[dict]]:
    """The ground truth as a COCO dataset dict and the predictions as COCO result entries."""
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    classes = {1}
    for image_id, (record, found) in enumerate(zip(records, predictions), 1):
        images.append({"id": image_id, "file_name": record.image.name})
        for box, ignore, label in zip(_xywh(record.boxes), record.ignore, record.classes):
            classes.add(int(label))
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": int(label),
                    "bbox": box.tolist(),
                    "area": float(box[2] * box[3]),
                    "iscrowd": int(ignore),
                }
            )
        labels = np.asarray(found.get("labels", np.ones(len(found["scores"]))), np.int64)
        for box, score, label in zip(_xywh(found["boxes"]), np.asarray(found["scores"]), labels):
            classes.add(int(label))
            results.append(
                {"image_id": image_id, "category_id": int(label), "bbox": box.tolist(), "score": float(score)}
            )
    dataset = {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": c, "name": str(c)} for c in sorted(classes)],
    }
    return dataset, results


def coco_ap(
    records: Sequence[FaceRecord], predictions: Sequence[dict], ious: Sequence[float] = REPORTED_IOUS
) -> dict[str, float]:
    """``{"AP": AP@[.5:.95], "AP50": ..., "AP60": ...}`` (fractions; -1 when undefined, e.g. no
    ground truth) with up to 100 detections per image, all object sizes."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if len(records) != len(predictions):
        raise ValueError(f"{len(records)} records but {len(predictions)} predictions")
    dataset, results = coco_dicts(records, predictions)
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints as it goes
        gt = COCO()
        gt.dataset = dataset
        gt.createIndex()
        dt = gt.loadRes(results) if results else COCO()
        if not results:
            dt.dataset = {"images": dataset["images"], "annotations": [], "categories": dataset["categories"]}
            dt.createIndex()
        evaluator = COCOeval(gt, dt, "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
    precision = evaluator.eval["precision"][:, :, :, 0, -1]  # (IoU, recall, class), all areas, 100 dets
    thresholds = evaluator.params.iouThrs

    def mean_valid(values: np.ndarray) -> float:
        valid = values[values > -1]
        return float(valid.mean()) if valid.size else -1.0

    out = {"AP": mean_valid(precision)}
    for u in ious:
        index = int(np.argmin(np.abs(thresholds - u)))
        if abs(thresholds[index] - u) > 1e-6:
            raise ValueError(f"IoU {u} is not one of COCO's thresholds 0.5:0.05:0.95")
        out[f"AP{round(u * 100)}"] = mean_valid(precision[index])
    return out
