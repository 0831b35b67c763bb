"""MTFL (Multi-Task Facial Landmark, Zhang et al. 2014) lists: 5 points per face image, no boxes.

Each line is ``path x1 x2 x3 x4 x5 y1 y2 y3 y4 y5``: all x first, then all y, points in the order
image-left eye, image-right eye, nose, left mouth corner, right mouth corner. The official
``training.txt`` / ``testing.txt`` add 4 integer attributes (gender, smile, glasses, head pose);
they are accepted and not kept. Paths are relative to the list's folder and may use Windows ``\\``
separators (the official lists do), e.g. ``lfw_5590\\Aaron_Eckhart_0001.jpg``.

**Origins.** The AFLW part (paths under ``AFLW/``) is 1-based: a pixel's centre is at 1, as in
MATLAB, where the LFW part's (and CelebA's) is at 0. Measured: the shipped aligner, trained on LFW
and CelebA only, places all 5 points of the AFLW training faces (1.39, 1.02) px up and left of
the annotation on average, and of LFW's (0.19, 0.02); the gap does not grow with face size in y
(a fit of the offset against the eye distance: 1.21 px + 0.008 x distance). Its AFLW validation
NME falls from 9.0 to 5.3 % when its points are moved by +1 pixel, and its failures from 26 to
6 %. The readers therefore subtract 1 from the AFLW part's coordinates (``ONE_BASED_PARTS``), as
the ``.pts`` reader does for 300W's 1-based files; ``as_written=True`` keeps the file's numbers.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import numpy as np

from .boxfit import BoxFromPoints
from .records import NUM_LANDMARKS, FaceRecord

ONE_BASED_PARTS = frozenset({"AFLW"})  # first folder of the path -> coordinates are 1-based


def read_mtfl_points(list_file: Path, as_written: bool = False) -> list[tuple[str, np.ndarray]]:
    """``(relative path with / separators, (5, 2) float32 points)`` per line, in file order;
    points of the 1-based parts (`ONE_BASED_PARTS`) moved to 0-based unless ``as_written``."""
    list_file = Path(list_file)
    if not list_file.is_file():
        raise FileNotFoundError(f"MTFL list {list_file} not found")
    entries = []
    with open(list_file, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) not in (11, 15):
                raise ValueError(
                    f"{list_file}:{number}: expected a path and 10 coordinates "
                    f"(optionally 4 attributes), got {len(fields)} fields"
                )
            try:
                values = np.asarray([float(v) for v in fields[1:11]], np.float32)
            except ValueError as exc:
                raise ValueError(f"{list_file}:{number}: {exc}") from exc
            if not np.isfinite(values).all():
                raise ValueError(f"{list_file}:{number}: coordinates must be finite")
            path = PurePosixPath(fields[0].replace("\\", "/"))
            origin = 1.0 if path.parts[0] in ONE_BASED_PARTS and not as_written else 0.0
            entries.append((path.as_posix(), values.reshape(2, NUM_LANDMARKS).T - origin))
    return entries


def read_mtfl(
    list_file: Path,
    images_dir: Path | None = None,
    box_transform: BoxFromPoints | None = None,
    as_written: bool = False,
) -> list[FaceRecord]:
    """One record (one face) per line; images at ``images_dir / path`` (default: the list's folder).

    ``box_transform``: points to box; default `facecascade.data.caltech.CALTECH_BOXES`, looked up
    at call time so that refitted coefficients apply.
    """
    list_file = Path(list_file)
    entries = read_mtfl_points(list_file, as_written)
    images_dir = list_file.parent if images_dir is None else Path(images_dir)
    if box_transform is None:
        from . import caltech

        box_transform = caltech.CALTECH_BOXES
    if not entries:
        return []
    landmarks = np.stack([points for _, points in entries])
    boxes = box_transform.from_landmarks(landmarks)
    return [
        FaceRecord(images_dir / path, boxes[i : i + 1], landmarks[i : i + 1], source="mtfl")
        for i, (path, _) in enumerate(entries)
    ]
