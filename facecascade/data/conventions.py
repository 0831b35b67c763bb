"""Box conventions: each dataset draws face boxes its own way; map one source's onto another's.

WIDER FACE, the benchmark the field scores against, boxes a face from the hairline to the chin;
face_mask's boxes sit lower (more chin, less forehead) and are wider. A detector trained on both
learns a blur of the two, which costs it high-IoU precision (AP75) on either. A `BoxConvention`
moves each side of a box by a fraction of the box's width (left, right) or height (top, bottom),
so that a source's boxes follow the reference convention before they become regression targets.

The fractions are fitted (`fit_box_convention`) on faces both conventions box: the source's
annotations against the boxes a detector trained on the reference convention puts on the same
faces (the original MTCNN weights, trained on WIDER FACE; on WIDER train images their boxes are
within 3 % of the annotations on each side, see ``tools/fit_box_convention.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .boxfit import paired_iou


@dataclass(frozen=True)
class BoxConvention:
    """Side shifts as fractions of the box's width (``left``, ``right``) or height (``top``, ``bottom``);
    positive moves a side right or down."""

    left: float = 0.0
    top: float = 0.0
    right: float = 0.0
    bottom: float = 0.0

    def __call__(self, boxes: np.ndarray) -> np.ndarray:
        """``(N, 4)`` x1 y1 x2 y2 boxes in the reference convention (float32)."""
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        w = boxes[:, 2] - boxes[:, 0]
        h = boxes[:, 3] - boxes[:, 1]
        shift = np.stack([self.left * w, self.top * h, self.right * w, self.bottom * h], 1)
        return (boxes + shift).astype(np.float32)


def fit_box_convention(source: np.ndarray, reference: np.ndarray) -> tuple[BoxConvention, dict[str, float]]:
    """The median side shifts taking ``source`` boxes ``(N, 4)`` to the paired ``reference`` boxes,
    and the fit's statistics (faces, median IoU of the pairs before and after)."""
    source = np.asarray(source, np.float64).reshape(-1, 4)
    reference = np.asarray(reference, np.float64).reshape(-1, 4)
    if len(source) != len(reference) or len(source) < 3:
        raise ValueError(f"need at least 3 paired boxes, got {len(source)} and {len(reference)}")
    w = source[:, 2] - source[:, 0]
    h = source[:, 3] - source[:, 1]
    scale = np.stack([w, h, w, h], 1)
    shifts = np.median((reference - source) / scale, axis=0)
    convention = BoxConvention(*(round(float(s), 4) for s in shifts))
    stats = {
        "faces": float(len(source)),
        "median_iou_before": float(np.median(paired_iou(source, reference))),
        "median_iou_after": float(np.median(paired_iou(convention(source), reference))),
    }
    return convention, stats


# face_mask (VOC) boxes -> WIDER FACE's convention; fitted by `tools/fit_box_convention.py` on the
# face_mask training split (faces >= 24 px high matched at IoU >= 0.4 by the original MTCNN).
FACE_MASK_TO_WIDER = BoxConvention(left=0.039, top=-0.134, right=-0.045, bottom=-0.111)
