"""The `facecascade eval detection` command on a tiny VOC set of real face_mask photos."""

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from facecascade.cli import main
from facecascade.data import FaceRecord, read_voc

from .shared_data import require

NAMES = ("maksssksksss394", "maksssksksss586", "maksssksksss464")  # 1 + 3 + 4 faces, small photos
HEADER = "| weights | images | faces | AP@0.5 | AP@0.3 | recall@0.5 | recall@0.3 |"


def _voc_set(root, broken: bool):
    """``root/annotations`` + ``root/images`` with 3 real photos, and optionally a corrupt 4th one."""
    src = require("face_mask")
    (root / "annotations").mkdir(parents=True)
    (root / "images").mkdir()
    for name in NAMES:
        shutil.copy(src / "annotations" / f"{name}.xml", root / "annotations")
        shutil.copy(src / "images" / f"{name}.jpg", root / "images")
    if broken:
        xml = (src / "annotations" / f"{NAMES[0]}.xml").read_text().replace(f"{NAMES[0]}.jpg", "broken.jpg")
        (root / "annotations" / "broken.xml").write_text(xml)
        (root / "images" / "broken.jpg").write_text("not a jpeg")
    return [
        "eval",
        "detection",
        "--format",
        "voc",
        "--annotations",
        str(root / "annotations"),
        "--images",
        str(root / "images"),
    ]


def _rows(out):
    lines = [line for line in out.splitlines() if line.startswith("|")]
    return lines[0], [line.strip("| ").split(" | ") for line in lines[2:]]


def test_voc_run_with_corrupt_image(tmp_path, capsys, monkeypatch):
    from facecascade.detect import FaceDetector

    calls = []
    original = FaceDetector.detect_arrays
    monkeypatch.setattr(
        FaceDetector, "detect_arrays", lambda self, arrays: calls.append(len(arrays)) or original(self, arrays)
    )
    args = _voc_set(tmp_path / "set", broken=True)
    out_json, out_png = tmp_path / "out" / "report.json", tmp_path / "out" / "pr.png"
    code = main([*args, "--json", str(out_json), "--plot", str(out_png), "-q"])
    captured = capsys.readouterr()
    assert code == 1
    error_lines = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and "broken.jpg" in error_lines[0]
    assert calls == [1, 1, 1]  # each readable image detected once, for both IoU thresholds
    header, rows = _rows(captured.out)
    assert header == HEADER
    assert len(rows) == 1 and rows[0][:3] == ["mtcnn", "3", "8"]  # the default weights
    ap5, ap3, rec5, rec3 = (float(v) for v in rows[0][3:])
    assert 0.0 < ap5 <= ap3 <= 1.0 and 0.0 < rec5 <= rec3 <= 1.0  # IoU 0.3 is the looser test

    report = json.loads(out_json.read_text())
    assert set(report) == {"dataset", "detector", "iou_thresholds", "min_size", "failed_images", "results"}
    assert report["failed_images"] == [str(tmp_path / "set" / "images" / "broken.jpg")]
    assert report["dataset"]["num_records"] == 4 and report["dataset"]["format"] == "voc"
    result = report["results"]["mtcnn"]
    assert (result["num_images"], result["num_gt"], result["num_ignored"]) == (3, 8, 0)
    assert result["iou"]["0.5"]["ap"] == pytest.approx(ap5, abs=5e-4)
    assert result["iou"]["0.3"]["recall"] == pytest.approx(rec3, abs=5e-4)
    assert Image.open(out_png).format == "PNG"


def test_two_weights_give_two_rows(tmp_path, capsys):
    from facecascade.models.weights import load_mtcnn, save_mtcnn

    checkpoint = tmp_path / "copy.pt"
    save_mtcnn(checkpoint, load_mtcnn("mtcnn-original"))
    args = _voc_set(tmp_path / "set", broken=False)
    code = main(
        [
            *args,
            *("--weights", "mtcnn-original", str(checkpoint), "--min-face", "30", "--min-size", "25"),
            *("--json", str(tmp_path / "r.json"), "-q"),
        ]
    )
    assert code == 0
    _, rows = _rows(capsys.readouterr().out)
    assert [row[0] for row in rows] == ["mtcnn-original", str(checkpoint)]
    assert rows[0][1:] == rows[1][1:]  # the same cascade under two names scores the same
    report = json.loads((tmp_path / "r.json").read_text())
    faces = sum(len(r) for r in read_voc(tmp_path / "set" / "annotations", tmp_path / "set" / "images"))
    low = sum(
        int(((r.boxes[:, 3] - r.boxes[:, 1]) < 25).sum())
        for r in read_voc(tmp_path / "set" / "annotations", tmp_path / "set" / "images")
    )
    for result in report["results"].values():
        assert result["num_ignored"] == low and result["num_gt"] == faces - low


