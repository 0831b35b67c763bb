"""Parity of two detectors on the same weights (the Foundation issue's measure): the share of the
reference's faces matched at IoU >= 0.9, the faces the reference does not have, and the mean
landmark difference of the matched faces. Used by `tests/test_parity.py` (against facenet-pytorch)
and `benchmarks/parity_precision.py`."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torchvision.ops import box_iou

from ..structures import Faces

MATCH_IOU = 0.9


def facenet_faces(mtcnn, image) -> tuple[np.ndarray, np.ndarray]:
    """``(boxes (N, 4), landmarks (N, 5, 2))`` float32 of a facenet-pytorch ``MTCNN`` on ``image``."""
    boxes, _, points = mtcnn.detect(image, landmarks=True)
    if boxes is None:
        return np.zeros((0, 4), np.float32), np.zeros((0, 5, 2), np.float32)
    return np.asarray(boxes, np.float32), np.asarray(points, np.float32)


@dataclass
class Parity:
    """Counts over the images `add`ed so far."""

    reference_faces: int = 0
    matched: int = 0
    extra: int = 0
    landmark_errors: list[float] = field(default_factory=list)

    def add(self, ref_boxes: np.ndarray, ref_points: np.ndarray, faces: Faces) -> None:
        """One image: the reference's boxes and landmarks, and our `Faces`."""
        self.reference_faces += len(ref_boxes)
        self.extra += max(0, len(faces) - len(ref_boxes))
        if len(ref_boxes) == 0 or len(faces) == 0:
            return
        iou = box_iou(torch.from_numpy(ref_boxes), torch.from_numpy(faces.boxes)).numpy()
        best, ok = iou.argmax(1), iou.max(1) >= MATCH_IOU
        self.matched += int(ok.sum())
        diff = np.linalg.norm(ref_points[ok] - faces.landmarks[best[ok]], axis=2).mean(1)
        self.landmark_errors.extend(diff.tolist())

    @property
    def rate(self) -> float:
        return self.matched / max(1, self.reference_faces)

    @property
    def landmark_difference(self) -> float:
        """Mean landmark difference of the matched faces in pixels (NaN when none matched)."""
        return float(np.mean(self.landmark_errors)) if self.landmark_errors else float("nan")
