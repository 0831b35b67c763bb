"""`FaceAnalyzer`: the same faces as the detector, parts switched on and off, determinism, bad inputs."""

import numpy as np
import pytest
import torch

from facecascade import FaceAnalyzer, FaceDetector, Faces, load_image
from facecascade.testing.corpus import write_corpus

from .shared_data import require


@pytest.fixture(scope="module")
def photo():
    return load_image(require("dlib_faces/2008_002506.jpg"))


@pytest.fixture(scope="module")
def analyzer():
    return FaceAnalyzer(attributes=None)


class ShiftLandmarks:
    """A stand-in aligner: moves every landmark by (+1, +2)."""

    def align_arrays(self, images, faces):
        return [f.with_landmarks(f.landmarks + np.array([1.0, 2.0], np.float32)) for f in faces]


class MeanColour:
    """A stand-in attribute model: the crop's mean red and green as two 'probabilities'."""

    names = ("Red", "Green")

    def predict_arrays(self, images, faces):
        faces = faces if faces is not None else [Faces.whole_image(a) for a in images]
        out = []
        for image, f in zip(images, faces):
            crops = f.crops(image, size=16, align=False).reshape(len(f), -1, 3)
            out.append(f.with_attributes(crops[:, :, :2].mean(axis=1) / 255.0, self.names))
        return out


def _same(a: Faces, b: Faces):
    np.testing.assert_array_equal(a.boxes, b.boxes)
    np.testing.assert_array_equal(a.scores, b.scores)
    np.testing.assert_array_equal(a.landmarks, b.landmarks)
    np.testing.assert_array_equal(a.attributes, b.attributes)


def test_detector_only_equals_face_detector(analyzer, photo):
    faces = analyzer.analyze(photo)
    _same(faces, FaceDetector().detect(photo))
    assert len(faces) == 3 and faces.attributes.shape == (3, 0)


def test_default_parts_add_the_shipped_attributes(photo):
    from facecascade.attributes import AttributeClassifier

    faces = FaceAnalyzer().analyze(photo)
    detected = FaceDetector().detect(photo)
    np.testing.assert_array_equal(faces.boxes, detected.boxes)
    assert faces.attributes.shape == (3, 40) and "Smiling" in faces.attribute_names
    expected = AttributeClassifier("mcfa").predict(photo, detected)
    np.testing.assert_allclose(faces.attributes, expected.attributes, atol=1e-5)


def test_parts_run_in_order_and_attributes_reach_the_faces(photo):
    full = FaceAnalyzer(aligner=ShiftLandmarks(), attributes=MeanColour()).analyze(photo)
    plain = FaceAnalyzer(attributes=None).analyze(photo)
    np.testing.assert_allclose(full.landmarks, plain.landmarks + np.array([1.0, 2.0]), atol=1e-5)
    assert full.attribute_names == ("Red", "Green") and full.attributes.shape == (3, 2)
    assert ((full.attributes >= 0) & (full.attributes <= 1)).all()
    assert set(full.to_dicts()[0]["attributes"]) == {"Red", "Green"}


def test_without_a_detector_each_image_is_one_face(photo):
    faces = FaceAnalyzer(detector=None, attributes=MeanColour()).analyze(photo)
    np.testing.assert_array_equal(faces.boxes, [[0, 0, 500, 375]])
    assert faces.landmarks.shape == (1, 0, 2) and faces.attributes.shape == (1, 2)
    assert len(FaceAnalyzer(detector="none", attributes=None).analyze(photo)) == 1
    from facecascade.attributes import AttributeClassifier

    # with the shipped attribute model: the image itself is the crop, as predict_arrays without faces
    # (AttributeClassifier.predict without faces detects first: tests/test_pose.py)
    from facecascade.io import load_image

    crop = FaceAnalyzer(detector=None).analyze(photo)
    whole = AttributeClassifier().predict_arrays([load_image(photo)])[0]
    np.testing.assert_allclose(crop.attributes, whole.attributes, atol=1e-6)


