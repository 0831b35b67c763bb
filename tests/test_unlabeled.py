"""Faces left unannotated, flagged by an earlier cascade and ignored when sampling."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from facecascade import Faces
from facecascade.data import FaceRecord
from facecascade.train.losses import SampleKind
from facecascade.train.samples import label_windows
from facecascade.train.unlabeled import (
    MAX_IOU,
    MIN_SCORE,
    SEARCH_THRESHOLDS,
    cached_unlabeled,
    find_unlabeled,
    mark_unlabeled,
    unlabeled_boxes,
    with_ignored,
)


def _record(path="a.jpg", landmarks=False) -> FaceRecord:
    points = np.arange(10, dtype=np.float32).reshape(1, 5, 2) if landmarks else None
    return FaceRecord(path, np.array([[0, 0, 10, 10]], np.float32), landmarks=points)


def test_unlabeled_boxes_keep_confident_detections_away_from_annotations():
    detections = np.array(
        [
            [0, 0, 10, 10],  # the annotated face
            [20, 20, 30, 30],  # elsewhere, confident: unlabelled
            [40, 40, 50, 50],  # elsewhere, not confident
            [5, 0, 15, 10],  # IoU 50 / 150 = 0.333 with the face: same face
            [7, 0, 17, 10],
        ],  # IoU 30 / 170 = 0.176: another face
        np.float32,
    )
    scores = np.array([0.99, 0.9, MIN_SCORE - 0.01, 0.9, MIN_SCORE])
    found = unlabeled_boxes(_record(), detections, scores)
    np.testing.assert_array_equal(found, detections[[1, 4]])
    assert found.dtype == np.float32
    assert len(unlabeled_boxes(_record(), np.zeros((0, 4)), np.zeros(0))) == 0
    empty = FaceRecord("b.jpg", np.zeros((0, 4), np.float32))
    np.testing.assert_array_equal(unlabeled_boxes(empty, detections, scores), detections[[0, 1, 3, 4]])
    assert MAX_IOU == 0.3  # the negative bound of sampling: what overlaps less is another face


def test_with_ignored_appends_ignored_faces_without_points():
    record = _record(landmarks=True)
    extra = np.array([[20, 20, 30, 30], [40, 40, 50, 52]], np.float32)
    marked = with_ignored(record, extra)
    np.testing.assert_array_equal(marked.boxes, np.concatenate([record.boxes, extra]))
    assert marked.ignore.tolist() == [False, True, True]
    assert marked.has_landmarks.tolist() == [True, False, False]
    np.testing.assert_array_equal(marked.landmarks[0], record.landmarks[0])
    assert with_ignored(record, np.zeros((0, 4))) is record
    assert with_ignored(_record(), extra).landmarks is None


def test_a_window_on_an_unlabelled_face_is_dropped_not_a_negative():
    record = _record()
    windows = torch.tensor([[20.0, 20, 30, 30], [60, 60, 70, 70]])
    before, _ = label_windows(windows, torch.from_numpy(record.boxes), torch.from_numpy(record.ignore))
    assert before.tolist() == [SampleKind.NEGATIVE, SampleKind.NEGATIVE]
    marked = mark_unlabeled([record], {"a.jpg": [[20, 20, 30, 30]]})[0]
    after, _ = label_windows(windows, torch.from_numpy(marked.boxes), torch.from_numpy(marked.ignore))
    assert after.tolist() == [-1, SampleKind.NEGATIVE]


class _FakeDetector:
    """Returns the same two faces for every readable image."""

    def __init__(self):
        self.calls = 0

    def detect_arrays(self, arrays):
        self.calls += len(arrays)
        boxes = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], np.float32)
        return [Faces(boxes, np.array([0.9, 0.8], np.float32), np.zeros((2, 5, 2), np.float32)) for _ in arrays]


def test_find_unlabeled_skips_unreadable_images(tmp_path):
    from PIL import Image

    good = tmp_path / "good.png"
    Image.new("RGB", (40, 40)).save(good)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    detector = _FakeDetector()
    found = find_unlabeled([_record(good), _record(bad), _record(tmp_path / "missing.jpg")], detector, quiet=True)
    assert found == {str(good): [[20.0, 20.0, 30.0, 30.0]]}
    assert detector.calls == 1


def test_cached_unlabeled_reads_a_matching_cache_and_redoes_a_stale_one(tmp_path):
    """The cache is keyed by the weights' contents: the same bytes under another path hit it, a
    file replaced under the same path does not."""
    import shutil

    from facecascade.models.weights import weights_fingerprint
    from facecascade.registry import PACKAGED

    records = [_record(tmp_path / "a.jpg")]
    cache = tmp_path / "unlabeled.json"
    weights = tmp_path / "r1.pt"
    shutil.copyfile(PACKAGED / "mtcnn.pt", weights)
    key = {
        "sha256": weights_fingerprint("mtcnn"),
        "thresholds": list(SEARCH_THRESHOLDS),
        "min_score": MIN_SCORE,
        "max_iou": MAX_IOU,
        "images": 1,
    }
    cache.write_text(json.dumps({"key": key, "boxes": {"x": [[1, 2, 3, 4]]}}))
    assert cached_unlabeled(records, str(weights), cache, quiet=True) == {"x": [[1, 2, 3, 4]]}
    weights.write_bytes(b"other weights")  # replaced under the same path: stale, so it detects again
    with pytest.raises(ValueError, match="r1.pt"):
        cached_unlabeled(records, str(weights), cache, quiet=True)
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        cached_unlabeled(records, str(tmp_path / "missing.pt"), cache, quiet=True)


def test_the_recipe_samples_with_unlabelled_faces_ignored_on_detection_images_only(tmp_path):
    """`sampled_records` on real images: the shipped weights' unannotated detections join the
    detection records as ignored faces (cached), landmark records stay as they are."""
    from facecascade.train.recipe import Recipe, datasets, sampled_records

    from .shared_data import require

    data = require("face_mask").parent
    recipe = Recipe(data=data, out=tmp_path, limit=4, ignore_unlabeled="mtcnn")
    plain = datasets(recipe, "train")
    marked = sampled_records(recipe, "train")
    assert [r.image for r in marked] == [r.image for r in plain]
    cached = json.loads((tmp_path / "unlabeled_train.json").read_text())
    assert cached["weights"] == "mtcnn" and cached["key"]["images"] == 12  # 4 face_mask + 4 Caltech + 4 WIDER
    added = 0
    for before, after in zip(plain, marked):
        extra = len(after) - len(before)
        assert extra == len(cached["boxes"].get(str(before.image), []))
        assert after.ignore[len(before) :].all() and not after.ignore[: len(before)].any()
        assert extra == 0 or before.landmarks is None
        added += extra
    assert added == sum(len(b) for b in cached["boxes"].values())
    cached["boxes"] = {str(plain[0].image): [[1.0, 2.0, 30.0, 40.0]]}  # a second call reads the cache
    (tmp_path / "unlabeled_train.json").write_text(json.dumps(cached))
    again = sampled_records(recipe, "train")
    np.testing.assert_array_equal(again[0].boxes[-1], [1, 2, 30, 40])
    assert again[0].ignore[-1] and [len(r) for r in again[1:]] == [len(r) for r in plain[1:]]


def test_a_higher_min_score_flags_a_subset_and_keys_the_cache(tmp_path):
    from dataclasses import replace

    from facecascade.train.recipe import Recipe, sampled_records

    from .shared_data import require

    data = require("face_mask").parent
    loose = Recipe(data=data, out=tmp_path / "loose", limit=6, ignore_unlabeled="mtcnn-original", ignore_min_score=0.3)
    strict = replace(loose, out=tmp_path / "strict", ignore_min_score=0.99)
    flagged = {
        name: json.loads((r.out / "unlabeled_train.json").read_text())
        for name, r in (("loose", loose), ("strict", strict))
        if sampled_records(r, "train")
    }
    assert flagged["loose"]["key"]["min_score"] == 0.3 and flagged["strict"]["key"]["min_score"] == 0.99
    loose_boxes = {(k, tuple(b)) for k, v in flagged["loose"]["boxes"].items() for b in v}
    strict_boxes = {(k, tuple(b)) for k, v in flagged["strict"]["boxes"].items() for b in v}
    assert strict_boxes < loose_boxes  # on these 12 images the looser cut flags strictly more


def test_train_cli_rejects_unloadable_ignore_weights_before_any_work(tmp_path, capsys):
    from facecascade.cli import main

    from .shared_data import require

    data = require("face_mask").parent
    for weights in ("no-such-weights", str(tmp_path / "missing.pt")):
        code = main(
            [
                "train",
                "mtcnn",
                "--data",
                str(data),
                "--out",
                str(tmp_path / "run"),
                "--limit",
                "1",
                "--ignore-unlabeled",
                weights,
                "-q",
            ]
        )
        assert code == 2
        assert "--ignore-unlabeled" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
