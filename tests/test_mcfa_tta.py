"""MCFA's test-time options and regularisation, by hand: flip averaging, the threshold remap and
its choice, label smoothing, the stronger augmentation, and the command-line flags."""

import numpy as np
import pytest
import torch

from facecascade.attributes import AttributeClassifier
from facecascade.attributes.tta import (
    THRESHOLD_GRID,
    choose_thresholds,
    flip_average,
    meta_thresholds,
    shift_to_threshold,
)
from facecascade.cli import build_parser
from facecascade.models.mcfa import MCFAConfig, MCFANet
from facecascade.models.mcfa_weights import load_mcfa_members, save_mcfa, save_mcfa_ensemble
from facecascade.train.mcfa import AUGMENTS, MCFATrainConfig, smoothed, train_batch
from facecascade.train.mcfa_data import face_batch
from facecascade.train.photometric import Photometric

from .test_mcfa import _faces as mcfa_faces
from .test_mcfa import fit_steps

SMALL = MCFAConfig(
    s_widths=(4, 8, 8), s_feature=16, m_widths=(4, 8, 8, 8), l_widths=(4, 8, 8, 8, 8), fc=16, head=16, num_attributes=3
)


def _faces(n=16, d=3, seed=0):
    return mcfa_faces(n, d, seed, share=0.4)


def test_flip_average_is_the_mean_of_the_two_passes():
    crops = np.arange(2 * 3 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3, 3)

    def left_column(c):  # "probability" = the first column's mean, so the mirror sees the last column
        return c[:, :, 0, :].reshape(len(c), -1).mean(1, keepdims=True) / 255

    expected = (left_column(crops) + crops[:, :, 2, :].reshape(2, -1).mean(1, keepdims=True) / 255) / 2
    np.testing.assert_allclose(flip_average(left_column, crops), expected)


def test_threshold_remap_sends_t_to_half_and_is_monotone():
    t = np.array([0.2, 0.5, 0.7])
    np.testing.assert_allclose(shift_to_threshold(t[None], t), [[0.5, 0.5, 0.5]], atol=1e-6)
    p = np.linspace(0.001, 0.999, 200)[:, None].repeat(3, 1)
    out = shift_to_threshold(p, t)
    assert (np.diff(out, axis=0) > 0).all()  # increasing in p
    np.testing.assert_allclose(out[:, 1], p[:, 1], atol=1e-6)  # t = 0.5: unchanged
    assert ((out > 0.5) == (p > t)).all()  # the same decisions as p > t
    # by hand: p = 0.5, t = 0.2: logit shift log(4), sigmoid = 4 / 5
    np.testing.assert_allclose(shift_to_threshold(np.array([[0.5]]), np.array([0.2])), [[0.8]], atol=1e-6)


def test_thresholds_chosen_by_hand():
    # attribute 0: positives at 0.3 and 0.4, negatives at 0.1 and 0.2: any t in [0.2, 0.3) is
    # perfect; the grid's nearest to 0.5 is 0.28 (p > t). Attribute 1: already separated at 0.5
    # (negatives 0.1-0.4, positives 0.6-0.9): every t in [0.4, 0.6) ties, 0.5 wins the tie.
    p = np.array([[0.3, 0.6], [0.4, 0.9], [0.1, 0.1], [0.2, 0.4]])
    y = np.array([[1, 1], [1, 1], [-1, -1], [0, -1]])
    np.testing.assert_allclose(choose_thresholds(p, y), [0.28, 0.5])
    # a coarse grid: 0.15 (one negative above it) and 0.35 (one positive below) both score 3 / 4,
    # 0.5 scores 2 / 4; the tie goes to 0.35, the nearer to 0.5
    np.testing.assert_allclose(choose_thresholds(p, y, grid=(0.15, 0.35, 0.5)), [0.35, 0.5])
    with pytest.raises(ValueError):
        choose_thresholds(p, y[:, :1])
    with pytest.raises(ValueError, match="thresholds"):
        meta_thresholds({"thresholds": [0.5, 1.0]}, 2)
    assert meta_thresholds({}, 2) is None


