"""FDDB ellipse annotations: ``FDDB-fold-XX-ellipseList.txt``.

Each image is a block::

    2002/08/11/big/img_591                         image path without the .jpg extension
    1                                              number of faces
    123.583300 85.549500 1.265839 269.693400 161.781200  1
                     major_radius minor_radius angle center_x center_y 1

``angle`` is the major axis' angle to the x axis in radians. Boxes are the exact axis-aligned
bounding boxes of the ellipses; `read_fddb_ellipses` gives the ellipses themselves for FDDB's own
ellipse-overlap criterion.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .counted_blocks import numbers, read_counted_blocks
from .records import FaceRecord

FDDB_ELLIPSE_FIELDS = ("major_radius", "minor_radius", "angle", "center_x", "center_y")


def _fold_files(annotations: Path) -> list[Path]:
    if annotations.is_dir():
        files = sorted(annotations.glob("*ellipseList.txt"))
        if not files:
            raise FileNotFoundError(f"no *ellipseList.txt fold files in {annotations}")
        return files
    if not annotations.is_file():
        raise FileNotFoundError(f"FDDB annotations {annotations} not found")
    return [annotations]


def _ellipse_row(line: str) -> np.ndarray:
    values = numbers(line) or []
    if len(values) not in (5, 6) or not np.isfinite(values).all():
        raise ValueError(f"expected 'major_radius minor_radius angle center_x center_y 1', got {line!r}")
    return np.asarray(values[:5], np.float32)


def _read_fold(fold: Path, out: dict[str, list[np.ndarray]]) -> None:
    for path, rows in read_counted_blocks(fold, _ellipse_row, what="ellipse"):
        out.setdefault(path, []).extend(rows)


def read_fddb_ellipses(annotations: Path) -> dict[str, np.ndarray]:
    """``{image path without extension: (N, 5) float32}`` rows of `FDDB_ELLIPSE_FIELDS`, in file
    order. ``annotations``: one fold file, or a folder whose ``*ellipseList.txt`` are read sorted."""
    out: dict[str, list[np.ndarray]] = {}
    for fold in _fold_files(Path(annotations)):
        _read_fold(fold, out)
    return {path: np.asarray(rows, np.float32).reshape(-1, 5) for path, rows in out.items()}


def ellipse_boxes(ellipses: np.ndarray) -> np.ndarray:
    """``(N, 4)`` axis-aligned bounding boxes of ``(N, 5)`` ellipses (a, b, angle, cx, cy)."""
    e = np.asarray(ellipses, np.float64).reshape(-1, 5)
    a, b, theta, cx, cy = e.T
    cos2, sin2 = np.cos(theta) ** 2, np.sin(theta) ** 2
    half_w = np.sqrt(a * a * cos2 + b * b * sin2)
    half_h = np.sqrt(a * a * sin2 + b * b * cos2)
    return np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], 1).astype(np.float32)


def read_fddb(annotations: Path, images_dir: Path) -> list[FaceRecord]:
    """One record per annotated image, images at ``images_dir / (path + ".jpg")``; boxes bound the
    ellipses (see `ellipse_boxes`)."""
    images_dir = Path(images_dir)
    return [
        FaceRecord(images_dir / f"{path}.jpg", ellipse_boxes(ellipses), source="fddb")
        for path, ellipses in read_fddb_ellipses(annotations).items()
    ]
