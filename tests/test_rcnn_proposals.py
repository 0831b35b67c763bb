"""Two-stage heads fed by the MTCNN cascade (issue 26): crop features, per-source box regressors,
the proposal cache and training on given proposals."""

from __future__ import annotations

import csv
import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from facecascade.data.records import FaceRecord
from facecascade.eval.cli import choose_conventions
from facecascade.models.cascade_heads import CascadeRoIHeads, HeadsConfig, pick_convention
from facecascade.models.cascade_rcnn import CascadeRCNN, RCNNConfig
from facecascade.models.proposal_source import ProposalSource
from facecascade.models.rcnn_weights import load_rcnn, save_rcnn
from facecascade.models.roi_crops import CropRoIFeatures
from facecascade.ops.boxes import mirror_boxes
from facecascade.train.rcnn import RCNNTrainConfig, train_rcnn
from facecascade.train.rcnn_proposals import (
    cached_proposals,
    jittered,
    load_proposals,
    save_proposals,
)

CROPS = {
    "proposals": "mtcnn",
    "features": "crops",
    "crop_side": 16,
    "crop_widths": (8, 16),
    "crop_strides": (2, 1),
    "heads": HeadsConfig(representation=32, rois_per_image=16),
}


def _crops_model(mode: str = "cascade", conventions: tuple[str, ...] = ()) -> CascadeRCNN:
    return CascadeRCNN(RCNNConfig(mode=mode, conventions=conventions, **CROPS))


# -- pieces -------------------------------------------------------------------------------------


def test_mirror_boxes_hand_computed():
    boxes = np.array([[10.0, 5.0, 30.0, 25.0]], np.float32)
    np.testing.assert_array_equal(mirror_boxes(boxes, 100), [[70.0, 5.0, 90.0, 25.0]])
    np.testing.assert_array_equal(mirror_boxes(mirror_boxes(boxes, 100), 100), boxes)
    flipped = mirror_boxes(torch.from_numpy(boxes), 100)  # a tensor comes back as a tensor
    assert isinstance(flipped, torch.Tensor) and flipped.tolist() == [[70.0, 5.0, 90.0, 25.0]]


def test_jittered_boxes_stay_within_the_spread():
    rng = np.random.default_rng(0)
    boxes = np.array([[0.0, 0.0, 100.0, 50.0], [200.0, 100.0, 240.0, 180.0]], np.float32)
    out = jittered(boxes, 50, 0.2, rng)
    assert out.shape == (100, 4)
    for source, copies in zip(boxes, out.reshape(2, 50, 4)):
        w, h = source[2] - source[0], source[3] - source[1]
        centre = (source[:2] + source[2:]) / 2
        moved = ((copies[:, :2] + copies[:, 2:]) / 2 - centre) / [w, h]
        sides = (copies[:, 2:] - copies[:, :2]) / [w, h]
        assert np.abs(moved).max() <= 0.2 + 1e-5 and moved.std() > 0.05  # spread out, within bounds
        assert sides.min() >= 0.8 - 1e-5 and sides.max() <= 1.2 + 1e-5
    assert jittered(boxes, 0, 0.2, rng).shape == (0, 4)
    assert jittered(np.zeros((0, 4), np.float32), 5, 0.2, rng).shape == (0, 4)


def test_pick_convention_hand_computed():
    deltas = torch.arange(16.0).view(2, 8)  # two boxes, two conventions of 4 deltas each
    assert pick_convention(deltas, 1).tolist() == [[4.0, 5.0, 6.0, 7.0], [12.0, 13.0, 14.0, 15.0]]
    assert pick_convention(deltas, torch.tensor([1, 0])).tolist() == [[4.0, 5.0, 6.0, 7.0], [8.0, 9.0, 10.0, 11.0]]
    assert pick_convention(torch.zeros(0, 8), 1).shape == (0, 4)


