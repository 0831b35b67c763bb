"""dlib imglab xml: ``<images><image file=...><box top= left= width= height= [ignore='1']>``.

Each ``<box>`` may have ``<part name= x= y=/>`` children. When a box has the 68 parts of the
iBUG 300-W scheme (names ``0``..``67``, dlib writes ``00``..``67``), its 5 landmarks are derived
from them (`IBUG68_TO_5`); boxes without all 68 parts get NaN landmarks, and a file where no box has
them gives ``landmarks=None``. Note that dlib's ``*_with_face_landmarks.xml`` examples hold points
predicted by a model, not hand-labelled ones.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from .records import NUM_LANDMARKS, FaceRecord

# iBUG 68-point indices averaged into each of the 5 landmarks: the image-left eye (the subject's
# right eye, 36-41), the image-right eye (42-47), the nose tip (30) and the mouth corners (48, 54).
IBUG68_TO_5 = (tuple(range(36, 42)), tuple(range(42, 48)), (30,), (48,), (54,))


def ibug68_to_5(points: np.ndarray) -> np.ndarray:
    """``(..., 68, 2)`` iBUG 300-W points to ``(..., 5, 2)`` landmarks in `FaceRecord` order."""
    points = np.asarray(points, np.float64)
    if points.shape[-2:] != (68, 2):
        raise ValueError(f"expected (..., 68, 2) points, got shape {points.shape}")
    return np.stack([points[..., list(idx), :].mean(-2) for idx in IBUG68_TO_5], -2).astype(np.float32)


def _number(element: ET.Element, key: str, where: str) -> float:
    value = element.get(key)
    if value is None:
        raise ValueError(f"{where}: <{element.tag}> without the attribute {key!r}")
    try:
        return float(value)
    except ValueError as exc:
        raise ValueError(f"{where}: <{element.tag}> has {key}={value!r}, not a number") from exc


def _parts(box: ET.Element, where: str) -> np.ndarray:
    """``(5, 2)`` landmarks of a box with all 68 iBUG parts, else NaN."""
    points = np.full((68, 2), np.nan)
    for part in box.iter("part"):
        name = part.get("name", "")
        if name.isdigit() and int(name) < 68:
            points[int(name)] = _number(part, "x", where), _number(part, "y", where)
    if np.isnan(points).any():
        return np.full((NUM_LANDMARKS, 2), np.nan, np.float32)
    return ibug68_to_5(points)


def read_imglab(xml_file: Path, images_dir: Path | None = None) -> list[FaceRecord]:
    """One record per ``<image>`` of an imglab xml file, in file order.

    Boxes are ``left, top, left + width, top + height`` (dlib's inclusive ``right = left + width - 1``
    as a 0-based ``[x1, x2)`` box). ``ignore='1'`` sets the ignore flag. Image paths are relative to
    the xml file's folder, or to ``images_dir`` when given.
    """
    xml_file = Path(xml_file)
    if not xml_file.is_file():
        raise FileNotFoundError(f"imglab xml file {xml_file} not found")
    images_dir = xml_file.parent if images_dir is None else Path(images_dir)
    try:
        root = ET.parse(xml_file).getroot()
    except ET.ParseError as exc:
        raise ValueError(f"{xml_file}: not valid xml ({exc})") from exc
    parsed = []
    for index, image in enumerate(root.iter("image")):
        name = image.get("file")
        if not name:
            raise ValueError(f"{xml_file}: <image> number {index + 1} has no file attribute")
        where = f"{xml_file} (image {name})"
        boxes, ignore, points = [], [], []
        for box in image.iter("box"):
            left, top = _number(box, "left", where), _number(box, "top", where)
            width, height = _number(box, "width", where), _number(box, "height", where)
            boxes.append((left, top, left + width, top + height))
            ignore.append(box.get("ignore", "0").strip() == "1")
            points.append(_parts(box, where))
        parsed.append((images_dir / name, boxes, ignore, points))
    any_points = any(not np.isnan(p).all() for *_, points in parsed for p in points)
    records = []
    for path, boxes, ignore, points in parsed:
        landmarks = np.asarray(points, np.float32).reshape(-1, NUM_LANDMARKS, 2) if any_points else None
        records.append(
            FaceRecord(
                path, np.asarray(boxes, np.float32).reshape(-1, 4), landmarks, np.asarray(ignore, bool), source="imglab"
            )
        )
    return records
