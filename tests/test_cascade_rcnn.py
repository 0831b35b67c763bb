"""Two-stage detectors: box deltas, per-stage matching, resampling, the probability ensemble, the
Table 1 modes, training (loss falls, resume, separate RPN training), COCO AP, the generic
multi-class COCO path."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from facecascade.data.coco import read_coco
from facecascade.data.records import FaceRecord
from facecascade.eval.coco_metrics import coco_ap
from facecascade.models.cascade_heads import CASCADE, CascadeRoIHeads, HeadsConfig, match_labels
from facecascade.models.cascade_rcnn import CascadeRCNN, RCNNConfig
from facecascade.models.rcnn_weights import load_rcnn, save_rcnn
from facecascade.ops.coding import decode_deltas, encode_deltas
from facecascade.train.rcnn import RCNNTrainConfig, phases, train_rcnn

SMALL = {
    "min_size": 96,
    "max_size": 128,
    "widths": (8, 16, 16, 32),
    "fpn_channels": 16,
    "anchor_sizes": (8, 16, 32, 64, 128),
}


def _small(mode: str = "cascade", classes: int = 1) -> CascadeRCNN:
    return CascadeRCNN(RCNNConfig(mode=mode, num_classes=classes, **SMALL))


# -- box deltas --------------------------------------------------------------------------------


def test_deltas_hand_computed_and_round_trip():
    boxes = torch.tensor([[0.0, 0.0, 10.0, 20.0]])
    target = torch.tensor([[1.0, 2.0, 11.0, 42.0]])  # centre +1 / +12, width x1, height x2
    deltas = encode_deltas(boxes, target, (0.1, 0.1, 0.2, 0.2))
    torch.testing.assert_close(deltas, torch.tensor([[1.0, 6.0, 0.0, float(np.log(2.0)) / 0.2]]))
    torch.testing.assert_close(decode_deltas(boxes, deltas, (0.1, 0.1, 0.2, 0.2)), target)
    rng = torch.Generator().manual_seed(0)
    a = torch.rand(50, 2, generator=rng) * 100
    boxes = torch.cat([a, a + 5 + torch.rand(50, 2, generator=rng) * 50], 1)
    b = torch.rand(50, 2, generator=rng) * 100
    targets = torch.cat([b, b + 5 + torch.rand(50, 2, generator=rng) * 50], 1)
    for stage in CASCADE:
        back = decode_deltas(boxes, encode_deltas(boxes, targets, stage.std), stage.std)
        torch.testing.assert_close(back, targets, atol=1e-3, rtol=1e-5)


# -- matching at each stage's IoU ----------------------------------------------------------------


def _box_at_iou(iou: float) -> list[float]:
    """A 100 x 100 box shifted right so that its IoU with [0, 0, 100, 100] is ``iou``."""
    d = 100 * (1 - iou) / (1 + iou)
    return [d, 0.0, 100 + d, 100.0]


def test_match_labels_per_threshold():
    gt = torch.tensor([[0.0, 0.0, 100.0, 100.0], [300.0, 300.0, 350.0, 350.0]])
    labels = torch.tensor([3, 1])
    boxes = torch.tensor(
        [_box_at_iou(0.75), _box_at_iou(0.65), _box_at_iou(0.55), _box_at_iou(0.3), [300.0, 300.0, 350.0, 350.0]]
    )
    got, matched = match_labels(boxes, gt, labels, (0.5, 0.6, 0.7))
    assert got.tolist() == [[3, 3, 3, 0, 1], [3, 3, 0, 0, 1], [3, 0, 0, 0, 1]]
    assert matched[[0, 1, 2, 4]].tolist() == [0, 0, 0, 1]
    none, _ = match_labels(boxes, torch.zeros((0, 4)), torch.zeros(0, dtype=torch.long), (0.5,))
    assert none.tolist() == [[0, 0, 0, 0, 0]]


# -- resampling and the ensemble ---------------------------------------------------------------


def _fixed_heads(probs: list[float], deltas: list[list[float]]) -> CascadeRoIHeads:
    """Cascade heads whose stage t always says face with probability ``probs[t]`` and regresses
    by ``deltas[t]`` (zero weights, set biases)."""
    heads = CascadeRoIHeads(HeadsConfig(in_channels=4, featmap_names=("0",), rois_per_image=16))
    with torch.no_grad():
        for head, p, d in zip(heads.heads, probs, deltas):
            for layer in [*head.classifiers, head.regressor]:
                layer.weight.zero_()
            head.classifiers[0].bias.copy_(torch.tensor([0.0, float(np.log(p / (1 - p)))]))
            head.regressor.bias.copy_(torch.tensor(d))
    return heads


def _record_rois(heads: CascadeRoIHeads) -> list[torch.Tensor]:
    seen = []
    align = heads.roi_features.forward

    def spy(features, boxes, image_sizes):
        seen.append(torch.cat(boxes).clone())
        return align(features, boxes, image_sizes)

    heads.roi_features.forward = spy
    return seen


def test_training_stage_gets_previous_stage_boxes():
    torch.manual_seed(0)
    deltas = [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]
    heads = _fixed_heads([0.5, 0.5, 0.5], deltas).train()
    seen = _record_rois(heads)
    features = {"0": torch.randn(1, 4, 32, 32)}
    proposals = [torch.tensor([[10.0, 10.0, 50.0, 50.0], [60.0, 20.0, 100.0, 70.0], [5.0, 60.0, 25.0, 90.0]])]
    targets = [{"boxes": torch.tensor([[12.0, 12.0, 52.0, 52.0]]), "labels": torch.tensor([1])}]
    losses = heads(features, proposals, [(128, 128)], targets)
    assert sorted(losses) == sorted(f"loss_{k}_stage{t}" for k in ("cls", "box") for t in (1, 2, 3))
    for t in (1, 2):
        before, after = seen[t - 1], seen[t]
        gt_row = (before == targets[0]["boxes"]).all(1)
        moved = decode_deltas(
            before[~gt_row], torch.tensor([deltas[t - 1]]).expand(int((~gt_row).sum()), 4), CASCADE[t - 1].std
        ).clamp(0, 128)
        # stage t + 1 sees stage t's regressed boxes (sampled, ground-truth copies dropped) plus the
        # ground truth added again
        expected = torch.cat([moved, targets[0]["boxes"]])
        assert torch.allclose(torch.sort(after, 0)[0], torch.sort(expected, 0)[0], atol=1e-4)


def test_inference_scores_are_the_stage_average_on_the_last_boxes():
    heads = _fixed_heads([0.9, 0.6, 0.3], [[0.0] * 4] * 3).eval()
    seen = _record_rois(heads)
    features = {"0": torch.randn(1, 4, 32, 32)}
    proposals = [torch.tensor([[10.0, 10.0, 50.0, 50.0]])]
    with torch.no_grad():
        out = heads(features, proposals, [(128, 128)])[0]
    torch.testing.assert_close(out["scores"], torch.tensor([0.6]))  # (0.9 + 0.6 + 0.3) / 3
    assert len(seen) == 3  # one RoIAlign per stage
    roi_features = torch.randn(5, 4 * 49)
    by_hand = torch.stack([torch.softmax(h(roi_features)[0][0], -1) for h in heads.heads]).mean(0)
    torch.testing.assert_close(heads.ensemble_probabilities(roi_features), by_hand)


@pytest.mark.parametrize(
    "mode, heads, classifiers, steps",
    [("cascade", 3, 1, 3), ("baseline", 1, 1, 1), ("iterative", 1, 1, 3), ("integral", 1, 3, 1)],
)
def test_table1_modes_are_configurations(mode, heads, classifiers, steps):
    model = _small(mode).eval()
    assert len(model.roi_heads.heads) == heads
    assert all(len(h.classifiers) == classifiers for h in model.roi_heads.heads)
    seen = _record_rois(model.roi_heads)
    with torch.no_grad():
        out = model([torch.rand(3, 96, 128)])
    assert len(seen) == steps and set(out[0]) == {"boxes", "scores", "labels", "proposal"}
    assert out[0]["boxes"].shape[1] == 4 and len(out[0]["boxes"]) == len(out[0]["scores"])


def test_config_rejects_unknown_mode():
    with pytest.raises(ValueError, match="mode"):
        RCNNConfig(mode="cascade4")


def test_checkpoint_round_trip(tmp_path):
    model = _small("integral", classes=3)
    save_rcnn(tmp_path / "m.pt", model, {"classes": ["a", "b", "c"]})
    loaded, meta = load_rcnn(tmp_path / "m.pt")
    assert loaded.cfg == model.cfg and meta["classes"] == ["a", "b", "c"]
    for a, b in zip(model.state_dict().values(), loaded.state_dict().values()):
        assert torch.equal(a, b)


# -- training -----------------------------------------------------------------------------------


def _squares(write_image, n: int = 4) -> list[FaceRecord]:
    """Images with a bright square (class 1) and a dark disc-ish square (class 2) on noise."""
    rng = np.random.default_rng(0)
    records = []
    for i in range(n):
        image = rng.integers(90, 140, (96, 128, 3), dtype=np.uint8)
        x, y = rng.integers(5, 60), rng.integers(5, 40)
        image[y : y + 30, x : x + 30] = 250
        image[60:90, 90:120] = 10
        path = write_image(f"sq{i}.png", image)
        records.append(
            FaceRecord(path, np.array([[x, y, x + 30, y + 30], [90, 60, 120, 90]], np.float32), labels=np.array([1, 2]))
        )
    return records


def test_a_few_training_steps_lower_the_loss(write_image, tmp_path):
    records = _squares(write_image)
    model = _small("cascade", classes=2)
    cfg = RCNNTrainConfig(iterations=40, batch_size=2, lr=0.01, warmup=5, checkpoint_every=40, log_every=1, flip=False)
    train_rcnn(model, records, cfg, tmp_path / "run", quiet=True)
    rows = (tmp_path / "run" / "log.csv").read_text().splitlines()
    totals = [float(r.split(",")[3]) for r in rows[1:]]
    assert len(totals) == 40
    assert np.mean(totals[-8:]) < 0.7 * np.mean(totals[:8])


def test_training_resumes_and_separate_rpn_freezes_the_backbone(write_image, tmp_path):
    records = _squares(write_image, 2)
    cfg = RCNNTrainConfig(
        iterations=4, batch_size=1, lr=0.01, warmup=1, checkpoint_every=1, log_every=1, rpn="separate"
    )
    assert phases(cfg) == [("rpn", 0, 2), ("heads", 2, 4)]
    model = _small("baseline", classes=2)
    assert not set(map(id, model.trainable_parameters("heads"))) & set(map(id, model.backbone.parameters()))
    train_rcnn(model, records, cfg, tmp_path / "run", quiet=True, steps=2)  # interrupted after 2
    backbone = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    heads = {k: v.clone() for k, v in model.roi_heads.state_dict().items()}
    resumed = _small("baseline", classes=2)
    train_rcnn(resumed, records, cfg, tmp_path / "run", quiet=True)  # continues at step 2
    steps = [r.split(",")[:2] for r in (tmp_path / "run" / "log.csv").read_text().splitlines()[1:]]
    assert steps == [["rpn", "1"], ["rpn", "2"], ["heads", "3"], ["heads", "4"]]
    for k, v in resumed.backbone.state_dict().items():
        assert torch.equal(v, backbone[k]), k  # frozen in the heads phase
    assert any(not torch.equal(v, heads[k]) for k, v in resumed.roi_heads.state_dict().items())
    with pytest.raises(ValueError, match="class 2"):
        train_rcnn(_small("baseline"), records, cfg, tmp_path / "other", quiet=True)


def test_heads_phase_sends_no_gradient_to_backbone_or_rpn():
    model = _small("cascade").train()
    target = [{"boxes": torch.tensor([[10.0, 10.0, 60.0, 60.0]]), "labels": torch.tensor([1])}]
    losses = model([torch.rand(3, 96, 128)], target, parts="heads")
    assert not any(k.startswith("loss_rpn") or k == "loss_objectness" for k in losses)
    sum(losses.values()).backward()
    assert all(p.grad is None for p in [*model.backbone.parameters(), *model.rpn.parameters()])
    assert any(p.grad is not None for p in model.roi_heads.parameters())
    with pytest.raises(ValueError, match="parts"):
        model([torch.rand(3, 96, 128)], target, parts="backbone")


# -- COCO AP and the generic multi-class path --------------------------------------------------------


def test_coco_ap_hand_computed():
    records = [
        FaceRecord("a.jpg", np.array([[0, 0, 100, 100], [200, 0, 240, 40]], np.float32), ignore=np.array([False, True]))
    ]
    perfect = coco_ap(records, [{"boxes": np.array([[0, 0, 100, 100]]), "scores": np.array([0.9])}])
    assert perfect["AP"] == pytest.approx(1.0) and perfect["AP90"] == pytest.approx(1.0)
    shifted = [{"boxes": np.array([_box_at_iou(0.67), [200, 0, 240, 40]]), "scores": np.array([0.9, 0.8])}]
    got = coco_ap(records, shifted)  # the second detection sits on an ignored region
    assert got["AP50"] == pytest.approx(1.0) and got["AP60"] == pytest.approx(1.0)
    assert got["AP70"] == 0.0 and got["AP75"] == 0.0
    assert got["AP"] == pytest.approx(0.4)  # IoU 0.67 passes 0.5, 0.55, 0.6, 0.65
    empty = coco_ap(records, [{"boxes": np.zeros((0, 4)), "scores": np.zeros(0)}])
    assert empty["AP"] == 0.0
    with pytest.raises(ValueError):
        coco_ap(records, [])


def test_coco_multiclass_records_train_and_detect(write_image, tmp_path):
    squares = _squares(write_image, 2)
    coco = {
        "images": [{"id": i, "file_name": r.image.name} for i, r in enumerate(squares)],
        "categories": [{"id": 7, "name": "bright"}, {"id": 3, "name": "dark"}],
        "annotations": [
            {
                "id": 10 * i + k,
                "image_id": i,
                "category_id": (7, 3)[k],
                "bbox": [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])],
            }
            for i, r in enumerate(squares)
            for k, b in enumerate(r.boxes)
        ],
    }
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(coco))
    records = read_coco(path, squares[0].image.parent)
    assert [r.labels.tolist() for r in records] == [[2, 1], [2, 1]]  # ids 3 -> 1, 7 -> 2
    model = _small("cascade", classes=2)
    train_rcnn(model, records, RCNNTrainConfig(iterations=2, batch_size=1, warmup=1), tmp_path / "run", quiet=True)
    with torch.no_grad():
        out = model.eval()([torch.rand(3, 96, 128)])
    assert out[0]["labels"].numel() == 0 or set(out[0]["labels"].tolist()) <= {1, 2}
    assert isinstance(model.roi_heads.heads[0].classifiers[0], nn.Linear)
    assert model.roi_heads.heads[0].classifiers[0].out_features == 3  # background + 2 classes


def test_face_detector_runs_two_stage_checkpoints(tmp_path):
    """``FaceDetector(weights=<rcnn checkpoint>)``: the same `Faces` contract, best first, with the
    5 landmarks from the DCRN aligner on each box; the MTCNN-only options are refused."""
    from facecascade import FaceDetector

    from .shared_data import require

    path = tmp_path / "rcnn.pt"
    save_rcnn(path, _small("cascade"))
    detector = FaceDetector(weights=path)
    faces = detector.detect(require("dlib_faces/2008_002506.jpg"))
    assert faces.boxes.shape[1:] == (4,) and faces.landmarks.shape == (len(faces), 5, 2)
    assert np.all(np.diff(faces.scores) <= 0)
    assert detector.detect([np.zeros((40, 50, 3), np.uint8)] * 2)[1].boxes.shape[1:] == (4,)
    with pytest.raises(ValueError, match="fast"):
        FaceDetector(weights=path, fast=True)
    with pytest.raises(AttributeError, match="two-stage"):
        _ = detector.config


def test_shipped_two_stage_weights_find_the_three_faces():
    """The shipped ``"cascade-rcnn"`` and ``"faster-rcnn"`` weights on the 3-face photo: three
    faces above the reporting threshold, on the three people the MTCNN detector finds."""
    from torchvision.ops import box_iou

    from facecascade import FaceDetector

    from .shared_data import require

    photo = require("dlib_faces/2008_002506.jpg")
    reference = FaceDetector().detect(photo)
    for weights in ("cascade-rcnn", "faster-rcnn"):
        faces = FaceDetector(weights=weights).detect(photo)
        assert len(faces) == 3 and faces.scores.min() >= 0.5, weights
        iou = box_iou(torch.from_numpy(reference.boxes), torch.from_numpy(faces.boxes)).numpy()
        assert (iou.max(1) >= 0.5).all(), weights


def test_frozen_rpn_trains_heads_on_another_detectors_backbone(write_image, tmp_path):
    """``rpn="frozen"``: the heads alone, on the backbone and RPN copied from another detector."""
    from facecascade.train.rcnn import load_backbone_and_rpn

    records = _squares(write_image, 2)
    donor, model = _small("cascade", classes=2), _small("cascade", classes=2)
    load_backbone_and_rpn(model, donor)
    cfg = RCNNTrainConfig(iterations=3, batch_size=1, lr=0.01, warmup=1, checkpoint_every=3, rpn="frozen")
    assert phases(cfg) == [("heads", 0, 3)]
    heads = {k: v.clone() for k, v in model.roi_heads.state_dict().items()}
    train_rcnn(model, records, cfg, tmp_path / "run", quiet=True)
    for k, v in model.backbone.state_dict().items():
        assert torch.equal(v, donor.backbone.state_dict()[k]), k
    for k, v in model.rpn.state_dict().items():
        assert torch.equal(v, donor.rpn.state_dict()[k]), k
    assert any(not torch.equal(v, heads[k]) for k, v in model.roi_heads.state_dict().items())
    with pytest.raises(ValueError, match="rpn must be"):
        RCNNTrainConfig(rpn="alternating")
