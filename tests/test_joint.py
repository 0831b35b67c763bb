"""The jointly trained cascade (FaceCraft): network, threshold control, loss, training, weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from facecascade.models import ONet, PNet, RNet
from facecascade.models.joint import JointCascade
from facecascade.models.weights import load_mtcnn, save_mtcnn
from facecascade.ops.coding import encode_landmarks, encode_offsets
from facecascade.train.joint import (
    JointConfig,
    JointTask,
    RegressionScale,
    gate_masks,
    joint_loss,
    make_optimizer,
    pnet_box_targets,
    pnet_landmark_targets,
)
from facecascade.train.losses import SampleKind
from facecascade.train.samples import SampleArrays, pnet_reference_boxes
from facecascade.train.trainer import TrainConfig, fit


def _cascade(share: bool = True) -> JointCascade:
    torch.manual_seed(0)
    return JointCascade(PNet(landmarks=5), RNet(landmarks=5), ONet(landmarks=5), share=share)


def _randomise_context(net: JointCascade) -> None:
    with torch.no_grad():
        net.context24.linear.weight.normal_(0, 0.1)
        net.context48.linear.weight.normal_(0, 0.1)


def test_a_fresh_joint_cascade_answers_like_its_separate_stages():
    net = _cascade().eval()
    x48 = torch.randn(6, 3, 48, 48)
    x24 = F.avg_pool2d(x48, 2)
    with torch.no_grad():
        out = net(x48)
        _, stage24, stage48 = net.stage_nets()
        assert torch.allclose(out.x48.logits, net.onet(x48).logits)
        assert torch.allclose(out.x24.offsets, net.rnet(x24).offsets)
        assert torch.allclose(out.x12.logits, net.pnet(F.avg_pool2d(x24, 2)).logits[:, :, 0, 0])
        assert torch.allclose(stage48(x48).landmarks, net.onet(x48).landmarks)
        assert torch.allclose(stage24(x24).logits, net.rnet(x24).logits)


def test_branch_heads_read_the_concatenated_features():
    """x12-24 heads = W [24fc; f12] and x12-24-48 heads = W [48fc; f12; 24fc], computed by hand."""
    net = _cascade().eval()
    _randomise_context(net)
    x48 = torch.randn(4, 3, 48, 48)
    x24 = F.avg_pool2d(x48, 2)
    with torch.no_grad():
        f12 = net.pnet.trunk(F.avg_pool2d(x24, 2)).flatten(1)
        h24 = net.rnet.fc(net.rnet.trunk(x24))
        h48 = net.onet.fc(net.onet.trunk(x48))
        w24 = torch.cat([net.rnet.cls.weight, net.context24.linear.weight[:2]], 1)
        w48 = torch.cat([net.onet.box.weight, net.context48.linear.weight[2:6]], 1)
        out = net(x48)
        assert torch.allclose(out.x24.logits, torch.cat([h24, f12], 1) @ w24.T + net.rnet.cls.bias, atol=1e-5)
        assert torch.allclose(out.x48.offsets, torch.cat([h48, f12, h24], 1) @ w48.T + net.onet.box.bias, atol=1e-5)
        # the test-time stages compute the same from the windows they are given
        _, stage24, stage48 = net.stage_nets()
        assert torch.allclose(stage24(x24).logits, out.x24.logits, atol=1e-5)
        assert torch.allclose(stage48(x48).offsets, out.x48.offsets, atol=1e-5)


def test_gates_decide_which_windows_reach_each_loss():
    # p12 = 0.05, 0.2, 0.9, 0.9 ; p24 = 0.5, 0.002, 0.004, 0.5
    logit = lambda p: torch.tensor([[0.0, float(np.log(p / (1 - p)))] for p in p])  # noqa: E731
    pass24, pass48 = gate_masks(logit([0.05, 0.2, 0.9, 0.9]), logit([0.5, 0.002, 0.004, 0.5]), (0.1, 0.003))
    assert pass24.tolist() == [False, True, True, True]
    assert pass48.tolist() == [False, False, True, True]  # x48 needs both gates


def _batch(n: int = 32):
    kinds = torch.tensor([SampleKind.NEGATIVE, SampleKind.POSITIVE, SampleKind.PART, SampleKind.LANDMARK] * (n // 4))
    return (torch.randn(n, 3, 48, 48), kinds, torch.randn(n, 4) * 0.1, torch.rand(n, 5, 2))


def test_windows_stopped_by_a_gate_give_no_gradient_to_later_branches():
    net = _cascade()
    _randomise_context(net)
    batch = _batch()
    out = net(batch[0])
    # gates no probability passes: the x24 and x48 losses vanish, only x12 trains
    parts = joint_loss(out, batch, JointConfig(gates=(1.0, 1.0)), RegressionScale.identity(), keep=1.0)
    assert float(parts.x24) == 0.0 and float(parts.x48) == 0.0 and float(parts.pass24) == 0.0
    parts.total.backward()
    assert net.rnet.cls.weight.grad is None or float(net.rnet.cls.weight.grad.abs().sum()) == 0.0
    assert net.onet.cls.weight.grad is None or float(net.onet.cls.weight.grad.abs().sum()) == 0.0
    assert float(net.pnet.cls.weight.grad.abs().sum()) > 0


def test_the_x24_loss_sees_exactly_the_windows_passing_x12():
    net = _cascade()
    batch = _batch()
    out = net(batch[0])
    p12 = out.x12.logits.softmax(1)[:, 1].detach()
    gate = float(p12.median())
    cfg = JointConfig(gates=(gate, 0.0), branch_weights=(0.0, 1.0, 0.0))
    parts = joint_loss(out, batch, cfg, RegressionScale.identity(), keep=1.0)
    (grad,) = torch.autograd.grad(parts.total, out.x24.logits)
    outside = p12 <= gate
    assert 0 < int(outside.sum()) < len(outside)
    assert float(grad[outside].abs().sum()) == 0.0
    reached = ~outside & ((batch[1] == SampleKind.NEGATIVE) | (batch[1] == SampleKind.POSITIVE))
    assert bool((grad[reached].abs().sum(1) > 0).all())
    assert float(parts.pass24) == pytest.approx(float((~outside).float().mean()))


@pytest.mark.parametrize("share", [True, False])
def test_joint_training_shares_gradients_and_separate_training_does_not(share):
    net = _cascade(share)
    if share:  # zero-initialised context layers pass no gradient back until they have been trained
        _randomise_context(net)
    batch = _batch()
    out = net(batch[0])
    loss = joint_loss(
        out,
        batch,
        JointConfig(gates=(0.0, 0.0), branch_weights=(0.0, 0.0, 1.0), share=share),
        RegressionScale.identity(),
        keep=1.0,
    )
    loss.total.backward()
    trunk_grad = net.pnet.stem[0].weight.grad
    reached = trunk_grad is not None and float(trunk_grad.abs().sum()) > 0
    assert reached == share  # only the x48 loss: it reaches P-Net's trunk only through shared features


def test_pnet_targets_match_pnet_coding_for_large_windows():
    window = torch.tensor([[100.0, 50.0, 340.0, 290.0]])  # S = 240
    face = torch.tensor([[130.0, 60.0, 330.0, 300.0]])
    inclusive = encode_offsets(window, face, inclusive=True)
    exact = encode_offsets(pnet_reference_boxes(window), face, inclusive=False)
    assert torch.allclose(pnet_box_targets(inclusive), exact, atol=2e-3)  # 1/S relative
    points = torch.tensor([[[160.0, 120.0], [280.0, 200.0]]])
    rel = encode_landmarks(window, points)
    exact_points = encode_landmarks(pnet_reference_boxes(window), points)
    assert torch.allclose(pnet_landmark_targets(rel), exact_points, atol=2e-3)


def test_regression_scale_equalises_coordinate_variance_at_the_same_rms():
    n = 1000
    rng = np.random.default_rng(0)
    boxes = (rng.standard_normal((n, 4)) * np.array([0.1, 0.2, 0.1, 0.4])).astype(np.float32)
    kinds = np.full(n, SampleKind.POSITIVE, np.int8)
    kinds[:100] = SampleKind.NEGATIVE  # not used for the statistics
    boxes[:100] = 100.0
    samples = SampleArrays(np.zeros((n, 1, 1, 3), np.uint8), kinds, boxes, np.zeros((n, 5, 2), np.float32))
    w = RegressionScale.fit(samples).weight
    std = torch.from_numpy(boxes[100:]).double().std(0)
    scaled = (torch.from_numpy(boxes[100:]).double() * w.double()).std(0)
    assert torch.allclose(scaled, scaled.mean().expand(4), rtol=1e-4)  # unit variance up to one factor
    assert abs(float(scaled.pow(2).mean().sqrt()) - float(std.pow(2).mean().sqrt())) < 1e-4  # same RMS
    assert torch.equal(RegressionScale.identity().weight, torch.ones(4))


def _toy_windows(n: int, rng: np.random.Generator) -> SampleArrays:
    """48x48 windows: faces are bright discs, non-faces noise (an easy problem to learn)."""
    kinds = rng.choice([SampleKind.NEGATIVE, SampleKind.POSITIVE, SampleKind.PART, SampleKind.LANDMARK], n).astype(
        np.int8
    )
    yy, xx = np.mgrid[:48, :48]
    disc = ((yy - 24) ** 2 + (xx - 24) ** 2 < 15**2)[..., None]
    images = rng.integers(0, 120, (n, 48, 48, 3)).astype(np.uint8)
    face = kinds != SampleKind.NEGATIVE
    images[face] = np.where(disc, 230, images[face]).astype(np.uint8)
    boxes = np.where(face[:, None], rng.normal(0, 0.05, (n, 4)), 0).astype(np.float32)
    points = np.where((kinds == SampleKind.LANDMARK)[:, None, None], 0.5, 0).astype(np.float32) * np.ones(
        (n, 5, 2), np.float32
    )
    return SampleArrays(images, kinds, boxes, points)


def test_a_few_joint_training_steps_lower_the_loss(tmp_path):
    rng = np.random.default_rng(0)
    samples = _toy_windows(512, rng)
    cfg = JointConfig(
        train=TrainConfig(epochs=4, batch_size=64, lr=0.01, weight_decay=5e-4, samples_per_epoch=1024, seed=0)
    )
    net = _cascade()
    task = JointTask(cfg, RegressionScale.fit(samples), torch.device("cpu"))
    before = task.evaluate(net, samples, 0)
    optimizer, scheduler = make_optimizer(net, cfg)
    fit(net, samples, samples, cfg.train, tmp_path / "joint", task, optimizer, scheduler, quiet=True)
    after = task.evaluate(net, samples, 0)
    assert after["total"] < 0.7 * before["total"]
    assert after["acc48"] > 0.9 and after["face_recall"] > 0.8
    log = (tmp_path / "joint" / "log.csv").read_text().splitlines()
    assert log[0].startswith("epoch,step,split,total,x12,x24,x48,pass24,pass48")
    assert sum(",val," in line for line in log) == 4


def test_optimizer_is_the_papers_sgd_with_a_step_decay():
    cfg = JointConfig(train=TrainConfig(epochs=3, batch_size=10, samples_per_epoch=100, lr=1e-3, weight_decay=5e-4))
    optimizer, scheduler = make_optimizer(_cascade(), cfg)
    group = optimizer.param_groups[0]
    assert isinstance(optimizer, torch.optim.SGD) and group["momentum"] == 0.9 and group["weight_decay"] == 5e-4
    lrs = []
    for _ in range(30):
        lrs.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    assert lrs[0] == pytest.approx(1e-3) and lrs[19] == pytest.approx(1e-3) and lrs[20] == pytest.approx(1e-4)


def test_joint_checkpoints_round_trip_through_load_mtcnn(tmp_path):
    net = _cascade().eval()
    _randomise_context(net)
    save_mtcnn(tmp_path / "joint.pt", net, {"thresholds": [0.5, 0.5, 0.5]})
    nets = load_mtcnn(tmp_path / "joint.pt")
    x48 = torch.randn(3, 3, 48, 48)
    with torch.no_grad():
        assert torch.allclose(nets.onet(x48).logits, net.stage_nets()[2](x48).logits)
        assert torch.allclose(nets.rnet(x48[:, :, :24, :24]).offsets, net.stage_nets()[1](x48[:, :, :24, :24]).offsets)
        # the context matters: the plain O-Net alone answers differently
        assert not torch.allclose(nets.onet(x48).logits, net.onet(x48).logits)
    separate = _cascade(share=False)
    save_mtcnn(tmp_path / "separate.pt", separate)
    assert type(load_mtcnn(tmp_path / "separate.pt").onet) is ONet


def test_shipped_joint_weights_load_and_detect():
    from facecascade import FaceDetector

    from .shared_data import require

    det = FaceDetector(weights="mtcnn-joint")
    faces = det.detect(require("dlib_faces/2008_002506.jpg"))
    assert len(faces) == 3 and faces.landmarks.shape == (3, 5, 2)


def test_train_joint_cli_runs_on_real_data_and_resumes(tmp_path):
    """`facecascade train joint` end to end on a few real images: 48x48 samples mined by the
    initial P-Net, joint training, a packed checkpoint the detector loads; then the separate
    baseline on the same samples (``--reuse``), and bad arguments."""
    from facecascade import FaceDetector
    from facecascade.cli import main

    from .shared_data import require

    data = require("face_mask").parent
    args = [
        "train",
        "joint",
        "--data",
        str(data),
        "--limit",
        "2",
        "--epochs",
        "1",
        "--samples-per-epoch",
        "128",
        "--tuning-images",
        "1",
        "-q",
    ]
    assert main([*args, "--out", str(tmp_path / "joint")]) == 0
    counts = (tmp_path / "joint" / "samples" / "joint" / "train" / "counts.json").read_text()
    assert '"negative"' in counts and '"landmark"' in counts
    assert (tmp_path / "joint" / "joint" / "log.csv").read_text().count(",val,") == 1
    joint = FaceDetector(weights=tmp_path / "joint" / "mtcnn-joint.pt")
    assert type(joint.cascade.nets.onet).__name__ == "StageOf48"
    assert joint.detect(np.zeros((64, 64, 3), np.uint8)).boxes.shape == (0, 4)
    assert main([*args, "--out", str(tmp_path / "joint")]) == 0  # resumes: nothing more to train
    assert (tmp_path / "joint" / "joint" / "log.csv").read_text().count(",val,") == 1
    assert main([*args, "--out", str(tmp_path / "sep"), "--separate", "--reuse", str(tmp_path / "joint")]) == 0
    assert not (tmp_path / "sep" / "samples").exists()  # the joint run's samples were reused
    assert type(load_mtcnn(tmp_path / "sep" / "mtcnn-separate.pt").onet) is ONet
    assert main(["train", "joint", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "x")]) == 2
    assert main([*args, "--out", str(tmp_path / "y"), "--init", "mtcnn-joint"]) == 1  # not plain stages


def test_without_the_landmark_task_no_branch_learns_landmarks():
    net = _cascade()
    batch = _batch()
    loss = joint_loss(
        net(batch[0]), batch, JointConfig(gates=(0.0, 0.0), landmarks=False), RegressionScale.identity(), keep=1.0
    )
    loss.total.backward()
    for stage in (net.pnet, net.rnet, net.onet):
        assert stage.landmarks.weight.grad is None or float(stage.landmarks.weight.grad.abs().sum()) == 0.0
    assert float(net.onet.box.weight.grad.abs().sum()) > 0
