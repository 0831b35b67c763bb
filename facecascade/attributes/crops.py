"""The attribute crop: the same region of a face at training and at inference.

A face box is grown to the square of side ``(1 + ATTRIBUTE_MARGIN) * max(w, h)`` around its centre,
so that hair, hats, necklaces and neckties are in view, and resampled to the network's input.

Which box: CelebA has no boxes, so the training boxes are a fixed function of the 5 points
(`facecascade.data.caltech.CALTECH_BOXES`). At inference the same function of the face's points
(the detector's, or the aligner's refined ones) gives the crop the network was trained on, whatever
box convention the detector follows (`attribute_boxes`); a face without 5 points, or whose points
disagree with its box (IoU below ``LANDMARK_BOX_MIN_IOU``: points gone astray), keeps its box.
"""

from __future__ import annotations

import numpy as np

from ..data.boxfit import paired_iou
from ..data.caltech import CALTECH_BOXES
from ..ops.align import box_transforms
from ..structures import Faces

ATTRIBUTE_MARGIN = 0.6  # on CelebA's aligned crops this square is about the whole image
CROP_SOURCES = ("landmarks", "boxes")
LANDMARK_BOX_MIN_IOU = 0.5


def attribute_transforms(boxes: np.ndarray, size: int, margin: float = ATTRIBUTE_MARGIN) -> np.ndarray:
    """``(N, 2, 3)`` image-pixel -> crop-pixel maps of the attribute crops of ``boxes (N, 4)``."""
    return box_transforms(boxes, size, margin)


def checked_crop_source(crop_from: str) -> str:
    """``crop_from`` when it is one of ``CROP_SOURCES``; a `ValueError` otherwise."""
    if crop_from not in CROP_SOURCES:
        raise ValueError(f"crop_from must be one of {CROP_SOURCES}, got {crop_from!r}")
    return crop_from


def attribute_boxes(faces: Faces, crop_from: str = "landmarks") -> np.ndarray:
    """``(N, 4)`` boxes whose attribute crops to take: ``crop_from="landmarks"``: the training
    rule's box of each face's 5 points where they are finite and agree with its box (IoU >=
    ``LANDMARK_BOX_MIN_IOU``), its box elsewhere; ``"boxes"``: the faces' boxes."""
    boxes = faces.boxes
    if checked_crop_source(crop_from) == "boxes" or faces.landmarks.shape[1] != 5 or not len(faces):
        return boxes
    derived = CALTECH_BOXES.from_landmarks(faces.landmarks)
    with np.errstate(invalid="ignore"):
        agree = np.isfinite(derived).all(1) & (paired_iou(derived, boxes) >= LANDMARK_BOX_MIN_IOU)
    return np.where(agree[:, None], derived, boxes).astype(np.float32)
