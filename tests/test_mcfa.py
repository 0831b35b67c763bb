"""MCFA: the network's shapes and dynamic weights, the masked multi-task losses, the attribute
metrics by hand, crops and targets, training steps whose loss falls, checkpoints and the classifier."""

import numpy as np
import pytest
import torch

from facecascade import Faces
from facecascade.attributes import AttributeClassifier
from facecascade.eval.attributes import attribute_accuracy, majority_accuracy
from facecascade.models.mcfa import MCFAConfig, MCFANet
from facecascade.models.mcfa_weights import load_mcfa, save_mcfa
from facecascade.ops.align import box_transforms, warp_batch, warp_crops
from facecascade.train.mcfa import MCFATrainConfig, attribute_loss, mcfa_loss, subnet_loss, train_batch
from facecascade.train.mcfa_data import FaceSet, face_batch

SMALL = MCFAConfig(
    s_widths=(4, 8, 8), s_feature=16, m_widths=(4, 8, 8, 8), l_widths=(4, 8, 8, 8, 8), fc=16, head=16, num_attributes=6
)


@pytest.fixture()
def net():
    torch.manual_seed(0)
    return MCFANet(SMALL)


def _faces(n=8, d=6, seed=0, share=0.3):
    """``n`` random 60 x 50 faces, one box and 5 points for all, ``d`` attributes present at ``share``."""
    rng = np.random.default_rng(seed)
    images = torch.from_numpy(rng.integers(0, 256, (n, 3, 60, 50), dtype=np.uint8))
    boxes = np.tile(np.array([[12, 15, 38, 47]], np.float32), (n, 1))
    points = np.tile(np.array([[[19, 26], [31, 26], [25, 33], [20, 40], [30, 40]]], np.float32), (n, 1, 1))
    labels = (rng.random((n, d)) < share).astype(np.float32)
    return FaceSet(images, boxes, points, labels, tuple(f"a{i}" for i in range(d)))


def test_three_outputs_with_weights_that_sum_to_one(net):
    outs = net(torch.randn(5, 3, 96, 96))
    assert len(outs) == 3
    for o in outs:
        assert o.logits.shape == (5, 2) and o.box.shape == (5, 4) and o.landmarks.shape == (5, 5, 2)
        assert o.attributes.shape == (5, 6) and o.weights.shape == (5, 6)
        torch.testing.assert_close(o.weights.sum(1), torch.ones(5))
    with pytest.raises(ValueError, match="96"):
        net(torch.randn(1, 3, 64, 64))


def test_weight_fit_reaches_the_weighting_layer_only(net):
    out = net(torch.randn(4, 3, 96, 96))[2]
    _, fit = attribute_loss(out.attributes, torch.ones(4, 6), out.weights, "dynamic")
    fit.backward()
    head = net.heads[2]
    assert head.weighting.weight.grad is not None and head.weighting.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in net.l_trunk.parameters())  # the features are detached there


def test_attribute_loss_by_hand():
    logits = torch.tensor([[0.0, 2.0], [-1.0, 1.0]])
    labels = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    per = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels, reduction="none")
    equal, zero = attribute_loss(logits, labels, torch.full((2, 2), 0.5), "equal")
    torch.testing.assert_close(equal, per.sum(1).mean())  # the sum of the binary losses per face
    assert float(zero) == 0.0
    uniform, _ = attribute_loss(logits, labels, torch.full((2, 2), 0.5), "dynamic")
    torch.testing.assert_close(uniform, per.sum(1).mean())  # uniform dynamic weights = equal weights
    share = per / per.sum(1, keepdim=True)
    weighted, fit_best = attribute_loss(logits, labels, share, "dynamic")
    torch.testing.assert_close(weighted, 2 * (share * per).sum(1).mean())  # d = 2
    _, fit_other = attribute_loss(logits, labels, torch.full((2, 2), 0.5), "dynamic")
    assert fit_best < fit_other  # the fit is smallest when the weights equal each attribute's loss share
    # the hard attribute (higher loss) gets the larger target weight
    assert share[0, 1] > share[0, 0]