def test_classifier_switches_flip_and_thresholds_from_meta(tmp_path):
    torch.manual_seed(0)
    net = MCFANet(SMALL).eval()
    plain, tuned = tmp_path / "plain.pt", tmp_path / "tuned.pt"
    save_mcfa(plain, net, {"attributes": ["a", "b", "c"]})
    save_mcfa(tuned, net, {"attributes": ["a", "b", "c"], "flip": True, "thresholds": [0.3, 0.5, 0.6]})
    crops = np.random.default_rng(0).integers(0, 256, (4, 96, 96, 3), dtype=np.uint8)
    raw = AttributeClassifier(plain)
    assert not raw.flip and raw.thresholds is None
    p, pf = raw._probabilities(crops), raw._probabilities(np.ascontiguousarray(crops[:, :, ::-1]))
    clf = AttributeClassifier(tuned)  # the meta switches both on
    assert clf.flip and clf.thresholds is not None
    np.testing.assert_allclose(clf._probabilities(crops), shift_to_threshold((p + pf) / 2, clf.thresholds), atol=1e-6)
    unshifted = AttributeClassifier(tuned, thresholds=False)  # the raw (flip-averaged) probabilities
    np.testing.assert_allclose(unshifted._probabilities(crops), (p + pf) / 2, atol=1e-6)
    np.testing.assert_allclose(AttributeClassifier(tuned, flip=False, thresholds=False)._probabilities(crops), p)
    with pytest.raises(ValueError, match="no decision thresholds"):
        AttributeClassifier(plain, thresholds=True)


def test_an_ensemble_checkpoint_averages_its_members(tmp_path):
    torch.manual_seed(0)
    a, b = MCFANet(SMALL).eval(), MCFANet(SMALL).eval()
    for i, net in enumerate((a, b)):
        save_mcfa(tmp_path / f"{i}.pt", net, {"attributes": ["a", "b", "c"]})
    save_mcfa_ensemble(tmp_path / "both.pt", [a, b], {"attributes": ["a", "b", "c"]})
    members, meta = load_mcfa_members(tmp_path / "both.pt")
    assert len(members) == 2 and "ensemble" not in meta
    crops = np.random.default_rng(0).integers(0, 256, (3, 96, 96, 3), dtype=np.uint8)
    one = [AttributeClassifier(tmp_path / f"{i}.pt")._probabilities(crops) for i in range(2)]
    np.testing.assert_allclose(AttributeClassifier(tmp_path / "both.pt")._probabilities(crops), (one[0] + one[1]) / 2)
    with pytest.raises(ValueError, match="share one MCFAConfig"):
        save_mcfa_ensemble(tmp_path / "x.pt", [a, MCFANet()])


def test_tune_test_time_on_real_celeba(tmp_path):
    from facecascade.train.mcfa_recipe import tune_test_time

    from .shared_data import require

    data = require("celeba").parent
    torch.manual_seed(0)
    for i in range(2):
        save_mcfa(tmp_path / f"{i}.pt", MCFANet().eval(), {"recipe": "test"})
    out = tmp_path / "tuned.pt"
    meta = tune_test_time(tmp_path / "0.pt", data, out, True, "val-tune", limit=12, ensemble=(tmp_path / "1.pt",))
    assert meta["flip"] and len(meta["thresholds"]) == 40 and meta["recipe"] == "test"
    assert "val-tune" in meta["thresholds_from"] and "12 faces" in meta["thresholds_from"]
    clf = AttributeClassifier(out)
    assert clf.flip and len(clf.members) == 2 and np.isin(np.round(clf.thresholds, 2), THRESHOLD_GRID).all()
    with pytest.raises(ValueError, match="thresholds_from"):
        tune_test_time(tmp_path / "0.pt", data, out, False, "val")


def test_label_smoothing_targets_and_training_steps_lower_the_loss():
    labels = torch.tensor([[0.0, 1.0]])
    torch.testing.assert_close(smoothed(labels, 0.2), torch.tensor([[0.1, 0.9]]))
    assert smoothed(labels, 0.0) is labels
    with pytest.raises(ValueError, match="label_smoothing"):
        MCFATrainConfig(label_smoothing=0.5)
    torch.manual_seed(0)
    net = MCFANet(SMALL)
    cfg = MCFATrainConfig(tasks=("fac",), weighting="equal", label_smoothing=0.1, shift=0, scale=0, mirror=False)
    batch = train_batch(_faces(), None, np.arange(16), cfg, 96, np.random.default_rng(0))
    losses = fit_steps(net, batch, cfg, steps=30, lr=1e-2, term="attr")
    assert losses[-1] < 0.7 * losses[0]
    # the smoothed targets' entropy is a floor: 3 sub-networks x 3 attributes x H(0.05) nats
    floor = 9 * -(0.05 * np.log(0.05) + 0.95 * np.log(0.95))
    assert min(losses) > floor


