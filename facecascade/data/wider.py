"""WIDER FACE ground truth: ``wider_face_train_bbx_gt.txt`` / ``wider_face_val_bbx_gt.txt``.

The file is a sequence of blocks::

    0--Parade/0_Parade_marchingband_1_849.jpg      image path, relative to WIDER_*/images
    1                                              number of faces
    449 330 122 149 0 0 0 0 0 0                    x1 y1 w h blur expression illumination invalid occlusion pose

An image with 0 faces is followed by one placeholder line ``0 0 0 0 0 0 0 0 0 0``, which is consumed
(and tolerated when absent). Faces marked ``invalid`` and boxes with ``w <= 0`` or ``h <= 0`` are
kept with the ignore flag, so that detections on them are neither hits nor false positives.

The same ground truth also comes as the official MATLAB file ``wider_face_val.mat`` (`read_wider_mat`,
chosen by `read_wider` for a ``.mat`` path), and the official evaluation's easy/medium/hard settings
as ``wider_<setting>_val.mat`` (`read_wider_setting`). Both are read with scipy, imported only
then: ``pip install "facecascade[wider]"``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
    A ``.mat`` file is read by `read_wider_mat` instead.
    """
    if Path(annotations_file).suffix.lower() == ".mat":
        return read_wider_mat(annotations_file, images_dir)
    images_dir = Path(images_dir)
    records = []
    for path, rows in read_wider_boxes(annotations_file):
        x, y, w, h = rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3]
        boxes = np.stack([x, y, x + w, y + h], 1)
        ignore = (rows[:, 7] == 1) | (w <= 0) | (h <= 0)
        records.append(FaceRecord(images_dir / path, boxes, ignore=ignore, source="wider"))
    return records


# -- the official MATLAB files: wider_face_val.mat and the easy/medium/hard settings ---------------

MAT_GROUND_TRUTH_KEYS = ("event_list", "file_list", "face_bbx_list")
SCIPY_HINT = 'reading WIDER FACE .mat files needs scipy: pip install "facecascade[wider]"'


def load_wider_mat(path: Path, keys: tuple[str, ...]) -> dict[str, Any]:
    """The variables of a MATLAB (v5) file, read by ``scipy.io.loadmat`` (imported here); raises
    ``FileNotFoundError``, ``ImportError`` without scipy, ``ValueError`` naming the path when it is
    no MATLAB file or lacks one of ``keys``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"WIDER FACE .mat file {path} not found")
    try:
        from scipy.io import loadmat
        from scipy.io.matlab import MatReadError
    except ImportError as exc:
        raise ImportError(SCIPY_HINT) from exc
    try:
        mat = loadmat(str(path))
    except (MatReadError, ValueError, TypeError, NotImplementedError, OSError) as exc:  # v7.3 (HDF5): NotImplemented
        raise ValueError(f"{path}: not a readable MATLAB v5 file ({exc})") from exc
    missing = [k for k in keys if k not in mat]
    if missing:
        raise ValueError(f"{path}: not a WIDER FACE .mat file: missing {', '.join(missing)}")
    return mat


def _cells(value: Any, path: Path, what: str) -> list[Any]:
    """The elements of a MATLAB cell array (an object array from loadmat), in order."""
    array = np.asarray(value)
    if array.dtype != object:
        raise ValueError(f"{path}: {what} is not a cell array")
    return list(array.ravel(order="F"))


def _text(value: Any) -> str:
    """A MATLAB string as loadmat gives it (``array(['name'])``, possibly wrapped in a 1x1 cell)."""
    array = np.asarray(value)
    while array.dtype == object and array.size == 1:
        array = np.asarray(array.ravel()[0])
    return str(array.ravel()[0]) if array.size else ""


def _nested(mat: dict[str, Any], key: str, path: Path, sizes: list[int]) -> list[list[Any]]:
    """``mat[key]`` as per-event lists of per-image cells, checked against ``sizes`` (images per event)."""
    events = _cells(mat[key], path, key)
    if len(events) != len(sizes):
        raise ValueError(f"{path}: {key} has {len(events)} events, event_list has {len(sizes)}")
    nested = []
    for e, (cell, size) in enumerate(zip(events, sizes)):
        images = _cells(cell, path, f"{key}{{{e + 1}}}")
        if len(images) != size:
            raise ValueError(f"{path}: {key}{{{e + 1}}} has {len(images)} images, file_list has {size}")
        nested.append(images)
    return nested


def wider_mat_index(mat: dict[str, Any], path: Path) -> list[tuple[str, list[str]]]:
    """``(event, [file names without .jpg])`` per event of a file with ``event_list`` and ``file_list``."""
    events = [_text(e) for e in _cells(mat["event_list"], path, "event_list")]
    files = _cells(mat["file_list"], path, "file_list")
    if len(files) != len(events):
        raise ValueError(f"{path}: file_list has {len(files)} events, event_list has {len(events)}")
    return [(event, [_text(f) for f in _cells(cell, path, "file_list")]) for event, cell in zip(events, files)]


def _mat_boxes(value: Any, path: Path, where: str) -> np.ndarray:
    """``(F, 4)`` float32 ``x, y, w, h`` rows of one image."""
    rows = np.asarray(value, np.float64)
    if rows.size % 4:
        raise ValueError(f"{path}: {where} holds {rows.size} numbers, not rows of x y w h")
    return rows.reshape(-1, 4).astype(np.float32)


def read_wider_mat(annotations_file: Path, images_dir: Path) -> list[FaceRecord]:
    """One record per image of the official ``wider_face_val.mat`` (``event_list``, ``file_list``,
    ``face_bbx_list`` of ``x y w h``; ``invalid_label_list`` when present); images at
    ``images_dir / event / name.jpg``. Ignore flags as `read_wider`. Needs scipy (`load_wider_mat`)."""
    path, images_dir = Path(annotations_file), Path(images_dir)
    mat = load_wider_mat(path, MAT_GROUND_TRUTH_KEYS)
    index = wider_mat_index(mat, path)
    sizes = [len(files) for _, files in index]
    boxes = _nested(mat, "face_bbx_list", path, sizes)
    invalid = _nested(mat, "invalid_label_list", path, sizes) if "invalid_label_list" in mat else None
    records = []
    for e, (event, files) in enumerate(index):
        for j, name in enumerate(files):
            rows = _mat_boxes(boxes[e][j], path, f"face_bbx_list{{{e + 1}}}{{{j + 1}}}")
            x, y, w, h = rows.T
            flags = np.zeros(len(rows), bool) if invalid is None else np.asarray(invalid[e][j]).reshape(-1) == 1
            if len(flags) != len(rows):
                raise ValueError(f"{path}: {len(flags)} invalid labels for {len(rows)} faces of {event}/{name}")
            box = np.stack([x, y, x + w, y + h], 1)
            ignore = flags | (w <= 0) | (h <= 0)
            records.append(FaceRecord(images_dir / event / f"{name}.jpg", box, ignore=ignore, source="wider"))
    return records


def read_wider_setting(setting_file: Path, names_file: Path | None = None) -> dict[tuple[str, str], np.ndarray]:
    """The faces an official setting file (``wider_easy_val.mat``, ...) keeps: ``{(event, file name):
    (K,) int64 0-based face indices}`` from its ``gt_list`` of 1-based indices.

    The images are named by the file's own ``event_list`` and ``file_list``, or, when it has none,
    by those of ``names_file`` (``wider_face_val.mat``, in the same event and image order).
    """
    path = Path(setting_file)
    mat = load_wider_mat(path, ("gt_list",))
    if all(k in mat for k in ("event_list", "file_list")):
        index = wider_mat_index(mat, path)
    elif names_file is not None and Path(names_file).is_file():
        index = wider_mat_index(load_wider_mat(Path(names_file), ("event_list", "file_list")), Path(names_file))
    else:
        raise ValueError(f"{path}: no event_list and file_list, and no wider_face_val.mat to name its images")
    kept = _nested(mat, "gt_list", path, [len(files) for _, files in index])
    setting = {}
    for (event, files), cells in zip(index, kept):
        for name, value in zip(files, cells):
            indices = np.asarray(value, np.float64).reshape(-1)
            if len(indices) and (indices.min() < 1 or np.any(indices != np.round(indices))):
                raise ValueError(f"{path}: gt_list of {event}/{name} holds {indices.tolist()}, not 1-based indices")
            setting[(event, name)] = indices.astype(np.int64) - 1
    return setting