def test_each_sample_type_feeds_only_its_losses(net):
    torch.manual_seed(1)
    x = torch.randn(6, 3, 96, 96)
    is_face = torch.tensor([True, True, True, True, False, False])
    boxes, points, labels = torch.rand(4, 4), torch.rand(4, 5, 2), (torch.rand(4, 6) > 0.5).float()
    out = net(x)[2]
    full = subnet_loss(out, is_face, boxes, points, labels, MCFATrainConfig())
    # changing what the net says for non-faces about boxes, landmarks and attributes changes nothing
    altered = out._replace(
        box=torch.cat([out.box[:4], out.box[4:] + 5]),
        landmarks=torch.cat([out.landmarks[:4], out.landmarks[4:] - 3]),
        attributes=torch.cat([out.attributes[:4], -out.attributes[4:]]),
    )
    again = subnet_loss(altered, is_face, boxes, points, labels, MCFATrainConfig())
    torch.testing.assert_close(again.total, full.total)
    fac = subnet_loss(out, is_face, boxes, points, labels, MCFATrainConfig(tasks=("fac",)))._asdict()
    fac = {k: v.item() for k, v in fac.items()}
    assert fac["cls"] == fac["box"] == fac["landmark"] == 0.0 and fac["attr"] > 0
    fll = subnet_loss(out, is_face, boxes, points, labels, MCFATrainConfig(tasks=("fll", "fac")))
    assert fll.cls.item() == 0.0 and fll.landmark.item() > 0
    with pytest.raises(ValueError, match="fac"):
        MCFATrainConfig(tasks=("fd",))


def test_attribute_metrics_by_hand():
    probs = np.array([[0.9, 0.2, 0.6], [0.1, 0.4, 0.7], [0.8, 0.6, 0.2], [0.3, 0.1, 0.55]])
    labels = np.array([[1, -1, 1], [-1, -1, 1], [-1, 1, 1], [1, -1, -1]])
    np.testing.assert_allclose(attribute_accuracy(probs, labels), [0.5, 1.0, 0.5])
    train = np.array([[1, 1, -1], [1, -1, -1], [-1, -1, -1]])  # majority: present, absent, absent
    np.testing.assert_allclose(majority_accuracy(train, labels), [0.5, 0.75, 0.25])
    with pytest.raises(ValueError):
        attribute_accuracy(probs, labels[:, :2])
    with pytest.raises(ValueError, match="no faces"):
        attribute_accuracy(np.zeros((0, 3)), np.zeros((0, 3)))


def test_crop_targets_and_mirror():
    faces = _faces()
    x, boxes, _points, _labels = face_batch(faces, np.arange(4), 96)
    assert x.shape == (4, 3, 96, 96)
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    torch.testing.assert_close(centre, torch.full((4, 2), 47.5 / 96))  # the box is centred in its crop
    side = 1.6 * 32  # image pixels: the crop is 1.6 x the box's longer side (32 px) wide
    torch.testing.assert_close(boxes[:, 2] - boxes[:, 0], torch.full((4,), 26 / side))  # 26 px wide box
    rng = np.random.default_rng(0)
    xm, bm, pm, _ = face_batch(faces, np.arange(8), 96, rng, mirror=True)
    xs, bs, ps, _ = face_batch(faces, np.arange(8), 96)
    flipped = (xm - xs).abs().flatten(1).max(1).values > 1e-3
    assert 0 < flipped.sum() < 8
    edge = 95 / 96
    for i in np.flatnonzero(flipped.numpy()):
        torch.testing.assert_close(xm[i], xs[i].flip(-1))
        torch.testing.assert_close(pm[i, 0, 0], edge - ps[i, 1, 0])  # the left eye is the mirrored right eye
        torch.testing.assert_close(bm[i, 0], edge - bs[i, 2])


