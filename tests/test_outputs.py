"""Result files: atomic writes, the JSON lines / CSV / COCO schemas, attributes in each."""

import csv
import json
import os

import numpy as np
import pytest
from pycocotools.coco import COCO

from facecascade import Faces
from facecascade.outputs import AtomicFile, CocoWriter, CsvWriter, JsonLinesWriter, Record, write_json_atomic


def _faces(n=2, attributes=True):
    boxes = np.array([[10, 20, 50, 70], [100, 40, 130, 80]], np.float32)[:n]
    landmarks = np.arange(n * 10, dtype=np.float32).reshape(n, 5, 2)
    names = ("Smiling", "Eyeglasses") if attributes else ()
    probs = np.array([[0.9, 0.1], [0.2, 0.7]], np.float32)[:n, : len(names)]
    return Faces(boxes, np.array([0.99, 0.8], np.float32)[:n], landmarks, probs, names)


RECORDS = [
    Record("a.jpg", None, 640, 480, _faces()),
    Record("empty.png", None, 10, 10, _faces(0)),
    Record("clip.mp4", 7, 320, 240, _faces(1)),
]


def test_atomic_text_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), AtomicFile(target) as out:
        out.file.write("half")
        raise RuntimeError("crash mid-run")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]
    write_json_atomic(target, {"a": 1})
    assert json.loads(target.read_text()) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]
    mask = os.umask(0o022)
    try:
        write_json_atomic(tmp_path / "new.json", [])
    finally:
        os.umask(mask)
    assert (tmp_path / "new.json").stat().st_mode & 0o777 == 0o644  # as open() would, not mkstemp's 0o600


def test_json_lines(tmp_path):
    with JsonLinesWriter(tmp_path / "sub" / "o.jsonl") as w:
        for r in RECORDS:
            w.write(r)
    lines = [json.loads(line) for line in (tmp_path / "sub" / "o.jsonl").read_text().splitlines()]
    assert [set(line) for line in lines] == [{"file", "width", "height", "faces"}] * 2 + [
        {"file", "frame", "width", "height", "faces"}
    ]
    assert lines[2]["frame"] == 7 and lines[1]["faces"] == []
    face = lines[0]["faces"][1]
    assert face["box"] == [100.0, 40.0, 130.0, 80.0] and face["attributes"] == pytest.approx(
        {"Smiling": 0.2, "Eyeglasses": 0.7}
    )
    assert face["landmarks"][0] == [10.0, 11.0]


def test_csv_one_row_per_face(tmp_path):
    with CsvWriter(tmp_path / "o.csv") as w:
        for r in RECORDS:
            w.write(r)
    rows = list(csv.DictReader((tmp_path / "o.csv").open()))
    assert len(rows) == 3  # 2 + 0 + 1 faces
    assert list(rows[0])[:8] == ["file", "frame", "face", "score", "x1", "y1", "x2", "y2"]
    assert list(rows[0])[-2:] == ["Smiling", "Eyeglasses"]
    assert rows[0]["frame"] == "" and rows[2]["frame"] == "7" and rows[1]["face"] == "1"
    assert float(rows[1]["nose_x"]) == 14.0 and float(rows[1]["Eyeglasses"]) == pytest.approx(0.7)


def test_csv_without_landmarks_or_attributes(tmp_path):
    with CsvWriter(tmp_path / "o.csv") as w:
        w.write(Record("a.jpg", None, 64, 64, Faces(np.array([[1, 2, 3, 4]]), [0.5])))
    rows = list(csv.reader((tmp_path / "o.csv").open()))
    assert rows[0] == ["file", "frame", "face", "score", "x1", "y1", "x2", "y2"]
    assert rows[1] == ["a.jpg", "", "0", "0.5", "1", "2", "3", "4"]


def test_coco_loads_with_pycocotools(tmp_path):
    path = tmp_path / "coco.json"
    with CocoWriter(path) as w:
        for r in RECORDS:
            w.write(r)
    coco = COCO(str(path))
    assert len(coco.imgs) == 3 and len(coco.anns) == 3
    ann = coco.anns[2]
    assert ann["image_id"] == 1 and ann["bbox"] == [100.0, 40.0, 30.0, 40.0] and ann["area"] == 1200.0
    assert ann["keypoints"][:3] == [10.0, 11.0, 2] and ann["num_keypoints"] == 5
    assert coco.imgs[3]["frame"] == 7 and coco.imgs[3]["file_name"] == "clip.mp4"
    assert coco.cats[1]["keypoints"][0] == "left_eye"
    results = coco.loadRes(coco.dataset["annotations"])  # also a valid results list
    assert len(results.anns) == 3


def test_coco_crash_leaves_no_file(tmp_path):
    with pytest.raises(KeyboardInterrupt), CocoWriter(tmp_path / "coco.json") as w:
        w.write(RECORDS[0])
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []
