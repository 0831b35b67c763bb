"""`benchmarks/crowd_floor.py`: its parts add up, the passing windows are a subset of O-Net's, and
the floor (R-Net and O-Net on the passing windows only) is below the measured time."""

import sys
from pathlib import Path

import pytest

from .shared_data import DATA, require

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))


@pytest.mark.slow
def test_the_floor_is_below_the_cascade_and_counts_its_windows(capsys):
    require("dlib_faces")
    import crowd_floor

    args = ["--weights", "mtcnn", "--calls", "1", "--data", str(DATA), "--setting", "r:nms_refined=0.5"]
    rows = crowd_floor.main(args)
    assert [(r["weights"], r["image"].split(" ")[0]) for r in rows] == [
        ("mtcnn", "2008_002506"),
        ("mtcnn", "bald_guys"),
        ("mtcnn r", "2008_002506"),
        ("mtcnn r", "bald_guys"),
    ]
    for row in rows:
        assert 0 < row["passing"] <= row["into_o"] <= row["into_r"]
        parts = row["prepare"] + row["pnet"] + row["rnet"] + row["onet"]
        assert row["total"] == pytest.approx(parts)
        assert row["prepare"] + row["pnet"] < row["floor"] <= row["total"] + 1e-9
    crowd, refined = rows[1], rows[3]
    assert refined["into_o"] < crowd["into_o"], "nms_refined=0.5 leaves fewer windows for O-Net"
    assert crowd["passing"] >= 24, "every face of the crowd photo has a passing O-Net window"
    assert "| mtcnn r | bald_guys" in capsys.readouterr().out
