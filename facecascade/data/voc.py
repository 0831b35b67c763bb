"""PASCAL VOC xml annotations (one file per image), e.g. the face_mask set."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from .records import FaceRecord


def read_voc_file(xml_path: Path, images: Path, classes: Iterable[str] | None = None) -> FaceRecord:
    """One VOC xml file. ``classes``: object names to keep (``None``: every object is a face).

    Boxes are VOC's 1-based inclusive pixel coordinates moved to 0-based ``[x1, x2)``:
    ``x1 - 1, y1 - 1, x2, y2``. ``difficult`` objects are flagged ``ignore``.
    """
    try:
        root = ET.parse(xml_path).getroot()
    except ET.ParseError as exc:
        raise ValueError(f"{xml_path}: not valid xml ({exc})") from exc
    name = root.findtext("filename") or xml_path.with_suffix(".png").name
    keep = None if classes is None else set(classes)
    boxes, ignore = [], []
    for obj in root.iter("object"):
        if keep is not None and obj.findtext("name") not in keep:
            continue
        bb = obj.find("bndbox")
        if bb is None:
            raise ValueError(f"{xml_path}: an <object> without <bndbox>")
        try:
            x1, y1, x2, y2 = (float(bb.findtext(k, "")) for k in ("xmin", "ymin", "xmax", "ymax"))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{xml_path}: bad <bndbox> coordinates") from exc
        boxes.append((x1 - 1, y1 - 1, x2, y2))
        ignore.append(obj.findtext("difficult", "0").strip() == "1")
    return FaceRecord(
        images / name, np.asarray(boxes, np.float32).reshape(-1, 4), ignore=np.asarray(ignore, bool), source="voc"
    )


def read_voc(annotations: Path, images: Path, classes: Iterable[str] | None = None) -> list[FaceRecord]:
    """Every ``*.xml`` in the folder ``annotations`` (sorted), images looked up in ``images``."""
    annotations, images = Path(annotations), Path(images)
    files = sorted(annotations.glob("*.xml"))
    if not files:
        raise FileNotFoundError(f"no .xml files in {annotations}")
    return [read_voc_file(f, images, classes) for f in files]