def test_shipped_aligner_refines_the_detector_landmarks(analyzer, photo):
    detected = analyzer.analyze(photo)
    refined = FaceAnalyzer(aligner="dcrn", attributes=None).analyze(photo)
    np.testing.assert_array_equal(refined.boxes, detected.boxes)
    assert refined.landmarks.shape == detected.landmarks.shape and detected.iterations is None
    assert ((refined.iterations >= 1) & (refined.iterations <= 10)).all()
    moved = np.linalg.norm(refined.landmarks - detected.landmarks, axis=2).mean(1)
    eyes = np.linalg.norm(detected.landmarks[:, 1] - detected.landmarks[:, 0], axis=1)
    assert (moved > 0).all() and (moved < 0.5 * eyes).all()  # refined, but still the same faces' points


def test_unknown_parts_are_clear_errors():
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        FaceAnalyzer(attributes="nope.pt")
    with pytest.raises(ValueError, match="unknown aligner 'nope'"):
        FaceAnalyzer(aligner="nope")
    with pytest.raises(ValueError, match="predict_arrays"):
        FaceAnalyzer(attributes=ShiftLandmarks())
    with pytest.raises(ValueError, match="detector must be"):
        FaceAnalyzer(detector=3)
    with pytest.raises(ValueError, match="batch_size"):
        FaceAnalyzer(batch_size=0)


def test_deterministic_and_independent_of_batching(photo):
    images = [photo, photo[:200, :300].copy(), np.ascontiguousarray(photo[:, ::-1]), photo[::2, ::2].copy()]
    first = FaceAnalyzer(batch_size=4).analyze(images)
    again = FaceAnalyzer(batch_size=4).analyze(images)
    one_by_one = FaceAnalyzer(batch_size=1).analyze(images)
    assert first[0].attributes.shape == (len(first[0]), 40)
    for a, b in zip(first, again):
        _same(a, b)
    for a, b in zip(first, one_by_one):
        np.testing.assert_allclose(a.boxes, b.boxes, atol=1e-3)
        np.testing.assert_allclose(a.landmarks, b.landmarks, atol=1e-3)
        np.testing.assert_allclose(a.attributes, b.attributes, atol=1e-3)


@pytest.mark.parametrize(
    "bad, match",
    [
        (torch.full((3, 20, 20), float("nan")), "NaN"),
        (torch.zeros((3, 20, 20), dtype=torch.int64), "dtype"),
        (torch.zeros((2, 3, 20, 20, 1)), "must be"),
        (np.zeros((0, 10, 3), np.uint8), "empty"),
        (np.zeros((10, 10, 5), np.uint8), "must be"),
    ],
)
def test_bad_tensors_and_arrays_raise_value_error(analyzer, bad, match):
    with pytest.raises(ValueError, match=match):
        analyzer.analyze(bad)


def test_missing_and_unreadable_paths(analyzer, tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="nope.jpg"):
        analyzer.analyze(tmp_path / "nope.jpg")
    path = tmp_path / "locked.jpg"
    path.write_bytes(b"\xff\xd8")

    # chmod 000 does not stop the super-user, so the permission error is simulated where Pillow opens the file
    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("facecascade.io.Image.open", denied)
    with pytest.raises(ValueError, match="permission denied"):
        analyzer.analyze(path)


def test_every_readable_corpus_file_gives_a_correct_result(analyzer, photo, tmp_path):
    readable = write_corpus(tmp_path, photo)
    upright = analyzer.analyze(photo)
    for name, ok in readable.items():
        if not ok:
            with pytest.raises(ValueError):
                analyzer.analyze(tmp_path / name)
            continue
        faces = analyzer.analyze(tmp_path / name)
        if name == "one_pixel.png":
            assert len(faces) == 0 and faces.landmarks.shape == (0, 5, 2)
        elif name in ("exif_rotated.jpg", "png_named.jpg", "rgba.png", "cmyk.jpg", "animated.gif", "unreadable.jpg"):
            # same picture in the displayed orientation: the same faces, boxes within a few pixels
            assert len(faces) == len(upright), name

            def by_x(boxes):  # scores this close may swap the order
                return boxes[np.argsort(boxes[:, 0])]

            np.testing.assert_allclose(
                by_x(faces.boxes), by_x(upright.boxes), atol=8.0, err_msg=name
            )  # faces ~100 px; JPEG re-encoding moves boxes a few px
        else:  # grey, 16-bit and palette versions lose colour: faces still found
            assert len(faces) >= 2, name
