"""Face boxes from facial points, for datasets that have points but no boxes.

As the FaceCraft paper does for its landmark-only sets (§6.1), a box is a fixed function of the
points. Ours uses the eye midpoint ``e``, the mouth centre ``m`` (Caltech's mouth point, or the
mean of the two mouth corners), the eye-to-mouth distance ``d = |m - e|`` and the eye distance
``o``:

    centre = e + shift * (m - e)
    width  = w_mouth * d + w_eyes * o
    height = h_mouth * d + h_eyes * o

The five coefficients are fitted by least squares (`fit_box_transform`) against the boxes the
original MTCNN weights put on the same faces, so derived boxes follow MTCNN's box convention.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass

import numpy as np


@dataclass(frozen=True)
class BoxFromPoints:
    """Coefficients of the points-to-box transform (see the module docstring)."""

    shift: float
    w_mouth: float
    w_eyes: float
    h_mouth: float
    h_eyes: float

    def __call__(self, left_eye: np.ndarray, right_eye: np.ndarray, mouth: np.ndarray) -> np.ndarray:
        """Boxes ``(N, 4)`` x1 y1 x2 y2 for points given as ``(N, 2)`` arrays."""
        eyes, d, o = _geometry(left_eye, right_eye, mouth)
        centre = eyes + self.shift * (np.asarray(mouth, np.float64) - eyes)
        half = 0.5 * np.stack([self.w_mouth * d + self.w_eyes * o, self.h_mouth * d + self.h_eyes * o], 1)
        return np.concatenate([centre - half, centre + half], 1).astype(np.float32)

    def from_landmarks(self, landmarks: np.ndarray) -> np.ndarray:
        """Boxes ``(N, 4)`` for 5-point landmarks ``(N, 5, 2)`` (mouth centre = corners' mean)."""
        landmarks = np.asarray(landmarks, np.float64)
        return self(landmarks[:, 0], landmarks[:, 1], landmarks[:, 3:5].mean(1))


def _geometry(left_eye, right_eye, mouth) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    left_eye, right_eye, mouth = (np.asarray(p, np.float64).reshape(-1, 2) for p in (left_eye, right_eye, mouth))
    eyes = 0.5 * (left_eye + right_eye)
    return eyes, np.linalg.norm(mouth - eyes, axis=1), np.linalg.norm(right_eye - left_eye, axis=1)


def fit_box_transform(
    left_eye: np.ndarray, right_eye: np.ndarray, mouth: np.ndarray, boxes: np.ndarray
) -> tuple[BoxFromPoints, dict[str, float]]:
    """Least-squares coefficients mapping points ``(N, 2)`` to reference ``boxes (N, 4)``.

    Returns the transform and fit statistics: the median IoU of derived vs reference boxes and the
    fraction with IoU >= 0.5 / 0.7.
    """
    eyes, d, o = _geometry(left_eye, right_eye, mouth)
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    if len(boxes) < 3:
        raise ValueError("need at least 3 faces to fit the box transform")
    centre = 0.5 * (boxes[:, :2] + boxes[:, 2:])
    v = np.asarray(mouth, np.float64).reshape(-1, 2) - eyes
    # centre - e = shift * v, both coordinates stacked: one unknown
    shift = float(np.sum(v * (centre - eyes)) / np.sum(v * v))
    size = np.stack([d, o], 1)
    (w_mouth, w_eyes), *_ = np.linalg.lstsq(size, boxes[:, 2] - boxes[:, 0], rcond=None)
    (h_mouth, h_eyes), *_ = np.linalg.lstsq(size, boxes[:, 3] - boxes[:, 1], rcond=None)
    transform = BoxFromPoints(shift, float(w_mouth), float(w_eyes), float(h_mouth), float(h_eyes))
    iou = paired_iou(transform(left_eye, right_eye, mouth), boxes)
    stats = {
        "faces": float(len(boxes)),
        "median_iou": float(np.median(iou)),
        "iou>=0.5": float(np.mean(iou >= 0.5)),
        "iou>=0.7": float(np.mean(iou >= 0.7)),
    }
    return transform, stats


def paired_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of ``a[i]`` with ``b[i]`` for paired ``(N, 4)`` boxes."""
    lt = np.maximum(a[:, :2], b[:, :2])
    rb = np.minimum(a[:, 2:], b[:, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), 1)
    area = lambda x: np.prod(x[:, 2:] - x[:, :2], 1)  # noqa: E731
    return inter / (area(a) + area(b) - inter)


def coefficients(transform: BoxFromPoints) -> tuple[float, ...]:
    return astuple(transform)
