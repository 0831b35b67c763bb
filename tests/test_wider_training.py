"""WIDER FACE in the MTCNN recipe: box conventions, the detection sets, fine-tuning starts, and
the operating point chosen on validation images."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facecascade.data.conventions import FACE_MASK_TO_WIDER, BoxConvention, fit_box_convention

from .shared_data import require


def test_box_convention_moves_each_side_by_a_fraction_of_the_box_hand_computed():
    box = np.array([[10.0, 20.0, 110.0, 220.0]])  # w 100, h 200
    moved = BoxConvention(left=0.05, top=-0.1, right=-0.02, bottom=0.25)(box)
    np.testing.assert_allclose(moved, [[10 + 5, 20 - 20, 110 - 2, 220 + 50]])
    assert moved.dtype == np.float32
    assert BoxConvention()(np.zeros((0, 4))).shape == (0, 4)


def test_fit_box_convention_recovers_the_shifts_it_was_made_with():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 500, (40, 2))
    size = rng.uniform(20, 120, (40, 2))
    source = np.concatenate([xy, xy + size], 1)
    truth = BoxConvention(left=0.04, top=-0.13, right=-0.05, bottom=-0.11)
    fitted, stats = fit_box_convention(source, truth(source))
    np.testing.assert_allclose(
        [fitted.left, fitted.top, fitted.right, fitted.bottom], [0.04, -0.13, -0.05, -0.11], atol=1e-4
    )
    assert stats["faces"] == 40 and stats["median_iou_after"] > 0.999 > stats["median_iou_before"]
    with pytest.raises(ValueError, match="at least 3 paired boxes"):
        fit_box_convention(source[:2], source[:2])


def test_face_mask_boxes_move_up_and_narrow_into_wider_convention():
    """face_mask boxes hold more chin and are wider than WIDER's (model card): the shipped
    convention moves the top and bottom up and both sides in."""
    x1, y1, x2, y2 = FACE_MASK_TO_WIDER(np.array([[0.0, 0.0, 100.0, 100.0]]))[0]
    assert y1 < 0 and y2 < 100 and x1 > 0 and x2 < 100


def test_recipe_detection_sets_hold_wider_with_invalid_faces_ignored(tmp_path):
    from dataclasses import replace

    from facecascade.train.recipe import Recipe, datasets, detection_sets

    data = require("wider_face").parent
    recipe = Recipe(data=data, out=tmp_path)
    face_mask, _, wider = detection_sets(recipe)
    assert {r.source for r in wider} == {"wider"} and len(wider) == 1239
    assert sum(len(r.boxes) for r in wider) == 6590 and any(r.ignore.any() for r in wider)
    plain_face_mask = detection_sets(replace(recipe, box_conventions=False))[0]
    np.testing.assert_allclose(face_mask[0].boxes, FACE_MASK_TO_WIDER(plain_face_mask[0].boxes))
    assert len(detection_sets(replace(recipe, wider=False))) == 2
    sources = [r.source for r in datasets(replace(recipe, limit=2), "train")]
    assert sources.count("wider") == 2 and "voc" in sources and "caltech" in sources


def test_wider_images_are_sampled_as_they_are_and_mirrored():
    from facecascade.data.records import FaceRecord
    from facecascade.train.recipe import _views

    image = np.zeros((40, 60, 3), np.uint8)
    rng = np.random.default_rng(0)
    wider = FaceRecord("a.jpg", np.array([[1.0, 2.0, 11.0, 14.0]]), source="wider")
    views = list(_views(image, wider, rng))
    assert len(views) == 2
    np.testing.assert_allclose(views[1][1].boxes, [[60 - 11, 2, 60 - 1, 14]])
    caltech = FaceRecord("b.jpg", np.array([[1.0, 2.0, 11.0, 14.0]]), source="caltech")
    assert len(list(_views(image, caltech, rng))) == 1


def test_init_starts_every_stage_from_the_given_cascade():
    from facecascade.models import load_mtcnn
    from facecascade.train.recipe import _new_net

    original = load_mtcnn("mtcnn-original")
    for stage in ("pnet", "rnet", "onet"):
        net = _new_net(stage, "mtcnn-original")
        start = getattr(original, stage).state_dict()
        for name, value in net.state_dict().items():
            if name in start:
                assert torch.equal(value, start[name]), (stage, name)
            else:  # the landmark head the original P-Net and R-Net lack starts fresh
                assert name.startswith("landmarks.")
    assert "landmarks.weight" in _new_net("pnet", "mtcnn-original").state_dict()


def test_operating_point_is_chosen_on_the_val_tune_halves_with_the_sets_own_boxes(tmp_path, monkeypatch):
    from dataclasses import replace

    from facecascade.data import select_split
    from facecascade.train import recipe as recipe_module

    seen: list = []

    def fake_choose(nets, per_set, device, preset=None):
        seen.extend(per_set)
        return (0.5, 0.5, 0.5), {}

    monkeypatch.setattr(recipe_module, "choose_thresholds", fake_choose)
    recipe = recipe_module.Recipe(data=require("wider_face").parent, out=tmp_path, tuning_images=5)
    assert recipe_module.operating_point(recipe, None) == ((0.5, 0.5, 0.5), {})  # type: ignore[arg-type]
    plain = recipe_module.detection_sets(replace(recipe, box_conventions=False))
    assert [[r.image for r in s] for s in seen] == [[r.image for r in select_split(s, "val-tune")[:5]] for s in plain]
    np.testing.assert_array_equal(seen[0][0].boxes, select_split(plain[0], "val-tune")[0].boxes)


def test_the_fast_path_uses_the_weights_own_fast_operating_point(tmp_path):
    from facecascade import FaceDetector
    from facecascade.models import load_mtcnn, save_mtcnn

    path = tmp_path / "w.pt"
    save_mtcnn(path, load_mtcnn("mtcnn"), {"thresholds": [0.3, 0.1, 0.2], "fast_thresholds": [0.5, 0.3, 0.4]})
    assert FaceDetector(weights=path).config.thresholds == (0.3, 0.1, 0.2)
    assert FaceDetector(weights=path, fast=True).config.thresholds == (0.5, 0.3, 0.4)
    assert FaceDetector(weights=path, fast=True, thresholds=(0.6, 0.7, 0.7)).config.thresholds == (0.6, 0.7, 0.7)
    save_mtcnn(path, load_mtcnn("mtcnn"), {"thresholds": [0.3, 0.1, 0.2]})  # older weights: one operating point
    assert FaceDetector(weights=path, fast=True).config.thresholds == (0.3, 0.1, 0.2)


def test_faces_of_other_sources_train_no_box_regression():
    """`SamplingConfig.box_sources`: positives and part faces of another source keep their label
    but get NaN box targets, which the loss leaves out (hand-computed)."""
    from facecascade.data.records import FaceRecord
    from facecascade.train.generate import SamplingConfig, pnet_samples, window_samples
    from facecascade.train.losses import SampleKind, TaskWeights, mtcnn_loss

    rng = np.random.default_rng(1)
    image = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    boxes = torch.tensor([[50.0, 30.0, 90.0, 70.0], [0.0, 0.0, 30.0, 30.0]])
    only_wider = SamplingConfig(box_sources=("wider",))
    for source, trained in (("wider", True), ("caltech", False)):
        record = FaceRecord("s.png", [[50.0, 30.0, 90.0, 74.0]], source=source)
        win = window_samples(image, record, boxes, 24, rng, only_wider)
        assert win.kinds.tolist() == [SampleKind.POSITIVE, SampleKind.NEGATIVE]
        assert np.isfinite(win.boxes[0]).all() == trained and (win.boxes[1] == 0).all()
        p = pnet_samples(image, record, rng, only_wider)
        with_box = (p.kinds == SampleKind.POSITIVE) | (p.kinds == SampleKind.PART)
        assert with_box.any() and np.isfinite(p.boxes[with_box]).all() == trained

    kinds = torch.tensor([SampleKind.POSITIVE, SampleKind.PART])
    targets = torch.tensor([[0.0] * 4, [float("nan")] * 4])
    offsets = torch.tensor([[0.1] * 4, [5.0] * 4], requires_grad=True)
    parts = mtcnn_loss(torch.zeros((2, 2)), offsets, None, kinds, targets, torch.zeros((2, 5, 2)), TaskWeights(), 1.0)
    assert parts.box.item() == pytest.approx(4 * 0.01)  # the NaN row is left out, not averaged in
    parts.total.backward()
    assert offsets.grad is not None and torch.isfinite(offsets.grad).all() and (offsets.grad[1] == 0).all()