def test_crop_regions_and_pixels():
    crops = CropRoIFeatures(side=8, context=2.0, widths=(4,), strides=(1,))
    box = torch.tensor([[10.0, 20.0, 14.0, 24.0]])
    assert crops.crop_boxes(box).tolist() == [[8.0, 18.0, 16.0, 26.0]]  # twice the side about the centre
    image = torch.arange(40.0)[None, None, :].expand(3, 40, 40)  # each pixel's value is its x
    cut = crops.crops(image, box)
    assert cut.shape == (1, 3, 8, 8)
    torch.testing.assert_close(cut[0, 0, 0], torch.arange(8.0) + 8.0)  # one pixel per cell, from x = 8
    assert crops({"image": [image]}, [box], [(40, 40)]).shape == (1, 4, 4, 4)
    assert crops({"image": [image]}, [torch.zeros(0, 4)], [(40, 40)]).shape == (0, 4, 4, 4)
    with pytest.raises(ValueError, match="context"):
        CropRoIFeatures(context=0.5)


# -- the detector -------------------------------------------------------------------------------


def _boxes_seen(model: CascadeRCNN) -> list[torch.Tensor]:
    """The first image's boxes at each call of the model's RoI features, recorded."""
    seen = []
    features = model.roi_heads.roi_features.forward

    def spy(f, boxes, sizes):
        seen.append(boxes[0].clone())
        return features(f, boxes, sizes)

    model.roi_heads.roi_features.forward = spy
    return seen


def test_config_checks_and_round_trip(tmp_path):
    with pytest.raises(ValueError, match="crops"):
        RCNNConfig(features="crops")  # no feature map for an RPN
    with pytest.raises(ValueError, match="proposals must be"):
        RCNNConfig(proposals="selective-search")
    with pytest.raises(ValueError, match="thresholds"):
        ProposalSource(thresholds=(0.5, 0.5))
    model = _crops_model(conventions=("wider", "voc"))
    assert model.rpn is None and model.backbone is None
    assert model.roi_heads.heads[0].regressor.out_features == 8
    save_rcnn(tmp_path / "m.pt", model)
    loaded, _ = load_rcnn(tmp_path / "m.pt")
    assert loaded.cfg == model.cfg and loaded.cfg.proposal_source == ProposalSource()
    assert model.cfg.convention_index("voc") == 1 and RCNNConfig().convention_index("voc") == 0
    with pytest.raises(ValueError, match="no box convention"):
        model.use_convention("caltech")


def test_given_proposals_are_required_exactly_without_an_rpn_in_training():
    image = [torch.rand(3, 40, 50)]
    target = [{"boxes": torch.tensor([[5.0, 5.0, 30.0, 30.0]]), "labels": torch.tensor([1])}]
    with pytest.raises(ValueError, match="needs its proposals"):
        _crops_model().train()(image, target)
    with pytest.raises(ValueError, match="takes none"):
        CascadeRCNN(RCNNConfig(min_size=64, max_size=64)).eval()(image, proposals=[torch.zeros(0, 4)])
    with torch.no_grad():
        out = _crops_model().eval()(image, proposals=[torch.zeros(0, 4)])
    assert out[0]["boxes"].shape == (0, 4) and _crops_model().eval()([], proposals=[]) == []


def test_fpn_features_with_given_proposals_scale_them_to_the_resized_image():
    """features="fpn" with given proposals: the image is resized for the backbone and the
    proposals with it; the boxes come back in the image's pixels."""
    model = CascadeRCNN(RCNNConfig(proposals="mtcnn", min_size=64, max_size=64, widths=(8, 8, 8, 8), fpn_channels=8))
    seen = _boxes_seen(model)
    with torch.no_grad():
        out = model.eval()([torch.rand(3, 128, 128)], proposals=[torch.tensor([[20.0, 40.0, 60.0, 100.0]])])
    torch.testing.assert_close(seen[0], torch.tensor([[10.0, 20.0, 30.0, 50.0]]))  # half size
    assert out[0]["boxes"].shape[1] == 4 and (out[0]["boxes"] <= 128).all()


