"""WIDER FACE ground truth: ``wider_face_train_bbx_gt.txt`` / ``wider_face_val_bbx_gt.txt``.

The file is a sequence of blocks::

    0--Parade/0_Parade_marchingband_1_849.jpg      image path, relative to WIDER_*/images
    1                                              number of faces
    449 330 122 149 0 0 0 0 0 0                    x1 y1 w h blur expression illumination invalid occlusion pose

An image with 0 faces is followed by one placeholder line ``0 0 0 0 0 0 0 0 0 0``, which is consumed
(and tolerated when absent). Faces marked ``invalid`` and boxes with ``w <= 0`` or ``h <= 0`` are
kept with the ignore flag, so that detections on them are neither hits nor false positives.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .counted_blocks import numbers, read_counted_blocks
from .records import FaceRecord

WIDER_FIELDS = ("x1", "y1", "w", "h", "blur", "expression", "illumination", "invalid", "occlusion", "pose")


def _box_row(line: str) -> list[float]:
    values = numbers(line)
    if values is None or len(values) != len(WIDER_FIELDS):
        raise ValueError(f"expected {len(WIDER_FIELDS)} numbers ({' '.join(WIDER_FIELDS)}), got {line!r}")
    return values


def read_wider_boxes(annotations_file: Path) -> list[tuple[str, np.ndarray]]:
    """``(relative image path, (N, 10) float32 rows of WIDER_FIELDS)`` per image, in file order."""
    annotations_file = Path(annotations_file)
    if not annotations_file.is_file():
        raise FileNotFoundError(f"WIDER FACE annotation file {annotations_file} not found")
    blocks = read_counted_blocks(annotations_file, _box_row, what="box", empty_placeholder="0 0 0 0 0 0 0 0 0 0")
    return [(path, np.asarray(rows, np.float32).reshape(-1, len(WIDER_FIELDS))) for path, rows in blocks]


def read_wider(annotations_file: Path, images_dir: Path) -> list[FaceRecord]:
    """One record per image of a WIDER FACE ``*_bbx_gt.txt``; images at ``images_dir / path``.

    Boxes are ``x1, y1, x1 + w, y1 + h``; ``invalid = 1`` or an empty box sets the ignore flag.
    """
    images_dir = Path(images_dir)
    records = []
    for path, rows in read_wider_boxes(annotations_file):
        x, y, w, h = rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3]
        boxes = np.stack([x, y, x + w, y + h], 1)
        ignore = (rows[:, 7] == 1) | (w <= 0) | (h <= 0)
        records.append(FaceRecord(images_dir / path, boxes, ignore=ignore, source="wider"))
    return records
