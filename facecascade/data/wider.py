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

from .records import FaceRecord

WIDER_FIELDS = ("x1", "y1", "w", "h", "blur", "expression", "illumination", "invalid", "occlusion", "pose")


def _numbers(line: str) -> list[float] | None:
    try:
        return [float(v) for v in line.split()]
    except ValueError:
        return None


def read_wider_boxes(annotations_file: Path) -> list[tuple[str, np.ndarray]]:
    """``(relative image path, (N, 10) float32 rows of WIDER_FIELDS)`` per image, in file order."""
    annotations_file = Path(annotations_file)
    if not annotations_file.is_file():
        raise FileNotFoundError(f"WIDER FACE annotation file {annotations_file} not found")
    with open(annotations_file, encoding="utf-8") as f:
        lines = [line.strip() for line in f]
    while lines and not lines[-1]:
        lines.pop()
    where = lambda i: f"{annotations_file}:{i + 1}"  # noqa: E731 (0-based index to file:line)
    images = []
    i = 0
    while i < len(lines):
        path = lines[i]
        if not path:
            i += 1
            continue
        if len(path.split()) > 1 and _numbers(path) is not None:
            raise ValueError(f"{where(i)}: expected an image path, got {path!r} "
                             "(does a face count above not match its box lines?)")
        if i + 1 >= len(lines):
            raise ValueError(f"{where(i)}: {path} has no face count line (truncated file?)")
        try:
            count = int(lines[i + 1])
        except ValueError:
            raise ValueError(f"{where(i + 1)}: expected the face count of {path}, got {lines[i + 1]!r}") from None
        if count < 0:
            raise ValueError(f"{where(i + 1)}: negative face count {count}")
        i += 2
        rows = []
        for _ in range(count):
            if i >= len(lines):
                raise ValueError(f"{annotations_file}: truncated: {path} has {count} faces but the file "
                                 f"ends after {len(rows)} box lines")
            values = _numbers(lines[i])
            if values is None or len(values) != len(WIDER_FIELDS):
                raise ValueError(f"{where(i)}: expected {len(WIDER_FIELDS)} numbers "
                                 f"({' '.join(WIDER_FIELDS)}), got {lines[i]!r}")
            rows.append(values)
            i += 1
        if count == 0 and i < len(lines):
            values = _numbers(lines[i])
            if values is not None:
                if len(values) != len(WIDER_FIELDS) or any(values):
                    raise ValueError(f"{where(i)}: {path} has 0 faces, expected the placeholder line "
                                     f"'0 0 0 0 0 0 0 0 0 0', got {lines[i]!r}")
                i += 1
        images.append((path, np.asarray(rows, np.float32).reshape(-1, len(WIDER_FIELDS))))
    return images


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
