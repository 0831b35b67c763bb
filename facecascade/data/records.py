"""One record type for every face dataset: an image with its face boxes and, where the dataset
has them, 5 landmarks, ignore flags and attributes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

NUM_LANDMARKS = 5  # image-left eye, image-right eye, nose, left mouth corner, right mouth corner


@dataclass(frozen=True)
class FaceRecord:
    """The faces annotated in one image.

    Attributes:
        image: path of the image file.
        boxes: ``(N, 4)`` float32 ``x1, y1, x2, y2`` in pixels of the image as stored on disk.
        landmarks: ``(N, 5, 2)`` float32 ``(x, y)`` in MTCNN order, NaN for faces without points;
            ``None`` when the dataset has no 5-point landmarks at all.
        ignore: ``(N,)`` bool; ignored faces neither count as misses nor make detections false
            positives in evaluation (VOC "difficult", WIDER "invalid", crowd regions).
        attributes: ``(N, A)`` int8 in {-1, 1} (CelebA's 40 attributes), or ``None``.
        source: the dataset's name (``"voc"``, ``"caltech"``, ...), for splits and reports.
        labels: ``(N,)`` int64 object class per box, 1-based (multi-class data: COCO categories in
            id order), or ``None``: every box is a face (class 1).
    """

    image: Path
    boxes: np.ndarray
    landmarks: np.ndarray | None = None
    ignore: np.ndarray = field(default=None)  # type: ignore[arg-type]  # None: no face ignored (__post_init__)
    attributes: np.ndarray | None = None
    source: str = ""
    labels: np.ndarray | None = None

    def __post_init__(self) -> None:
        boxes = np.asarray(self.boxes, np.float32).reshape(-1, 4)
        object.__setattr__(self, "image", Path(self.image))
        object.__setattr__(self, "boxes", boxes)
        n = len(boxes)
        ignore = np.zeros(n, bool) if self.ignore is None else np.asarray(self.ignore, bool).reshape(-1)
        if len(ignore) != n:
            raise ValueError(f"{self.image}: {len(ignore)} ignore flags for {n} boxes")
        object.__setattr__(self, "ignore", ignore)
        if self.landmarks is not None:
            points = np.asarray(self.landmarks, np.float32)
            if points.shape != (n, NUM_LANDMARKS, 2):
                raise ValueError(f"{self.image}: landmarks of shape {points.shape}, expected ({n}, 5, 2)")
            object.__setattr__(self, "landmarks", points)
        if self.attributes is not None:
            attributes = np.asarray(self.attributes, np.int8).reshape(n, -1)
            object.__setattr__(self, "attributes", attributes)
        if self.labels is not None:
            labels = np.asarray(self.labels, np.int64).reshape(-1)
            if len(labels) != n or (n and labels.min() < 1):
                raise ValueError(f"{self.image}: labels must be {n} classes >= 1, got {labels.tolist()}")
            object.__setattr__(self, "labels", labels)

    @property
    def classes(self) -> np.ndarray:
        """``(N,)`` int64 class of each box: `labels`, or 1 (face) for every box."""
        return self.labels if self.labels is not None else np.ones(len(self), np.int64)

    def __len__(self) -> int:
        return len(self.boxes)

    @property
    def has_landmarks(self) -> np.ndarray:
        """``(N,)`` bool: which faces have all 5 points."""
        if self.landmarks is None:
            return np.zeros(len(self), bool)
        return ~np.isnan(self.landmarks).any(axis=(1, 2))
