"""Training pieces: losses, hard sample mining, sample labelling and geometry, the loop."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from facecascade.data import FaceRecord
from facecascade.models import ONet, PNet, RNet
from facecascade.train.generate import SamplingConfig, around_faces, pnet_samples, window_samples
from facecascade.train.losses import (
    SampleKind,
    TaskWeights,
    euclidean_loss,
    hard_sample_classification_loss,
    mtcnn_loss,
)
from facecascade.train.samples import (
    SampleArrays,
    label_windows,
    load_samples,
    mirror_record,
    pnet_reference_boxes,
    save_samples,
)
from facecascade.train.trainer import TrainConfig, epoch_indices, train_stage

NEG, POS, PART, LM = (int(k) for k in SampleKind)


# -- losses -----------------------------------------------------------------------------------------


def test_hard_sample_loss_keeps_the_largest_losses():
    logits = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 3.0], [1.0, 0.0]])
    labels = torch.tensor([1, 1, 1, 0])
    ce = [math.log(2), math.log(1 + math.e**2), math.log(1 + math.e**-3), math.log(1 + math.e**-1)]
    # keep 0.5 of 4 -> the 2 largest: sample 1 (2.127) and sample 0 (0.693)
    expected = (ce[1] + ce[0]) / 2
    assert hard_sample_classification_loss(logits, labels, keep=0.5).item() == pytest.approx(expected, rel=1e-6)
    assert hard_sample_classification_loss(logits, labels, keep=1.0).item() == pytest.approx(sum(ce) / 4, rel=1e-6)
    # 70 % of 4 -> ceil(2.8) = 3 samples
    assert hard_sample_classification_loss(logits, labels, keep=0.7).item() == pytest.approx(
        (ce[1] + ce[0] + ce[3]) / 3, rel=1e-6
    )


def test_hard_sample_loss_gradient_only_from_hard_samples():
    logits = torch.tensor([[0.0, 5.0], [0.0, -5.0]], requires_grad=True)
    hard_sample_classification_loss(logits, torch.tensor([1, 1]), keep=0.5).backward()
    assert logits.grad[0].abs().sum() == 0 and logits.grad[1].abs().sum() > 0


def test_losses_of_empty_batches_are_zero_with_gradient_path():
    logits = torch.zeros((0, 2), requires_grad=True)
    loss = hard_sample_classification_loss(logits, torch.zeros(0, dtype=torch.long))
    assert loss.item() == 0.0
    loss.backward()
    assert euclidean_loss(torch.zeros((0, 4)), torch.zeros((0, 4))).item() == 0.0
    with pytest.raises(ValueError):
        hard_sample_classification_loss(logits, torch.zeros(0, dtype=torch.long), keep=0.0)


def test_euclidean_loss_hand_computed():
    pred = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
    target = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    assert euclidean_loss(pred, target).item() == pytest.approx((5 + 25) / 2)


def test_mtcnn_loss_each_task_sees_only_its_samples():
    kinds = torch.tensor([NEG, POS, PART, LM])
    logits = torch.tensor([[3.0, 0.0], [0.0, 3.0], [9.0, -9.0], [9.0, -9.0]])  # part/landmark logits: ignored
    offsets = torch.tensor([[7.0] * 4, [0.1] * 4, [0.2] * 4, [7.0] * 4])  # neg/landmark offsets: ignored
    targets = torch.zeros((4, 4))
    points = torch.zeros((4, 5, 2))
    points[0] = 9.0  # a negative's landmark output: ignored
    parts = mtcnn_loss(
        logits, offsets, points, kinds, targets, torch.zeros((4, 5, 2)), TaskWeights(1.0, 0.5, 1.0), keep=1.0
    )
    det = F.cross_entropy(logits[:2], torch.tensor([0, 1])).item()
    box = (4 * 0.01 + 4 * 0.04) / 2
    assert parts.det.item() == pytest.approx(det, rel=1e-6)
    assert parts.box.item() == pytest.approx(box, rel=1e-6)
    assert parts.landmark.item() == 0.0
    assert parts.total.item() == pytest.approx(det + 0.5 * box, rel=1e-6)


# -- labelling and geometry ---------------------------------------------------------------------------


def test_label_windows_iou_buckets_and_ignored_faces():
    faces = torch.tensor([[0.0, 0.0, 10.0, 10.0], [100.0, 100.0, 110.0, 110.0]])
    ignore = torch.tensor([False, True])
    boxes = torch.tensor(
        [
            [0.0, 0.0, 10.0, 10.0],  # IoU 1 -> positive
            [0.0, 0.0, 10.0, 5.0],  # IoU 0.5 -> part
            [0.0, 0.0, 10.0, 3.5],  # IoU 0.35 -> dropped (between 0.3 and 0.4)
            [50.0, 50.0, 60.0, 60.0],  # IoU 0 -> negative
            [100.0, 100.0, 110.0, 106.0],  # IoU 0.6 with an ignored face -> dropped, not negative
        ]
    )
    kinds, best = label_windows(boxes, faces, ignore)
    assert kinds.tolist() == [POS, PART, -1, NEG, -1]
    assert best[:2].tolist() == [0, 0]
    kinds, _ = label_windows(boxes, torch.zeros((0, 4)), torch.zeros(0, dtype=torch.bool))
    assert (kinds == NEG).all()


def test_pnet_reference_box_is_the_inference_box():
    windows = torch.tensor([[24, 36, 48, 60]])  # S = 24 -> scale 0.5
    assert pnet_reference_boxes(windows).tolist() == [[26.0, 38.0, 48.0, 60.0]]


def test_mirror_record_swaps_sides_and_round_trips():
    image = np.arange(4 * 10 * 3, dtype=np.uint8).reshape(4, 10, 3)
    points = np.array([[[2.0, 1.0], [6.0, 1.0], [4.0, 2.0], [3.0, 3.0], [5.0, 3.0]]], np.float32)
    record = FaceRecord("x.jpg", [[1.0, 0.0, 7.0, 4.0]], landmarks=points)
    flipped_image, flipped = mirror_record(image, record)
    assert np.array_equal(flipped_image[:, 0], image[:, -1])
    assert flipped.boxes.tolist() == [[3.0, 0.0, 9.0, 4.0]]
    assert flipped.landmarks[0, 0].tolist() == [9 - 6.0, 1.0]  # new left eye = old right eye, mirrored
    assert flipped.landmarks[0, 3].tolist() == [9 - 5.0, 3.0]
    back_image, back = mirror_record(flipped_image, flipped)
    assert np.array_equal(back_image, image)
    assert np.allclose(back.boxes, record.boxes) and np.allclose(back.landmarks, record.landmarks)


def test_around_faces_gives_squares_near_the_face():
    rng = np.random.default_rng(0)
    boxes = around_faces(rng, np.array([[100.0, 100.0, 140.0, 150.0]]), 200)
    side = boxes[:, 2] - boxes[:, 0]
    assert np.allclose(side, boxes[:, 3] - boxes[:, 1], atol=1e-3)
    assert side.min() >= 0.8 * 40 - 1e-3 and side.max() <= 1.25 * 50 + 1e-3


def _photo_with_face(rng):
    image = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    return image, FaceRecord("synthetic.png", [[50.0, 30.0, 90.0, 74.0]])


def test_generated_samples_have_consistent_labels_and_targets():
    rng = np.random.default_rng(1)
    image, record = _photo_with_face(rng)
    samples = pnet_samples(image, record, rng, SamplingConfig())
    assert samples.images.shape[1:] == (12, 12, 3) and samples.images.dtype == np.uint8
    counts = samples.counts()
    assert counts["negative"] > 0 and counts["positive"] > 0 and counts["part"] > 0
    neg = samples.kinds == NEG
    assert np.all(samples.boxes[neg] == 0)
    assert np.abs(samples.boxes[samples.kinds == POS]).max() < 0.6
    boxes = torch.tensor([[50.0, 30.0, 90.0, 70.0], [0.0, 0.0, 30.0, 30.0]])
    win = window_samples(image, record, boxes, 24, rng, SamplingConfig())
    assert win.kinds.tolist() == [POS, NEG] and win.images.shape == (2, 24, 24, 3)


def test_landmark_faces_carry_relative_points():
    rng = np.random.default_rng(2)
    image = rng.integers(0, 255, (100, 100, 3), dtype=np.uint8)
    points = np.array([[[35.0, 40.0], [65.0, 40.0], [50.0, 55.0], [38.0, 70.0], [62.0, 70.0]]], np.float32)
    record = FaceRecord("lm.png", [[20.0, 20.0, 80.0, 85.0]], landmarks=points)
    boxes = torch.tensor([[20.0, 22.0, 80.0, 82.0], [0.0, 0.0, 20.0, 20.0]])
    samples = window_samples(image, record, boxes, 48, rng, SamplingConfig(), landmark=True)
    assert samples.kinds.tolist() == [LM]
    # the same windows as detection samples: the face is a positive, no negatives from a face crop
    assert window_samples(image, record, boxes, 48, rng, SamplingConfig()).kinds.tolist() == [POS]
    rel = samples.landmarks[0]
    assert 0.0 < rel[:, 0].min() < rel[:, 0].max() < 1.0
    assert rel[0, 0] < rel[1, 0] and rel[3, 1] > rel[2, 1] > rel[0, 1]


def test_samples_round_trip_through_npy(tmp_path):
    rng = np.random.default_rng(3)
    image, record = _photo_with_face(rng)
    samples = pnet_samples(image, record, rng, SamplingConfig())
    save_samples(tmp_path / "s", samples)
    back = load_samples(tmp_path / "s")
    for name in ("images", "kinds", "boxes", "landmarks"):
        assert np.array_equal(np.asarray(getattr(back, name)), getattr(samples, name))
    with pytest.raises(FileNotFoundError):
        load_samples(tmp_path / "missing")


# -- the loop -----------------------------------------------------------------------------------------


def test_epoch_indices_follow_the_ratio():
    kinds = np.array([NEG] * 100 + [POS] * 10 + [PART] * 50 + [LM] * 5, np.int8)
    idx = epoch_indices(kinds, (3, 1, 1, 2), 700, np.random.default_rng(0))
    got = np.bincount(kinds[idx], minlength=4)
    assert got.tolist() == [300, 100, 100, 200]
    no_lm = epoch_indices(kinds[:160], (3, 1, 1, 2), 500, np.random.default_rng(0))
    assert np.bincount(kinds[no_lm], minlength=4)[3] == 0


def _toy_samples(n: int, size: int, rng) -> SampleArrays:
    """Faces are bright squares on dark noise: learnable in a few steps."""
    kinds = rng.integers(0, 4, n).astype(np.int8)
    images = rng.integers(0, 60, (n, size, size, 3)).astype(np.uint8)
    q = size // 4
    images[kinds != NEG, q:-q, q:-q] = 220
    boxes = np.where((kinds == POS) | (kinds == PART), 0.1, 0.0)[:, None].repeat(4, 1).astype(np.float32)
    landmarks = np.where(kinds == LM, 0.5, 0.0)[:, None, None].repeat(5, 1).repeat(2, 2).astype(np.float32)
    return SampleArrays(images, kinds, boxes, landmarks)


@pytest.mark.parametrize("net_cls, size, n", [(PNet, 12, 512), (RNet, 24, 512), (ONet, 48, 512)])
def test_a_few_training_steps_lower_the_loss(tmp_path, net_cls, size, n):
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    samples = _toy_samples(n, size, rng)
    cfg = TrainConfig(epochs=3, batch_size=64, lr=3e-3, samples_per_epoch=n, seed=0, low_res=0.5, low_res_min=6)
    from facecascade.train.trainer import evaluate

    net = net_cls(landmarks=5)
    before = evaluate(net, samples, cfg, torch.device("cpu"))
    train_stage(net, samples, samples, cfg, tmp_path / "run", quiet=True)
    after = evaluate(net, samples, cfg, torch.device("cpu"))
    assert after["total"] < 0.7 * before["total"]
    assert after["accuracy"] > 0.9
    log = (tmp_path / "run" / "log.csv").read_text().splitlines()
    assert log[0].startswith("epoch,step,split") and any(",val," in line for line in log)


def test_training_resumes_from_its_checkpoint(tmp_path):
    rng = np.random.default_rng(0)
    samples = _toy_samples(256, 12, rng)
    cfg = TrainConfig(epochs=1, batch_size=64, samples_per_epoch=256, seed=0)
    train_stage(PNet(landmarks=5), samples, None, cfg, tmp_path, quiet=True)
    first = torch.load(tmp_path / "last.pt", weights_only=True)
    assert first["epoch"] == 1
    resumed = train_stage(
        PNet(landmarks=5), samples, None, TrainConfig(**{**cfg.__dict__, "epochs": 2}), tmp_path, quiet=True
    )
    assert torch.load(tmp_path / "last.pt", weights_only=True)["epoch"] == 2
    # a run asked for no more epochs than done loads the checkpoint and trains nothing
    again = train_stage(
        PNet(landmarks=5), samples, None, TrainConfig(**{**cfg.__dict__, "epochs": 2}), tmp_path, quiet=True
    )
    for a, b in zip(resumed.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)


def test_train_cli_runs_the_whole_recipe_on_real_data(tmp_path):
    """`facecascade train mtcnn` end to end on a few real images: samples for every stage (mined by
    the stages trained before), three trained stages, a loadable cascade, and a resumable run."""
    from facecascade import FaceDetector
    from facecascade.cli import main

    from .shared_data import require

    data = require("face_mask").parent
    args = [
        "train",
        "mtcnn",
        "--data",
        str(data),
        "--out",
        str(tmp_path),
        "--limit",
        "3",
        "--epochs",
        "1",
        "--samples-per-epoch",
        "256",
        "--tuning-images",
        "1",
        "-q",
    ]
    assert main(args) == 0
    for stage in ("pnet", "rnet", "onet"):
        counts = (tmp_path / "samples" / stage / "train" / "counts.json").read_text()
        assert '"landmark"' in counts
        assert (tmp_path / stage / "log.csv").read_text().count(",val,") == 1
    faces = FaceDetector(weights=tmp_path / "mtcnn.pt").detect(np.zeros((64, 64, 3), np.uint8))
    assert faces.boxes.shape[1] == 4
    assert main(args) == 0  # everything present: resumes, trains nothing more
    assert (tmp_path / "pnet" / "log.csv").read_text().count(",val,") == 1
    assert main(["train", "mtcnn", "--data", str(tmp_path / "nope"), "--out", str(tmp_path)]) == 2


def test_stage_settings_follow_the_paper_and_the_ablation_switches(tmp_path):
    from facecascade.train.recipe import Recipe, stage_config

    base = Recipe(data=tmp_path, out=tmp_path)
    assert tuple(stage_config(base, "pnet").weights) == (1.0, 0.5, 0.5)
    assert tuple(stage_config(base, "rnet").weights) == (1.0, 0.5, 0.5)
    onet = stage_config(base, "onet")
    assert tuple(onet.weights) == (1.0, 0.5, 1.0) and onet.keep == 0.7 and onet.ratio == (3.0, 1.0, 1.0, 2.0)
    assert stage_config(Recipe(data=tmp_path, out=tmp_path, ohem=False), "onet").keep == 1.0
    no_lm = stage_config(Recipe(data=tmp_path, out=tmp_path, landmarks=False), "onet")
    assert no_lm.weights.landmark == 0.0 and no_lm.ratio[3] == 0.0
    assert stage_config(base, "pnet").low_res == 0.0 and onet.low_res > 0 and stage_config(base, "rnet").low_res > 0
    assert stage_config(Recipe(data=tmp_path, out=tmp_path, low_res=False), "onet").low_res == 0.0
    assert onet.lr == 1e-3 and stage_config(Recipe(data=tmp_path, out=tmp_path, lr=1e-4), "onet").lr == 1e-4  # --lr


def test_low_resolution_replays_area_down_and_up_sampling_by_hand():
    from facecascade.train.augment import low_resolution

    x = torch.arange(9.0).view(1, 1, 3, 3)
    # 3 -> 2 (area bins [0, 2) and [1, 3)) -> 3 (bins [0, 1), [0, 2), [1, 2))
    expected = torch.tensor([[2.0, 2.5, 3.0], [3.5, 4.0, 4.5], [5.0, 5.5, 6.0]])
    assert torch.equal(low_resolution(x, 1.0, 2)[0, 0], expected)
    assert torch.equal(x, torch.arange(9.0).view(1, 1, 3, 3))  # input untouched


def test_low_resolution_share_and_invariants():
    from facecascade.train.augment import low_resolution

    torch.manual_seed(0)
    x = torch.rand(400, 3, 24, 24)
    assert low_resolution(x, 0.0, 16) is x and low_resolution(x, 1.0, 24) is x
    y = low_resolution(x, 0.5, 16)
    changed = (y != x).flatten(1).any(1).float().mean()
    assert 0.4 < changed < 0.6
    # area resampling keeps a sample's mean and a flat sample flat
    assert torch.allclose(y.mean((1, 2, 3)), x.mean((1, 2, 3)), atol=0.02)
    flat = torch.full((8, 3, 24, 24), 0.25)
    assert torch.allclose(low_resolution(flat, 1.0, 16), flat)
    with pytest.raises(ValueError, match="square"):
        low_resolution(torch.rand(2, 3, 24, 20), 0.5, 16)


def test_small_faces_get_more_windows():
    from facecascade.train.generate import SamplingConfig, _weighted_faces

    faces = np.array([[0, 0, 20, 40], [0, 0, 50, 60], [5, 5, 36, 37]], np.float32)  # short sides 20, 50, 31
    out = _weighted_faces(faces, SamplingConfig(small_face=32.0, small_face_repeat=3))
    assert out.tolist() == [faces[0].tolist()] * 3 + [faces[1].tolist()] + [faces[2].tolist()] * 3
    assert _weighted_faces(faces, SamplingConfig(small_face_repeat=1)).tolist() == faces.tolist()
    assert _weighted_faces(np.zeros((0, 4), np.float32), SamplingConfig()).shape == (0, 4)
