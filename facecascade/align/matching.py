"""Which detection belongs to which annotated face: the link between a detector and landmark data.

A face is *found* when some detection in its image overlaps the face's box (given, or derived from
its points) with IoU >= `MATCH_IOU`; the best-overlapping detection is its match. The end-to-end
protocol aligns from the matched detection's box and counts unfound faces as failures.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import cast

import numpy as np
import torch
from tqdm import tqdm

from ..data.landmarks import LandmarkFace
from ..io import load_image
from ..ops.boxes import box_iou
from ..structures import Faces

MATCH_IOU = 0.4


@dataclass
class Matches:
    """Per annotated face: ``boxes (N, 4)`` of the matched detection (NaN if none), ``found (N,)``,
    the detector's own ``landmarks (N, 5, 2)`` (NaN if none) and ``readable (N,)`` (False when the
    image could not be read; such faces are also not found)."""

    boxes: np.ndarray
    found: np.ndarray
    landmarks: np.ndarray
    readable: np.ndarray


def match_faces(faces: list[LandmarkFace], detections: Faces) -> tuple[np.ndarray, np.ndarray]:
    """For faces of one image: ``(index of the matched detection or -1 (N,), IoU (N,))``."""
    truth = np.stack([f.box for f in faces]).astype(np.float32)
    if len(detections) == 0:
        return np.full(len(faces), -1), np.zeros(len(faces))
    iou = box_iou(torch.from_numpy(truth), torch.from_numpy(detections.boxes)).numpy()
    best, overlap = iou.argmax(1), iou.max(1)
    return np.where(overlap >= MATCH_IOU, best, -1), overlap


def matched_detections(faces: list[LandmarkFace], detections: Faces) -> tuple[np.ndarray, np.ndarray]:
    """For the faces of one image: the matched detections' ``boxes (N, 4)`` and 5 ``landmarks
    (N, 5, 2)``, NaN for faces without a match (and landmarks NaN when the detector gives none)."""
    matched, _ = match_faces(faces, detections)
    boxes = np.full((len(faces), 4), np.nan, np.float32)
    landmarks = np.full((len(faces), 5, 2), np.nan, np.float32)
    hit = matched >= 0
    boxes[hit] = detections.boxes[matched[hit]]
    if detections.landmarks.shape[1] == 5:
        landmarks[hit] = detections.landmarks[matched[hit]]
    return boxes, landmarks


def detect_and_match(faces: list[LandmarkFace], detector, quiet: bool = True) -> tuple[Matches, list[str]]:
    """Run ``detector`` (anything with ``detect_arrays``) once per image; ``(Matches, errors)``,
    errors as ``"path: reason"`` for unreadable images."""
    n = len(faces)
    boxes = np.full((n, 4), np.nan, np.float32)
    landmarks = np.full((n, 5, 2), np.nan, np.float32)
    readable = np.ones(n, bool)
    by_image: dict = {}
    for i, face in enumerate(faces):
        by_image.setdefault(face.image, []).append(i)
    errors = []
    for image, index in tqdm(by_image.items(), unit="img", desc="detect", disable=quiet, file=sys.stderr):
        try:
            array = load_image(image)
        except (ValueError, FileNotFoundError, OSError) as exc:
            errors.append(f"{image}: {exc}")
            readable[index] = False
            continue
        boxes[index], landmarks[index] = matched_detections(
            [faces[i] for i in index], detector.detect_arrays([array])[0]
        )
    found = cast(np.ndarray, ~np.isnan(boxes).any(1))  # (n,) bool; numpy's stubs allow a scalar
    return Matches(boxes, found, landmarks, readable), errors