def test_each_source_trains_its_own_regressor():
    heads = CascadeRoIHeads(HeadsConfig(in_channels=4, featmap_names=("0",), rois_per_image=8, conventions=2)).train()
    features = {"0": torch.randn(1, 4, 32, 32)}
    proposals = [torch.tensor([[10.0, 10.0, 50.0, 50.0], [14.0, 12.0, 52.0, 55.0]])]
    target = {"boxes": torch.tensor([[12.0, 12.0, 52.0, 52.0]]), "labels": torch.tensor([1])}
    losses = heads(features, proposals, [(128, 128)], [{**target, "convention": torch.tensor(1)}])
    sum(v for k, v in losses.items() if "box" in k).backward()
    grad = heads.heads[0].regressor.weight.grad
    assert grad[:4].abs().sum() == 0 and grad[4:].abs().sum() > 0  # only source 1's rows
    with pytest.raises(ValueError, match="beyond"):
        heads(features, proposals, [(128, 128)], [{**target, "convention": torch.tensor(2)}])


def test_inference_uses_the_chosen_convention():
    model = _crops_model("baseline", conventions=("wider", "voc")).eval()
    with torch.no_grad():
        regressor = model.roi_heads.heads[0].regressor
        regressor.weight.zero_()
        regressor.bias.copy_(torch.tensor([0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0]))  # voc: move down
        classifier = model.roi_heads.heads[0].classifiers[0]
        classifier.weight.zero_()
        classifier.bias.copy_(torch.tensor([0.0, 5.0]))
    image, box = [torch.rand(3, 80, 80)], [torch.tensor([[20.0, 20.0, 40.0, 40.0]])]
    with torch.no_grad():
        wider = model(image, proposals=box)[0]["boxes"]
        model.use_convention("voc")
        voc = model(image, proposals=box)[0]["boxes"]
    torch.testing.assert_close(wider, box[0])
    torch.testing.assert_close(voc, box[0] + torch.tensor([0.0, 2.0, 0.0, 2.0]))  # dy = 1 * std 0.1 * 20 px


# -- training on given proposals ------------------------------------------------------------------


def _faces(write_image, n: int = 4) -> list[FaceRecord]:
    """Bright squares on noise, every other image from a second source."""
    rng = np.random.default_rng(0)
    records = []
    for i in range(n):
        image = rng.integers(60, 120, (80, 96, 3), dtype=np.uint8)
        x, y = int(rng.integers(5, 55)), int(rng.integers(5, 40))
        image[y : y + 28, x : x + 28] = 240
        box = np.array([[x, y, x + 28, y + 28]], np.float32)
        records.append(FaceRecord(write_image(f"f{i}.png", image), box, source=("wider", "voc")[i % 2]))
    return records


def test_a_few_steps_on_given_proposals_lower_the_loss(write_image, tmp_path):
    records = _faces(write_image)
    proposals = {str(r.image): (r.boxes + 3.0, np.array([0.9], np.float32)) for r in records}
    model = _crops_model(conventions=("wider", "voc"))
    cfg = RCNNTrainConfig(
        iterations=60, batch_size=2, lr=0.02, warmup=5, checkpoint_every=60, log_every=1, jitter_spread=0.1
    )
    train_rcnn(model, records, cfg, tmp_path / "run", quiet=True, proposals=proposals)
    with open(tmp_path / "run" / "log.csv", newline="") as log:
        rows = list(csv.DictReader(log))
    # the classifiers learn within 60 steps (the regressors, on fresh jittered boxes each step, are slower)
    cls = [sum(float(row[f"loss_cls_stage{t}"]) for t in (1, 2, 3)) for row in rows]
    assert len(cls) == 60 and np.mean(cls[-10:]) < 0.5 * np.mean(cls[:10])
    with pytest.raises(ValueError, match="exactly"):
        train_rcnn(_crops_model(), records, cfg, tmp_path / "other", quiet=True)  # no proposals given
    with pytest.raises(ValueError, match="separate"):
        separate = RCNNTrainConfig(iterations=2, rpn="separate")
        train_rcnn(_crops_model(), records, separate, tmp_path / "sep", quiet=True, proposals=proposals)


