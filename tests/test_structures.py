"""`facecascade.structures.Faces`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from facecascade.structures import Faces


def _faces(n: int = 3, k: int = 5) -> Faces:
    boxes = np.arange(n * 4, dtype=np.float64).reshape(n, 4)
    scores = np.linspace(0.5, 0.9, n)
    landmarks = np.arange(n * k * 2, dtype=np.float64).reshape(n, k, 2) + 0.5
    return Faces(boxes, scores, landmarks)


def _check_arrays(f: Faces, n: int, k: int) -> None:
    assert f.boxes.shape == (n, 4)
    assert f.scores.shape == (n,)
    assert f.landmarks.shape == (n, k, 2)
    for a in (f.boxes, f.scores, f.landmarks):
        assert isinstance(a, np.ndarray)
        assert a.dtype == np.float32
        assert a.flags["C_CONTIGUOUS"]
    assert len(f) == n


def test_shapes_dtypes_and_values_are_converted():
    f = _faces(3, 5)
    _check_arrays(f, 3, 5)
    np.testing.assert_array_equal(f.boxes, np.arange(12, dtype=np.float32).reshape(3, 4))
    np.testing.assert_allclose(f.scores, [0.5, 0.7, 0.9], rtol=1e-6)
    assert f.landmarks[2, 4, 1] == 29.5  # arange index 2*10 + 4*2 + 1, plus 0.5


def test_non_contiguous_inputs_become_contiguous():
    boxes = np.asfortranarray(np.arange(8, dtype=np.float32).reshape(2, 4))
    scores = np.arange(4, dtype=np.float32)[::2]  # strided view
    landmarks = np.arange(40, dtype=np.float32).reshape(2, 2, 5, 2)[:, 0]  # non-contiguous slice
    assert not boxes.flags["C_CONTIGUOUS"] and not landmarks.flags["C_CONTIGUOUS"]
    f = Faces(boxes, scores, landmarks)
    _check_arrays(f, 2, 5)
    np.testing.assert_array_equal(f.boxes, boxes)
    np.testing.assert_array_equal(f.scores, [0, 2])
    np.testing.assert_array_equal(f.landmarks, landmarks)


def test_list_inputs_are_accepted():
    f = Faces([[1, 2, 3, 4]], [0.5], [[[1, 2]] * 5])
    _check_arrays(f, 1, 5)


@pytest.mark.parametrize("boxes", [np.zeros((0, 4)), np.zeros((0,)), []])
def test_empty_faces_have_shaped_arrays_not_none(boxes):
    f = Faces(boxes, np.zeros(0))
    _check_arrays(f, 0, 0)
    assert f.landmarks is not None


def test_none_landmarks_give_k_zero():
    f = Faces(np.ones((2, 4)), np.ones(2))
    _check_arrays(f, 2, 0)


@pytest.mark.parametrize("k", [5, 0, 68])
def test_empty_classmethod(k):
    f = Faces.empty(k)
    _check_arrays(f, 0, k)
    assert f.to_dicts() == []


def test_empty_default_has_five_landmarks():
    _check_arrays(Faces.empty(), 0, 5)


def test_to_dicts_schema_and_json():
    f = _faces(2, 5)
    dicts = f.to_dicts()
    assert len(dicts) == 2
    for i, d in enumerate(dicts):
        assert set(d) == {"box", "score", "landmarks"}
        assert d["box"] == [float(v) for v in f.boxes[i]]
        assert d["score"] == pytest.approx(float(f.scores[i]))
        assert len(d["landmarks"]) == 5
        assert all(len(p) == 2 for p in d["landmarks"])
        values = d["box"] + [d["score"]] + [c for p in d["landmarks"] for c in p]
        assert all(type(v) is float for v in values)  # plain python floats, not np.float32
    assert dicts[1]["box"] == [4.0, 5.0, 6.0, 7.0]
    assert dicts[1]["landmarks"][0] == [10.5, 11.5]
    round_trip = json.loads(json.dumps(dicts))
    assert round_trip == dicts


def test_to_dicts_omits_landmarks_when_k_is_zero():
    f = Faces(np.array([[1.0, 2.0, 3.0, 4.0]]), np.array([0.25]))
    dicts = f.to_dicts()
    assert dicts == [{"box": [1.0, 2.0, 3.0, 4.0], "score": 0.25}]
    json.dumps(dicts)


def test_getitem_int_returns_faces_of_one():
    f = _faces(3, 5)
    for index in (1, np.int64(1), -2):
        g = f[index]
        assert isinstance(g, Faces)
        _check_arrays(g, 1, 5)
        np.testing.assert_array_equal(g.boxes[0], f.boxes[1])
        np.testing.assert_array_equal(g.landmarks[0], f.landmarks[1])
        assert g.scores[0] == f.scores[1]


def test_getitem_slice():
    f = _faces(4, 5)
    g = f[1:3]
    assert isinstance(g, Faces)
    _check_arrays(g, 2, 5)
    np.testing.assert_array_equal(g.boxes, f.boxes[1:3])
    np.testing.assert_array_equal(g.scores, f.scores[1:3])
    np.testing.assert_array_equal(g.landmarks, f.landmarks[1:3])
    _check_arrays(f[3:3], 0, 5)


def test_getitem_bool_mask_and_index_array():
    f = _faces(4, 5)
    mask = f.scores > 0.7  # scores 0.5, 0.633, 0.767, 0.9
    g = f[mask]
    assert isinstance(g, Faces)
    assert len(g) == int(mask.sum()) == 2
    np.testing.assert_array_equal(g.scores, f.scores[mask])
    np.testing.assert_array_equal(g.landmarks, f.landmarks[mask])
    none = f[np.zeros(4, bool)]
    _check_arrays(none, 0, 5)
    h = f[np.array([3, 0])]
    np.testing.assert_array_equal(h.boxes, f.boxes[[3, 0]])


def test_getitem_keeps_k_zero():
    f = Faces(np.ones((3, 4)), np.ones(3))
    _check_arrays(f[1:], 2, 0)
    assert "landmarks" not in f[0].to_dicts()[0]


@pytest.mark.parametrize(
    "boxes, scores, landmarks",
    [
        (np.zeros((3, 4)), np.zeros(2), None),  # fewer scores than boxes
        (np.zeros((2, 4)), np.zeros(3), None),  # more scores than boxes
        (np.zeros((2, 4)), np.zeros(2), np.zeros((3, 5, 2))),  # landmarks for 3 faces
        (np.zeros((2, 4)), np.zeros(2), np.zeros((2, 5, 3))),  # not (x, y)
        (np.zeros((2, 4)), np.zeros(2), np.zeros((2, 10))),  # flat landmarks
        (np.zeros((2, 5)), np.zeros(2), None),  # 5 box coordinates
        (np.zeros((2, 2, 4)), np.zeros(2), None),  # 3-D boxes
        (np.zeros(4), np.zeros(1), None),  # 1-D box
    ],
)
def test_mismatched_shapes_raise(boxes, scores, landmarks):
    with pytest.raises(ValueError):
        Faces(boxes, scores, landmarks)


def test_repr_mentions_counts():
    assert repr(_faces(3, 5)) == "Faces(n=3, landmarks=5)"


def test_iterations_follow_the_faces_and_are_checked():
    faces = Faces(np.array([[0, 0, 10, 10], [5, 5, 20, 20]]), [0.9, 0.8], iterations=[2, 3])
    assert faces[1].iterations.tolist() == [3] and faces[[1, 0]].iterations.tolist() == [3, 2]
    assert faces.with_attributes(np.zeros((2, 1)), ["a"]).iterations.tolist() == [2, 3]
    assert faces.with_landmarks(np.zeros((2, 5, 2))).iterations is None  # new landmarks, no steps
    assert [d["iterations"] for d in faces.to_dicts()] == [2, 3]
    assert "iterations" not in Faces(faces.boxes, faces.scores).to_dicts()[0]
    with pytest.raises(ValueError, match="iterations"):
        Faces(faces.boxes, faces.scores, iterations=[1])
