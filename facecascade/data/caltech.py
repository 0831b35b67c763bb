"""Caltech 10,000 Web Faces: ``WebFaces_GroundThruth.txt`` with 4 points per face and no boxes.

Each line is ``name leye_x leye_y reye_x reye_y nose_x nose_y mouth_x mouth_y`` (pixels; the first
eye is the one on the image's left). Boxes are derived from the points with `CALTECH_BOXES`, a
`BoxFromPoints` fitted to the boxes that the original MTCNN weights give the same faces (so they
follow MTCNN's box convention); see ``tools/fit_caltech_boxes.py`` and docs/datasets.md ("Caltech boxes") for the fit.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from .boxfit import BoxFromPoints
from .records import FaceRecord

# Fitted by `python tools/fit_caltech_boxes.py --images 1500` on the first 1,500 training-split
# images of the shared copy: 2,417 faces matched to original-MTCNN detections; derived vs MTCNN
# boxes: median IoU 0.824, 99.8 % at IoU >= 0.5, 88.6 % at IoU >= 0.7 (docs/datasets.md, "Caltech boxes").
CALTECH_BOXES = BoxFromPoints(shift=0.2862, w_mouth=0.7571, w_eyes=1.3482, h_mouth=1.3699, h_eyes=1.3644)


def read_caltech_points(annotations: Path) -> dict[str, np.ndarray]:
    """``{image name: (N, 4, 2) float32}`` points (left eye, right eye, nose, mouth) per image."""
    points: dict[str, list] = defaultdict(list)
    with open(annotations) as f:
        for number, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 9:
                raise ValueError(f"{annotations}:{number}: expected a name and 8 numbers, got {len(fields)} fields")
            try:
                values = np.asarray([float(v) for v in fields[1:]], np.float32).reshape(4, 2)
            except ValueError as exc:
                raise ValueError(f"{annotations}:{number}: {exc}") from exc
            points[fields[0]].append(values)
    return {name: np.stack(p) for name, p in points.items()}


def read_caltech(annotations: Path, images: Path, transform: BoxFromPoints = CALTECH_BOXES) -> list[FaceRecord]:
    """One record per image listed in ``annotations``, boxes derived by ``transform``."""
    images = Path(images)
    records = []
    for name, pts in sorted(read_caltech_points(Path(annotations)).items()):
        boxes = transform(pts[:, 0], pts[:, 1], pts[:, 3])
        records.append(FaceRecord(images / name, boxes, source="caltech"))
    return records
