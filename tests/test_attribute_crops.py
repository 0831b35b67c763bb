"""Where the attribute crop is taken: by the training rule's box of a face's 5 points when it has
them (CelebA's boxes are that rule's), by its box otherwise or when the points went astray."""

import numpy as np
import pytest

from facecascade.attributes import AttributeClassifier
from facecascade.attributes.crops import LANDMARK_BOX_MIN_IOU, attribute_boxes
from facecascade.data import read_dataset, select_split
from facecascade.export.pipelines import mcfa_pipeline
from facecascade.io import load_image
from facecascade.models.mcfa import MCFAConfig
from facecascade.structures import Faces

from .shared_data import require

# eyes (30, 40) and (50, 40), nose, mouth corners (33, 70) and (47, 70): eye midpoint (40, 40),
# mouth centre (40, 70), eye-to-mouth d = 30, eye distance o = 20. With CALTECH_BOXES
# (shift 0.2862, width 0.7571 d + 1.3482 o, height 1.3699 d + 1.3644 o):
# centre (40, 48.586), width 49.677, height 68.385.
POINTS = np.array([[[30, 40], [50, 40], [40, 55], [33, 70], [47, 70]]], np.float32)
BY_HAND = np.array([[15.1615, 14.3935, 64.8385, 82.7785]], np.float32)


def test_box_of_the_points_by_hand():
    detector_box = np.array([[12, 18, 68, 84]], np.float32)  # another convention, IoU 0.83 with BY_HAND
    faces = Faces(detector_box, [0.9], POINTS)
    np.testing.assert_allclose(attribute_boxes(faces), BY_HAND, atol=1e-3)
    np.testing.assert_array_equal(attribute_boxes(faces, "boxes"), detector_box)


def test_faces_without_points_or_with_stray_points_keep_their_boxes():
    boxes = np.array([[12, 18, 68, 84], [200, 200, 260, 270], [12, 18, 68, 84]], np.float32)
    points = np.concatenate([POINTS, POINTS, np.full_like(POINTS, np.nan)])  # 2nd: points of another face
    out = attribute_boxes(Faces(boxes, [0.9, 0.8, 0.7], points))
    np.testing.assert_allclose(out[0], BY_HAND[0], atol=1e-3)
    np.testing.assert_array_equal(out[1:], boxes[1:])
    np.testing.assert_array_equal(attribute_boxes(Faces(boxes, [0.9, 0.8, 0.7])), boxes)  # no landmarks
    assert attribute_boxes(Faces.empty()).shape == (0, 4)
    assert 0 < LANDMARK_BOX_MIN_IOU < 1
    with pytest.raises(ValueError, match="crop_from"):
        attribute_boxes(Faces(boxes, [0.9, 0.8, 0.7]), "points")
    with pytest.raises(ValueError, match="crop_from"):
        AttributeClassifier(crop_from="eyes")


def test_celeba_boxes_are_the_rule_applied_to_its_points():
    records = select_split(read_dataset("celeba", require("celeba")), "val")[:50]
    boxes = np.concatenate([r.boxes for r in records])
    points = np.concatenate([r.landmarks for r in records])
    shifted = boxes + np.array([3, 4, 6, 8], np.float32)  # a detector's box convention, still IoU > 0.5
    np.testing.assert_allclose(attribute_boxes(Faces(shifted, np.ones(len(boxes)), points)), boxes, atol=1e-3)


def test_classifier_crops_by_the_points_not_the_box():
    record = select_split(read_dataset("celeba", require("celeba")), "val")[0]
    image = load_image(record.image)
    clf = AttributeClassifier(flip=False)
    shifted = record.boxes + np.array([4, 5, 8, 10], np.float32)
    by_points = clf.predict(image, Faces(shifted, [1.0], record.landmarks)).attributes
    by_box = clf.predict(image, Faces(record.boxes, [1.0])).attributes
    np.testing.assert_allclose(by_points, by_box, atol=1e-5)
    boxes_only = AttributeClassifier(flip=False, crop_from="boxes")
    assert "crop_from='boxes'" in repr(boxes_only)
    moved = boxes_only.predict(image, Faces(shifted, [1.0], record.landmarks)).attributes
    assert np.abs(moved - by_box).max() > 1e-3  # the shifted box's own crop differs


def test_export_manifest_states_the_rule_with_its_numbers():
    box = mcfa_pipeline(MCFAConfig(), {})["crop_box"]
    c = box["coefficients"]
    eyes, mouth = POINTS[0, :2].mean(0), POINTS[0, 3:].mean(0)
    d, o = np.linalg.norm(mouth - eyes), np.linalg.norm(POINTS[0, 1] - POINTS[0, 0])
    centre = eyes + c["shift"] * (mouth - eyes)
    half = 0.5 * np.array([c["w_mouth"] * d + c["w_eyes"] * o, c["h_mouth"] * d + c["h_eyes"] * o])
    np.testing.assert_allclose(np.concatenate([centre - half, centre + half]), BY_HAND[0], atol=1e-3)
    assert box["min_iou"] == LANDMARK_BOX_MIN_IOU