def test_proposal_cache_round_trip_and_reuse(write_image, tmp_path, monkeypatch):
    import facecascade.train.rcnn_proposals as module

    records = _faces(write_image, 3)
    calls = []

    def fake(chosen, source, quiet=False):
        calls.append(len(chosen))
        return {str(r.image): (r.boxes, np.array([0.5], np.float32)) for r in chosen}

    monkeypatch.setattr(module, "compute_proposals", fake)
    path, source = tmp_path / "p.npz", ProposalSource()
    first = cached_proposals(records[:2], source, path)
    again = cached_proposals(records, source, path)  # only the third is computed
    assert calls == [2, 1] and len(again) == 3
    for record in records:
        np.testing.assert_array_equal(again[str(record.image)][0], record.boxes)
    assert set(first) < set(again)
    assert load_proposals(path, ProposalSource(thresholds=(0.5, 0.5, 0.5))) is None  # other settings
    save_proposals(tmp_path / "empty.npz", {}, source)
    assert load_proposals(tmp_path / "empty.npz", source) == {}


def test_eval_points_each_detector_at_the_data_sources_convention(write_image):
    records = _faces(write_image, 2)

    class Stub:
        def __init__(self, conventions):
            self.conventions = conventions
            self.model = _crops_model(conventions=conventions)

    voc_only = [r for r in records if r.source == "voc"]
    detectors = {"a": Stub(("wider", "voc")), "b": Stub(("wider", "caltech")), "mtcnn": object()}
    assert choose_conventions(detectors, voc_only, "auto") == {"a": "voc", "b": "wider"}
    assert detectors["a"].model.roi_heads.convention == 1
    assert choose_conventions(detectors, records, "auto") == {"a": "wider", "b": "wider"}  # mixed sources
    assert choose_conventions({"a": detectors["a"]}, voc_only, "default") == {"a": "wider"}
    with pytest.raises(ValueError, match="no box convention"):
        choose_conventions(detectors, voc_only, "voc")  # b has none for voc


def test_without_given_proposals_inference_runs_the_mtcnn_source():
    """At inference a detector without an RPN runs its own MTCNN source: the heads see exactly the
    boxes `ProposalSource.detector` finds on the same image."""
    from facecascade.io import load_image
    from facecascade.models.cascade_rcnn import image_input

    from .shared_data import require

    array = load_image(require("dlib_faces/2008_002506.jpg"))
    model = _crops_model().eval()
    seen = _boxes_seen(model)
    model.roi_heads.cfg = replace(model.roi_heads.cfg, score_thresh=0.0)  # keep the untrained heads' boxes
    with torch.no_grad():
        found = model([image_input(array)])[0]
    expected = ProposalSource().detector(small_image_side=0).detect(array)
    assert len(expected) >= 3
    torch.testing.assert_close(seen[0], torch.from_numpy(expected.boxes))
    # each detection keeps the 5 points of the proposal its box refines
    assert len(found["proposal"]) >= 1
    torch.testing.assert_close(found["landmarks"], torch.from_numpy(expected.landmarks)[found["proposal"]])