def test_fddb_table_and_roc_plot(tmp_path, capsys, monkeypatch):
    import facecascade.eval.cli as eval_cli

    args = _voc_set(tmp_path / "set", broken=False)
    records = read_voc(tmp_path / "set" / "annotations", tmp_path / "set" / "images")
    monkeypatch.setattr(
        eval_cli,
        "read_records",
        lambda fmt, annotations, images: [FaceRecord(r.image, r.boxes, source="fddb") for r in records],
    )
    args[args.index("voc")] = "fddb"
    plot = tmp_path / "curves.png"
    assert main([*args, "--plot", str(plot), "--limit", "2", "-q"]) == 0
    header, rows = _rows(capsys.readouterr().out)
    assert header == HEADER[:-1] + "| TPR@100FP | TPR@500FP | TPR@1000FP |"
    assert rows[0][1:3] == ["2", str(len(records[0]) + len(records[1]))]
    assert float(rows[0][-1]) == pytest.approx(float(rows[0][5]), abs=1e-3)  # few FPs: TPR@1000 = recall@0.5
    assert plot.is_file() and (tmp_path / "curves_roc.png").is_file()


def test_bad_arguments_exit_2(tmp_path, capsys):
    args = _voc_set(tmp_path / "set", broken=False)
    assert main([*args, "--weights", "no-such-weights", "-q"]) == 2
    assert "no-such-weights" in capsys.readouterr().err
    missing = ["eval", "detection", "--format", "voc", "--annotations", str(tmp_path / "nowhere"), "-q"]
    assert main(missing) == 2
    assert "nowhere" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main([*args, "--val-fraction", "1.5"])
    assert exc.value.code == 2


def test_empty_split_is_an_error(tmp_path, capsys):
    args = _voc_set(tmp_path / "set", broken=False)
    assert main([*args, "--split", "val", "--val-fraction", "0", "-q"]) == 1
    assert "no annotated images" in capsys.readouterr().err


def test_val_split_is_the_hash_split(tmp_path, capsys):
    from facecascade.data import select_split

    args = _voc_set(tmp_path / "set", broken=False)
    records = read_voc(tmp_path / "set" / "annotations", tmp_path / "set" / "images")
    val = select_split(records, "val", 0.7)
    assert 0 < len(val) < len(records)  # the hash split puts 2 of the 3 photos in val
    assert main([*args, "--split", "val", "--val-fraction", "0.7", "-q", "--min-face", "40"]) == 0
    _, rows = _rows(capsys.readouterr().out)
    assert rows[0][1:3] == [str(len(val)), str(sum(len(r) for r in val))]
    assert np.isfinite(float(rows[0][3]))


def test_coco_ap_and_a_two_stage_checkpoint(tmp_path, capsys):
    """``--coco`` adds pycocotools AP columns; a `facecascade train rcnn` checkpoint evaluates
    beside the cascade (an untrained tiny one here: the numbers only need to exist)."""
    from facecascade.models.cascade_rcnn import CascadeRCNN, RCNNConfig
    from facecascade.models.rcnn_weights import save_rcnn

    rcnn = tmp_path / "rcnn.pt"
    save_rcnn(rcnn, CascadeRCNN(RCNNConfig(min_size=96, max_size=128, widths=(8, 16, 16, 32), fpn_channels=16)))
    args = _voc_set(tmp_path / "set", broken=False)
    code = main([*args, "--weights", "mtcnn", str(rcnn), "--coco", "--json", str(tmp_path / "r.json"), "-q"])
    assert code == 0
    assert "| weights | COCO AP | COCO AP50 | COCO AP60 |" in capsys.readouterr().out
    results = json.loads((tmp_path / "r.json").read_text())["results"]
    cascade, two_stage = results["mtcnn"]["coco"], results[str(rcnn)]["coco"]
    assert 0.0 < cascade["AP"] <= cascade["AP50"] <= 1.0
    assert set(two_stage) == {"AP", "AP50", "AP60", "AP70", "AP75", "AP80", "AP90"}
    assert all(0.0 <= v <= 1.0 for v in two_stage.values())