def test_strong_augmentation_keeps_targets_with_the_pixels():
    faces = _faces(8)
    cfg = MCFATrainConfig(**AUGMENTS["strong"])
    assert cfg.photometric == Photometric(colour=0.5, blur=0.2, occlusion=0.25)
    assert MCFATrainConfig().photometric is None
    x, _is_face, _boxes, points, _labels = train_batch(faces, None, np.arange(8), cfg, 96, np.random.default_rng(0))
    assert x.shape == (8, 3, 96, 96) and x.min() >= -1 and x.max() <= 1
    # rotation about the crop centre keeps the distance between the eyes (crop sides)
    _, _, still, _ = face_batch(faces, np.arange(8), 96)
    eyes = (points[:, 0] - points[:, 1]).norm(dim=1)
    scale = eyes / (still[:, 0] - still[:, 1]).norm(dim=1)
    assert ((scale > 0.8) & (scale < 1.25)).all()  # scale jitter 1 +- 0.15 only
    # a rotation-only batch: the eye line tilts, by at most 10 degrees
    rng = np.random.default_rng(1)
    _, _, turned, _ = face_batch(faces, np.arange(8), 96, rng, rotate=10.0)
    d = turned[:, 1] - turned[:, 0]
    angle = torch.rad2deg(torch.atan2(d[:, 1], d[:, 0])).abs()
    assert (angle <= 10.01).all() and (angle > 0.01).any()


def test_mcfa_flags_parse_and_reject_bad_values(capsys):
    parser = build_parser()
    flags = "--label-smoothing 0.1 --augment strong --epochs 20 --seed 3 --threads 1 --test-flip --thresholds val-tune"
    args = parser.parse_args(["train", "mcfa", *flags.split()])
    assert (args.label_smoothing, args.augment, args.epochs, args.seed, args.threads) == (0.1, "strong", 20, 3, 1)
    assert args.test_flip and args.thresholds == "val-tune"
    defaults = parser.parse_args(["train", "mcfa"])
    assert (defaults.label_smoothing, defaults.augment, defaults.test_flip, defaults.thresholds) == (
        0.0,
        "standard",
        False,
        "none",
    )
    for bad in (
        ["--label-smoothing", "0.5"],
        ["--label-smoothing", "-0.1"],
        ["--label-smoothing", "x"],
        ["--augment", "huge"],
        ["--threads", "0"],
        ["--thresholds", "val"],
    ):
        with pytest.raises(SystemExit):
            parser.parse_args(["train", "mcfa", *bad])
    assert "expected a number in [0, 0.5)" in capsys.readouterr().err


def test_export_graph_averages_an_ensemble_and_the_pipeline_names_the_options(tmp_path):
    from facecascade.export.bundles import attributes_bundle

    torch.manual_seed(0)
    a, b = MCFANet(SMALL).eval(), MCFANet(SMALL).eval()
    save_mcfa_ensemble(tmp_path / "both.pt", [a, b], {"flip": True, "thresholds": [0.4, 0.5, 0.6]})
    bundle = attributes_bundle(tmp_path / "both.pt")
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        attributes = bundle.graphs[0].module(x)[3]
        mean = (torch.sigmoid(a(x)[2].attributes) + torch.sigmoid(b(x)[2].attributes)) / 2
    torch.testing.assert_close(torch.sigmoid(attributes), mean)
    pipeline = bundle.pipeline
    assert pipeline["ensemble_members"] == 2 and pipeline["flip_average"] and pipeline["thresholds"] == [0.4, 0.5, 0.6]


def test_mcfa_test_time_cli_packs_an_ensemble(tmp_path, capsys):
    from facecascade.cli import main

    torch.manual_seed(0)
    for i in range(2):
        save_mcfa(tmp_path / f"{i}.pt", MCFANet(SMALL).eval(), {"attributes": ["a", "b", "c"]})
    out = tmp_path / "both.pt"
    argv = ["train", "mcfa-test-time", str(tmp_path / "0.pt"), "--ensemble", str(tmp_path / "1.pt")]
    assert main([*argv, "--test-flip", "--out", str(out), "--data", str(tmp_path)]) == 0
    assert "2 network(s), flip: True, thresholds: none" in capsys.readouterr().out
    clf = AttributeClassifier(out)
    assert len(clf.members) == 2 and clf.flip and clf.thresholds is None
    assert main([*argv, "--out", str(out), "--data", str(tmp_path / "missing")]) == 2