def test_batched_warp_equals_per_image_warp():
    image = np.random.default_rng(0).integers(0, 256, (60, 50, 3), dtype=np.uint8)
    t = box_transforms(np.array([[5.0, 8.0, 40.0, 50.0]]), 32, margin=0.3)
    one = warp_crops(image, t, 32)[0].astype(np.float32)
    batch = warp_batch(torch.from_numpy(image).permute(2, 0, 1)[None].float(), torch.from_numpy(t).float(), 32)
    np.testing.assert_allclose(batch[0].permute(1, 2, 0).numpy(), one, atol=0.51)


def test_a_few_training_steps_lower_the_loss(net):
    faces = _faces(16)
    negatives = np.random.default_rng(1).integers(0, 256, (8, 96, 96, 3), dtype=np.uint8)
    cfg = MCFATrainConfig(negatives=4, shift=0.0, scale=0.0, mirror=False)
    batch = train_batch(faces, negatives, np.arange(16), cfg, 96, np.random.default_rng(0))
    losses = fit_steps(net, batch, cfg, steps=25, lr=3e-3)
    assert losses[-1] < 0.7 * losses[0]


def fit_steps(net, batch, cfg, steps: int, lr: float, term: str = "total") -> list[float]:
    """Adam steps on one fixed batch; the loss term ``term`` after each."""
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        net.train()
        loss = mcfa_loss(net(batch[0]), *batch[1:], cfg=cfg)
        optimizer.zero_grad()
        loss.total.backward()
        optimizer.step()
        losses.append(getattr(loss, term).item())
    return losses


def test_checkpoint_round_trip_and_classifier(net, tmp_path):
    path = tmp_path / "m.pt"
    save_mcfa(path, net.eval(), {"attributes": [f"a{i}" for i in range(6)]})
    loaded, meta = load_mcfa(path)
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x)[2].attributes, net(x)[2].attributes)
    clf = AttributeClassifier(path)
    image = np.random.default_rng(0).integers(0, 256, (109, 89, 3), dtype=np.uint8)
    whole = clf.predict(image)
    assert whole.attributes.shape == (1, 6) and whole.attribute_names == tuple(meta["attributes"])
    np.testing.assert_array_equal(whole.boxes, [[0, 0, 89, 109]])
    two = clf.predict(image, Faces(np.array([[10, 10, 50, 60], [30, 40, 80, 100]]), [0.9, 0.8]))
    assert two.attributes.shape == (2, 6) and ((two.attributes >= 0) & (two.attributes <= 1)).all()
    assert clf.predict(image, Faces.empty()).attributes.shape == (0, 6)
    with pytest.raises(FileNotFoundError, match="nope"):
        AttributeClassifier(tmp_path / "nope.pt")
    torch.save({"something": 1}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="not an MCFA checkpoint"):
        AttributeClassifier(tmp_path / "bad.pt")


def test_eval_attributes_cli_on_real_celeba(net, tmp_path, capsys):
    import json

    from facecascade.cli import main

    from .shared_data import require

    path = tmp_path / "m.pt"
    save_mcfa(path, MCFANet().eval(), {})  # an untrained full-size net: the table, not the numbers
    data = require("celeba")
    for crop in ("box", "whole", "detect"):
        code = main(
            [
                "eval",
                "attributes",
                "--data",
                str(data),
                "--weights",
                str(path),
                "--limit",
                "12",
                "--crop",
                crop,
                "--json",
                str(tmp_path / f"{crop}.json"),
            ]
        )
        assert code == 0
        report = json.loads((tmp_path / f"{crop}.json").read_text())
        assert report["faces"] == 12 and report["crop"] == crop
        result = report["results"][str(path)]
        assert len(result["per_attribute"]) == 40 and 0 <= result["mean_accuracy"] <= 1
        assert "Smiling" in result["per_attribute"]
    out = capsys.readouterr().out
    assert "| **mean** |" in out and "| Eyeglasses |" in out
    assert main(["eval", "attributes", "--data", str(tmp_path), "--weights", str(path)]) == 2
