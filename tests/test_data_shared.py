"""Smoke tests of the dataset readers on the real shared copies (see ``shared/data/README.md``):
counts, image paths, and boxes/landmarks inside the images. A missing copy fails (never skips)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from facecascade.data import (
    CELEBA_ATTRIBUTES,
    read_caltech_points,
    read_celeba,
    read_dataset,
    read_imglab,
    select_split,
)

from .shared_data import require


def _size(path: Path) -> tuple[int, int]:
    with Image.open(path) as img:  # reads the header only
        return img.size


def _inside(points: np.ndarray, width: int, height: int, slack: float = 1.0) -> bool:
    """Points ``(..., 2)`` within the image, up to ``slack`` pixels beyond its border."""
    p = np.asarray(points).reshape(-1, 2)
    return bool((p >= -slack).all() and (p[:, 0] <= width + slack).all() and (p[:, 1] <= height + slack).all())


def test_face_mask_voc():
    records = read_dataset("voc", require("face_mask/annotations"), require("face_mask/images"))
    assert len(records) == 700 and sum(len(r) for r in records) == 3422
    assert all(r.image.is_file() for r in records)
    for r in records[::35]:
        width, height = _size(r.image)
        # a few boxes of this set end 1 px beyond the right border (xmax = width + 1 in VOC's 1-based pixels)
        assert _inside(r.boxes.reshape(-1, 2, 2), width, height)
        assert (r.boxes[:, 2:] > r.boxes[:, :2]).all()


def test_caltech_web_faces():
    annotations = require("caltech_webfaces/WebFaces_GroundThruth.txt")
    images = require("caltech_webfaces/images")
    records = read_dataset("caltech", annotations, images)
    assert len(records) == 6383 and sum(len(r) for r in records) == 9426
    assert max(len(r) for r in records) == 38
    assert all(r.image.is_file() for r in records)
    points = read_caltech_points(annotations)
    for name in sorted(points)[::150]:
        width, height = _size(images / name)
        assert max(width, height) <= 640
        assert _inside(points[name], width, height)  # one face of pic03967.jpg is 0.4 px beyond the border
    # the first eye is the image-left one
    left_first = np.mean([(p[:, 0, 0] < p[:, 1, 0]).mean() for p in points.values()])
    assert left_first > 0.99
    # the split of a real set is reproducible and disjoint
    train, val = select_split(records, "train"), select_split(records, "val")
    assert len(train) + len(val) == 6383 and 0.15 < len(val) / 6383 < 0.25
    assert not {r.image.name for r in train} & {r.image.name for r in val}
    assert [r.image for r in select_split(records, "val")] == [r.image for r in val]


def test_dlib_imglab():
    records = read_imglab(require("dlib_faces/training.xml")) + read_imglab(require("dlib_faces/testing.xml"))
    assert len(records) == 4 + 5 and sum(len(r) for r in records) == 43
    for r in records:
        assert r.image.parent == require("dlib_faces") and r.landmarks is None and not r.ignore.any()
        assert _inside(r.boxes.reshape(-1, 2, 2), *_size(r.image), slack=0)
    # the 68-point model output gives 5 landmarks per face, inside its box
    predicted = read_dataset("imglab", require("dlib_faces/testing_with_face_landmarks.xml"))
    assert sum(len(r) for r in predicted) == 25 and all(r.has_landmarks.all() for r in predicted)
    for r in predicted:
        lo, hi = r.boxes[:, None, :2] - 5, r.boxes[:, None, 2:] + 5
        assert ((r.landmarks >= lo) & (r.landmarks <= hi)).all()
        assert (r.landmarks[:, 0, 0] < r.landmarks[:, 1, 0]).all()  # image-left eye first


def test_celeba_half_size_copy():
    root = require("celeba")
    records = read_celeba(root)
    assert len(records) == 9000
    assert records[0].image == root / "img_align_celeba_89x109" / "000001.jpg"
    assert all(r.image.is_file() for r in records)
    with open(root / "list_attr_celeba.txt") as f:
        assert f.readline().strip() == "9000" and tuple(f.readline().split()) == CELEBA_ATTRIBUTES
    attributes = np.concatenate([r.attributes for r in records])
    assert attributes.shape == (9000, 40) and attributes.dtype == np.int8 and set(np.unique(attributes)) == {-1, 1}
    # the landmarks list is for 178 x 218: the scale measured on the 89 x 109 images is 1/2
    landmarks = np.concatenate([r.landmarks for r in records])
    np.testing.assert_array_equal(landmarks[0], np.reshape([69, 109, 106, 113, 77, 142, 73, 152, 108, 154], (5, 2)) / 2)
    for r in records[::900]:
        assert _size(r.image) == (89, 109)
    assert _inside(landmarks, 89, 109, slack=0)
    assert (landmarks[:, 0, 0] < landmarks[:, 1, 0]).all()
    explicit = read_celeba(root, scale=0.5)
    np.testing.assert_array_equal(explicit[-1].landmarks, records[-1].landmarks)
    np.testing.assert_array_equal(explicit[-1].boxes, records[-1].boxes)


def test_mtfl_lfw_part():
    list_file = require("mtfl/lfw_5590_landmarks.txt")
    records = read_dataset("mtfl", list_file)
    assert len(records) == 4151
    assert all(r.image.parent == require("mtfl/lfw_5590") and r.image.is_file() for r in records)
    for r in records[::400]:
        assert _size(r.image) == (80, 80)
    landmarks = np.concatenate([r.landmarks for r in records])
    assert _inside(landmarks, 80, 80, slack=0)
    assert (landmarks[:, 0, 0] < landmarks[:, 1, 0]).all() and (landmarks[:, 3, 0] < landmarks[:, 4, 0]).all()
    assert (landmarks[:, 2, 1] > landmarks[:, :2, 1].max(1)).mean() > 0.99  # the nose below the eyes
