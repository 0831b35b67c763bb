"""WiSE-FT weight interpolation between a cascade and its fine-tuned copy (`facecascade.train.interpolate`)."""

from __future__ import annotations

import pytest
import torch

from facecascade.cli import main
from facecascade.models.weights import load_mtcnn, load_mtcnn_with_meta
from facecascade.train.interpolate import interpolate_cascade, interpolate_states


def test_interpolate_states_hand_computed():
    start = {"w": torch.tensor([0.0, 2.0]), "count": torch.tensor(3)}
    tuned = {"w": torch.tensor([2.0, 4.0]), "count": torch.tensor(5), "head": torch.tensor([1.0])}
    out = interpolate_states(start, tuned, 0.25)
    torch.testing.assert_close(out["w"], torch.tensor([0.5, 2.5]))  # 0.75 * start + 0.25 * tuned
    assert out["count"].item() == 5  # integer tensors are the tuned ones
    torch.testing.assert_close(out["head"], torch.tensor([1.0]))  # only the tuned net has it
    out["head"] += 1  # a copy, not the tuned tensor itself
    assert tuned["head"].item() == 1.0


def test_interpolate_states_refuses_other_shapes_and_alphas():
    with pytest.raises(ValueError, match="not one architecture"):
        interpolate_states({"w": torch.zeros(2)}, {"w": torch.zeros(3)}, 0.5)
    for alpha in (-0.1, 1.5):
        with pytest.raises(ValueError, match="alpha"):
            interpolate_states({"w": torch.zeros(2)}, {"w": torch.zeros(2)}, alpha)


def test_interpolate_cascade_ends_and_midpoint():
    tuned, meta = load_mtcnn_with_meta("mtcnn")
    start = load_mtcnn("mtcnn-original")
    nets, new_meta = interpolate_cascade("mtcnn-original", "mtcnn", {"onet": 0.5, "rnet": 0.0})
    for name, value in nets.onet.state_dict().items():
        torch.testing.assert_close(value, (start.onet.state_dict()[name] + tuned.onet.state_dict()[name]) / 2)
    for name, value in nets.rnet.state_dict().items():  # alpha 0: the start's, but for its missing landmark head
        torch.testing.assert_close(value, start.rnet.state_dict().get(name, tuned.rnet.state_dict()[name]))
    assert "landmarks.weight" not in start.rnet.state_dict()  # (the case above covers)
    for name, value in nets.pnet.state_dict().items():  # not named: the tuned stage
        assert torch.equal(value, tuned.pnet.state_dict()[name])
    assert new_meta["interpolation"] == {
        "start": "mtcnn-original",
        "tuned": "mtcnn",
        "alpha": {"onet": 0.5, "rnet": 0.0},
    }
    assert new_meta["thresholds"] == meta["thresholds"]
    with pytest.raises(ValueError, match="no such stage"):
        interpolate_cascade("mtcnn-original", "mtcnn", {"qnet": 0.5})


def _interpolate(tmp_path, out: str, start: str = "mtcnn-original", alpha: str = "onet=0.5", *extra: str) -> int:
    args = ["train", "interpolate", "--start", start, "--tuned", "mtcnn", "--alpha", alpha, *extra]
    return main([*args, "--out", str(tmp_path / out)])


def test_train_interpolate_command(tmp_path, capsys):
    from facecascade import FaceDetector

    assert _interpolate(tmp_path, "sub/mid.pt") == 0
    thresholds = tuple(load_mtcnn_with_meta("mtcnn")[1]["thresholds"])
    assert FaceDetector(weights=str(tmp_path / "sub" / "mid.pt")).config.thresholds == thresholds
    assert _interpolate(tmp_path, "x.pt", alpha="onet") == 2
    assert "expected STAGE=ALPHA" in capsys.readouterr().err
    assert _interpolate(tmp_path, "x.pt", start=str(tmp_path / "missing.pt")) == 2
    assert "--start" in capsys.readouterr().err
    assert _interpolate(tmp_path, "x.pt", alpha="onet=2") == 2
    assert not (tmp_path / "x.pt").exists()


def test_train_interpolate_stores_engine_settings(tmp_path, capsys):
    from facecascade import FaceDetector

    assert _interpolate(tmp_path, "voting.pt", "mtcnn-original", "rnet=0", "--settings", "box_voting=0.5") == 0
    out = str(tmp_path / "voting.pt")
    assert FaceDetector(weights=out).config.box_voting == 0.5  # meta["settings"], standard path
    assert FaceDetector(weights=out, fast=True).config.box_voting == 0.5  # and the fast one
    assert _interpolate(tmp_path, "x.pt", "mtcnn-original", "rnet=0", "--settings", "nms_everything=0.6") == 2
    assert "names no MTCNNConfig field" in capsys.readouterr().err
    assert _interpolate(tmp_path, "x.pt", "mtcnn-original", "rnet=0", "--data", str(tmp_path / "no-data")) == 2
    assert "data folder not found" in capsys.readouterr().err
    assert not (tmp_path / "x.pt").exists()


def test_recalibrated_chooses_both_operating_points_with_the_settings(monkeypatch, tmp_path):
    import facecascade.train.recipe as recipe
    from facecascade.train.interpolate import recalibrated

    calls = []

    def fake_operating_point(rcp, nets, fast=False, settings=None):
        calls.append((rcp.data, fast, dict(settings)))
        return ((0.4, 0.1, 0.2) if fast else (0.3, 0.2, 0.2)), {"0.3,0.2,0.2": 0.5}

    monkeypatch.setattr(recipe, "operating_point", fake_operating_point)
    nets, meta = interpolate_cascade("mtcnn-original", "mtcnn", {"rnet": 0.0})
    out = recalibrated(nets, meta, tmp_path, {"box_voting": 0.6})
    assert calls == [(tmp_path, False, {"box_voting": 0.6}), (tmp_path, True, {"box_voting": 0.6})]
    assert out["thresholds"] == [0.3, 0.2, 0.2] and out["fast_thresholds"] == [0.4, 0.1, 0.2]
    assert out["settings"] == {"box_voting": 0.6} and out["interpolation"]["alpha"] == {"rnet": 0.0}


def test_train_interpolate_keeps_the_tuned_weights_settings(tmp_path):
    """The tuned weights' own settings (the default mtcnn's box voting) carry over unless --settings changes them."""
    from facecascade import FaceDetector

    assert load_mtcnn_with_meta("mtcnn")[1]["settings"] == {"box_voting": 0.6}
    assert _interpolate(tmp_path, "kept.pt", "mtcnn-original", "rnet=0") == 0
    assert FaceDetector(weights=str(tmp_path / "kept.pt")).config.box_voting == 0.6
    assert _interpolate(tmp_path, "off.pt", "mtcnn-original", "rnet=0", "--settings", "box_voting=0") == 0
    assert FaceDetector(weights=str(tmp_path / "off.pt")).config.box_voting == 0.0
