"""The `facecascade detect` command: JSON schema, drawing, bad files, exit codes."""

import json
import shutil
import subprocess
import sys

import pytest
from PIL import Image

from facecascade.cli import main

from .shared_data import require


@pytest.fixture()
def folder(tmp_path):
    """Two real photos, a text file named .jpg and a 0-byte .png, in a nested folder."""
    src = require("dlib_faces")
    (tmp_path / "sub").mkdir()
    shutil.copy(src / "2008_002506.jpg", tmp_path / "a.jpg")
    shutil.copy(src / "2008_004176.jpg", tmp_path / "sub" / "b.jpg")
    (tmp_path / "broken.jpg").write_text("this is not an image")
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("ignored: not an image extension")
    return tmp_path


def _check_schema(entries):
    for face in entries:
        assert set(face) == {"box", "score", "landmarks"}
        assert len(face["box"]) == 4 and all(isinstance(v, float) for v in face["box"])
        assert 0.0 <= face["score"] <= 1.0
        assert len(face["landmarks"]) == 5 and all(len(p) == 2 for p in face["landmarks"])
        x1, y1, x2, y2 = face["box"]
        assert x2 > x1 and y2 > y1


def test_folder_with_bad_files_reports_each_and_exits_nonzero(folder, tmp_path, capsys):
    out = tmp_path / "out" / "faces.json"
    code = main(["detect", str(folder), "--json", str(out), "--draw", str(tmp_path / "drawn")])
    err = capsys.readouterr().err
    assert code == 1
    assert "broken.jpg" in err and "empty.png" in err and "2 of 4 input(s) failed" in err
    result = json.loads(out.read_text())
    assert set(result) == {"a.jpg", "b.jpg"}
    assert len(result["a.jpg"]) == 3  # 2008_002506.jpg: three people facing the camera
    for entries in result.values():
        _check_schema(entries)
    drawn = Image.open(tmp_path / "drawn" / "a.jpg")
    assert drawn.size == Image.open(folder / "a.jpg").size


def test_good_file_exits_zero_and_prints_count(folder, capsys):
    assert main(["detect", str(folder / "a.jpg")]) == 0
    assert "3 faces" in capsys.readouterr().out


def test_json_to_stdout(folder, capsys):
    assert main(["detect", str(folder / "a.jpg"), "--json", "-", "-q"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert list(result) == ["a.jpg"]
    _check_schema(result["a.jpg"])


def test_refine_adds_aligned_landmarks_and_iterations(folder, capsys):
    assert main(["detect", str(folder / "a.jpg"), "--json", "-", "-q"]) == 0
    plain = json.loads(capsys.readouterr().out)["a.jpg"]
    assert main(["detect", str(folder / "a.jpg"), "--refine", "--json", "-", "-q"]) == 0
    refined = json.loads(capsys.readouterr().out)["a.jpg"]
    assert [f["box"] for f in refined] == [f["box"] for f in plain] and "iterations" not in plain[0]
    assert all(1 <= f["iterations"] <= 10 and f["landmarks"] != g["landmarks"] for f, g in zip(refined, plain))
    assert main(["detect", str(folder / "a.jpg"), "--refine", "missing.pt"]) == 2
    assert "aligner weights" in capsys.readouterr().err


def test_missing_file_and_empty_folder_fail(tmp_path, capsys):
    assert main(["detect", str(tmp_path / "nope.jpg")]) == 1
    assert "not found" in capsys.readouterr().err
    (tmp_path / "empty_dir").mkdir()
    assert main(["detect", str(tmp_path / "empty_dir")]) == 1
    assert "no image files" in capsys.readouterr().err


def test_bad_weights_and_thresholds_are_usage_errors(folder, capsys):
    assert main(["detect", str(folder / "a.jpg"), "--weights", "no-such-weights"]) == 2
    assert "unknown weights" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["detect", str(folder / "a.jpg"), "--thresholds", "0.5,0.6"])
    assert exc.value.code == 2


def test_json_is_not_written_half_way_on_failure(folder, tmp_path):
    out = tmp_path / "faces.json"
    out.write_text('{"old": []}')
    code = main(["detect", str(folder / "broken.jpg"), "--json", str(out)])
    assert code == 1
    assert json.loads(out.read_text()) == {}  # replaced whole, never truncated
    assert not list(tmp_path.glob(".faces.json.*"))  # no temporary left behind


def test_console_script_entry_point(folder):
    proc = subprocess.run(
        [sys.executable, "-m", "facecascade.cli", "detect", str(folder / "a.jpg"), "-q", "--json", "-"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout)["a.jpg"]) == 3