def test_proposal_scores_blend_into_the_heads_by_a_weighted_geometric_mean():
    model = _crops_model("baseline").eval()
    assert model.roi_heads.cfg.prior_weight == 0.5
    with torch.no_grad():
        classifier = model.roi_heads.heads[0].classifiers[0]
        classifier.weight.zero_()
        classifier.bias.copy_(torch.tensor([0.0, float(np.log(0.64 / 0.36))]))  # p = 0.64
        features = {"image": [torch.rand(3, 60, 60)]}
        boxes = [torch.tensor([[10.0, 10.0, 30.0, 30.0]])]
        out = model.roi_heads(features, boxes, [(60, 60)], prior_scores=[torch.tensor([0.25])])[0]
        alone = model.roi_heads(features, boxes, [(60, 60)])[0]
    torch.testing.assert_close(out["scores"], torch.tensor([0.4]))  # sqrt(0.64 * 0.25)
    torch.testing.assert_close(alone["scores"], torch.tensor([0.64]))
    assert CascadeRCNN(RCNNConfig(min_size=64, max_size=64)).roi_heads.cfg.prior_weight == 0.0  # own RPN
    with pytest.raises(ValueError, match="prior_weight"):
        HeadsConfig(prior_weight=1.5)


def test_shipped_cascade_draws_face_mask_boxes_lower_than_wider_boxes():
    """The shipped weights learnt each source's convention: face_mask's boxes of the same faces sit
    lower than WIDER FACE's (more chin, less forehead; `FACE_MASK_TO_WIDER` measures it on the
    annotations), on the same proposals."""
    from facecascade import FaceDetector

    from .shared_data import require

    photo = require("dlib_faces/2008_002506.jpg")
    wider = FaceDetector(weights="cascade-rcnn").detect(photo)
    voc = FaceDetector(weights="cascade-rcnn", box_convention="voc").detect(photo)
    assert len(wider) == len(voc) == 3
    order = [np.argsort(f.boxes[:, 0]) for f in (wider, voc)]
    w, v = wider.boxes[order[0]], voc.boxes[order[1]]
    height = w[:, 3] - w[:, 1]
    assert (((v[:, 1] + v[:, 3]) - (w[:, 1] + w[:, 3])) / 2 > 0.03 * height).all()


def test_detect_cli_box_convention(tmp_path):
    from facecascade.cli import main

    from .shared_data import require

    photo = str(require("dlib_faces/2008_002506.jpg"))
    assert main(["detect", photo, "--box-convention", "voc", "-q"]) == 2  # mtcnn has one convention
    out = tmp_path / "faces.json"
    assert main(["detect", photo, "--weights", "cascade-rcnn", "--box-convention", "caltech", "--json", str(out)]) == 0
    assert len(next(iter(json.loads(out.read_text()).values()))) == 3


def test_shipped_two_stage_weights_run_the_mtcnn_they_were_trained_on():
    """The heads learnt one MTCNN's boxes: their checkpoints name it (``mtcnn-2026-12-05``, the default
    `mtcnn` of that day, shipped on for them) and the SHA-256 of the file they were trained on."""
    from facecascade.registry import weights_info

    for name in ("cascade-rcnn", "faster-rcnn"):
        model, meta = load_rcnn(name)
        source = model.cfg.proposal_source
        assert model.cfg.proposals == "mtcnn" and source.weights == "mtcnn-2026-12-05", name
        trained_on = list(meta["proposal_weights_sha256"].values())  # {"mtcnn.pt": sha}: the file as then named
        assert trained_on == list(weights_info(source.weights).sha256.values()), name


def test_train_rcnn_takes_the_proposal_weights(tmp_path, capsys):
    """``--proposal-weights`` reaches the proposal source (the shipped heads need mtcnn-2026-12-05's boxes)."""
    from facecascade.cli import main

    from .shared_data import require

    require("face_mask/annotations")
    args = ["train", "rcnn", "--out", str(tmp_path), "--proposals", "mtcnn", "--features", "crops", "--limit", "2"]
    assert main([*args, "--iterations", "1", "--proposal-weights", "no-such-weights", "-q"]) == 1
    assert "unknown weights 'no-such-weights'" in capsys.readouterr().err
