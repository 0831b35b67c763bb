"""COCO instances json (``images``, ``annotations``, ``categories``), e.g. a face split in COCO form.

Boxes ``[x, y, w, h]`` become ``x, y, x + w, y + h``. Crowd regions (``iscrowd=1``), annotations
marked ``ignore=1`` (some face exports do) and boxes with ``w <= 0`` or ``h <= 0`` are kept with the
ignore flag. Every listed image gives a record, also one without (kept) annotations.

Landmarks: annotations whose ``keypoints`` hold exactly 5 ``(x, y, v)`` triples are taken as the 5
points in `FaceRecord` order (image-left eye, image-right eye, nose, left and right mouth corner);
a face with any ``v = 0`` (unlabelled) point, or without 5 keypoints, gets a NaN row. When no kept
annotation has 5 keypoints, records have ``landmarks=None`` (e.g. COCO person keypoints, 17 points).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from .records import NUM_LANDMARKS, FaceRecord


def _load(json_file: Path) -> dict:
    if not json_file.is_file():
        raise FileNotFoundError(f"COCO json file {json_file} not found")
    try:
        with open(json_file, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{json_file}: not valid json ({exc})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise ValueError(f"{json_file}: not a COCO instances file (no 'images' list)")
    return data


def _category_ids(data: dict, categories: Iterable[str | int] | None, json_file: Path) -> set[int] | None:
    """The ids of the requested category names or ids (``None``: all)."""
    if categories is None:
        return None
    if isinstance(categories, (str, int)):
        categories = [categories]
    by_name = {c["name"]: int(c["id"]) for c in data.get("categories", [])}
    known = set(by_name.values())
    ids = set()
    for category in categories:
        if isinstance(category, str) and category in by_name:
            ids.add(by_name[category])
            continue
        try:
            category_id = int(category)  # an id, also given as text ("1") by a command line
        except (TypeError, ValueError):
            category_id = None
        if category_id not in known:
            raise ValueError(
                f"{json_file}: no category {category!r}; it has "
                f"{', '.join(f'{n!r} (id {i})' for n, i in by_name.items())}"
            )
        ids.add(category_id)
    return ids


def _keypoints(annotation: dict, where: str) -> np.ndarray | None:
    """``(5, 2)`` points (NaN when some are unlabelled), or ``None`` without 5 keypoints."""
    values = annotation.get("keypoints")
    if not values or len(values) != 3 * NUM_LANDMARKS:
        return None
    try:
        triples = np.asarray(values, np.float64).reshape(NUM_LANDMARKS, 3)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: keypoints are not numbers ({exc})") from exc
    if (triples[:, 2] == 0).any():
        return np.full((NUM_LANDMARKS, 2), np.nan)
    return triples[:, :2]


def category_classes(data: dict) -> dict[int, int]:
    """COCO category id -> 1-based contiguous class (the categories sorted by id); detectors
    predict these classes."""
    ids = sorted(
        {c["id"] for c in data.get("categories", []) if isinstance(c.get("id"), int)}
        | {a["category_id"] for a in data.get("annotations", []) if isinstance(a.get("category_id"), int)}
    )
    return {category: k for k, category in enumerate(ids, 1)}


def read_coco(json_file: Path, images_dir: Path, categories: Iterable[str | int] | None = None) -> list[FaceRecord]:
    """One record per entry of ``images`` (json order), images at ``images_dir / file_name``.

    ``categories``: category names and/or ids to keep (``None``: every annotation is a face); a
    text that is no category name but a number is taken as an id.
    """
    json_file, images_dir = Path(json_file), Path(images_dir)
    data = _load(json_file)
    keep = _category_ids(data, categories, json_file)
    faces: dict[int, list] = {}
    for image in data["images"]:
        if "id" not in image or "file_name" not in image:
            raise ValueError(f"{json_file}: an image entry without 'id' or 'file_name': {image}")
        faces[image["id"]] = []
    for number, annotation in enumerate(data.get("annotations", []), 1):
        where = f"{json_file} (annotation {number}, id {annotation.get('id')})"
        if keep is not None and annotation.get("category_id") not in keep:
            continue
        if annotation.get("image_id") not in faces:
            raise ValueError(f"{where}: image_id {annotation.get('image_id')!r} is not in 'images'")
        try:
            x, y, w, h = (float(v) for v in annotation["bbox"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{where}: bbox must be 4 numbers [x, y, w, h]") from exc
        ignore = bool(annotation.get("iscrowd", 0)) or bool(annotation.get("ignore", 0)) or w <= 0 or h <= 0
        faces[annotation["image_id"]].append(
            ((x, y, x + w, y + h), ignore, annotation.get("category_id"), _keypoints(annotation, where))
        )
    any_points = any(p is not None for found in faces.values() for *_, p in found)
    class_of = category_classes(data)
    records = []
    for image in data["images"]:
        found = faces[image["id"]]
        boxes = np.asarray([b for b, *_ in found], np.float32).reshape(-1, 4)
        ignored = np.asarray([i for _, i, *_ in found], bool)
        labels = np.asarray([class_of.get(c, 1) for _, _, c, _ in found], np.int64)
        landmarks = None
        if any_points:
            nan = np.full((NUM_LANDMARKS, 2), np.nan)
            landmarks = np.asarray([nan if p is None else p for *_, p in found], np.float32)
            landmarks = landmarks.reshape(-1, NUM_LANDMARKS, 2)
        records.append(
            FaceRecord(images_dir / image["file_name"], boxes, landmarks, ignored, source="coco", labels=labels)
        )
    return records
