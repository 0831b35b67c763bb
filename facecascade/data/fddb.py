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


def _is_numbers(line: str) -> bool:
    try:
        [float(v) for v in line.split()]
    except ValueError:
        return False
    return True


def _read_fold(fold: Path, out: dict[str, list[np.ndarray]]) -> None:
    with open(fold, encoding="utf-8") as f:
        lines = [line.strip() for line in f]
    while lines and not lines[-1]:
        lines.pop()
    i = 0
    while i < len(lines):
        path = lines[i]
        if not path:
            i += 1
            continue
        if len(path.split()) > 1 and _is_numbers(path):
            raise ValueError(f"{fold}:{i + 1}: expected an image path, got {path!r} "
                             "(does a face count above not match its ellipse lines?)")
        if i + 1 >= len(lines):
            raise ValueError(f"{fold}:{i + 1}: {path} has no face count line (truncated file?)")
        try:
            count = int(lines[i + 1])
        except ValueError:
            raise ValueError(f"{fold}:{i + 2}: expected the face count of {path}, got {lines[i + 1]!r}") from None
        if count < 0:
            raise ValueError(f"{fold}:{i + 2}: negative face count {count}")
        i += 2
        rows = out.setdefault(path, [])
        for k in range(count):
            if i >= len(lines):
                raise ValueError(f"{fold}: truncated: {path} has {count} faces but the file ends after {k} "
                                 "ellipse lines")
            try:
                values = [float(v) for v in lines[i].split()]
            except ValueError:
                values = []
            if len(values) not in (5, 6) or not np.isfinite(values).all():
                raise ValueError(f"{fold}:{i + 1}: expected 'major_radius minor_radius angle center_x "
                                 f"center_y 1', got {lines[i]!r}")
            rows.append(np.asarray(values[:5], np.float32))
            i += 1


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
    return [FaceRecord(images_dir / f"{path}.jpg", ellipse_boxes(ellipses), source="fddb")
            for path, ellipses in read_fddb_ellipses(annotations).items()]
