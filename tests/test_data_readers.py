"""Every dataset reader of `facecascade.data` on small fixtures in the official formats, written into
``tmp_path`` by the tests, with hand-checked boxes and landmarks; malformed input; `read_dataset`;
splits and the points-to-box fit. The real shared copies are checked in ``test_data_shared.py``."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facecascade.data import (
    CELEBA_ATTRIBUTES,
    FORMATS,
    BoxFromPoints,
    FaceRecord,
    caltech,
    default_images,
    ellipse_boxes,
    fit_box_transform,
    ibug68_to_5,
    read_caltech,
    read_caltech_points,
    read_celeba,
    read_celeba_attributes,
    read_coco,
    read_dataset,
    read_fddb,
    read_fddb_ellipses,
    read_imglab,
    read_mtfl,
    read_voc,
    read_wider,
    read_wider_boxes,
    read_wider_mat,
    read_wider_setting,
    select_split,
    split_records,
)

from .wider_mat import cell, write_ground_truth, write_setting

# centre = eye midpoint + 0.5 (mouth - eye midpoint), width = d + o, height = 2 d (d: eyes to mouth,
# o: eye distance): easy to apply by hand in the expected values below
T = BoxFromPoints(shift=0.5, w_mouth=1.0, w_eyes=1.0, h_mouth=2.0, h_eyes=0.0)


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _image(path: Path, width: int, height: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (width, height), (90, 120, 150)).save(path)
    return path


def _assert_boxes(record: FaceRecord, expected) -> None:
    assert record.boxes.dtype == np.float32
    np.testing.assert_allclose(record.boxes, np.asarray(expected, np.float32).reshape(-1, 4), atol=1e-4)


# -- points-to-box transform -------------------------------------------------------------------


def test_box_from_points_by_hand():
    # eyes (10, 20), (30, 20), mouth (20, 40): eye midpoint (20, 20), d = 20, o = 20
    box = T(np.array([[10, 20]]), np.array([[30, 20]]), np.array([[20, 40]]))
    np.testing.assert_allclose(box, [[0, 10, 40, 50]])
    five = np.array([[[10, 20], [30, 20], [20, 30], [14, 40], [26, 40]]], np.float32)  # mouth = corners' mean
    np.testing.assert_allclose(T.from_landmarks(five), [[0, 10, 40, 50]])


def test_fit_box_transform_recovers_known_coefficients(rng):
    truth = BoxFromPoints(shift=0.37, w_mouth=1.4, w_eyes=0.9, h_mouth=2.1, h_eyes=0.3)
    n = 200
    eyes = rng.uniform(50, 400, (n, 2))
    spread = rng.uniform(10, 60, n)
    angle = rng.uniform(-0.4, 0.4, n)
    axis = np.stack([np.cos(angle), np.sin(angle)], 1)
    left, right = eyes - 0.5 * spread[:, None] * axis, eyes + 0.5 * spread[:, None] * axis
    down = np.stack([-np.sin(angle), np.cos(angle)], 1) * rng.uniform(0.7, 1.3, n)[:, None] * spread[:, None]
    mouth = eyes + down + rng.normal(0, 2, (n, 2))  # varying d / o ratios make the fit well-posed
    fitted, stats = fit_box_transform(left, right, mouth, truth(left, right, mouth))
    np.testing.assert_allclose(
        [fitted.shift, fitted.w_mouth, fitted.w_eyes, fitted.h_mouth, fitted.h_eyes],
        [0.37, 1.4, 0.9, 2.1, 0.3],
        atol=1e-4,
    )
    assert stats["faces"] == n and stats["median_iou"] > 0.999 and stats["iou>=0.7"] == 1.0


def test_fit_box_transform_needs_three_faces():
    p = np.zeros((2, 2))
    with pytest.raises(ValueError, match="at least 3"):
        fit_box_transform(p, p + 1, p + 2, np.zeros((2, 4)))


# -- splits ------------------------------------------------------------------------------------


def _records(n: int) -> list[FaceRecord]:
    return [FaceRecord(Path(f"/data/img_{i:04d}.jpg"), np.zeros((0, 4))) for i in range(n)]


def test_split_is_deterministic_disjoint_and_complete():
    records = _records(500)
    train, val = split_records(records, 0.2, seed=3)
    names = lambda rs: [r.image.name for r in rs]  # noqa: E731
    assert not set(names(train)) & set(names(val))
    assert sorted(names(train) + names(val)) == sorted(names(records))
    assert 60 < len(val) < 140
    again_train, again_val = split_records(list(reversed(records)), 0.2, seed=3)  # order does not matter
    assert set(names(again_val)) == set(names(val)) and set(names(again_train)) == set(names(train))
    moved = [FaceRecord(Path("/elsewhere") / r.image.name, r.boxes) for r in records]  # nor the folder
    assert set(names(split_records(moved, 0.2, seed=3)[1])) == set(names(val))
    assert set(names(split_records(records, 0.2, seed=4)[1])) != set(names(val))
    # a larger fraction only adds images to val
    assert set(names(val)) <= set(names(split_records(records, 0.5, seed=3)[1]))


def test_split_keeps_records_of_one_image_together():
    records = [FaceRecord(Path(f"/d/{i % 37}.jpg"), np.zeros((1, 4))) for i in range(300)]
    train, val = split_records(records, 0.3)
    assert not {r.image.name for r in train} & {r.image.name for r in val}


def test_select_split():
    records = _records(100)
    train, val = split_records(records, 0.25, seed=1)
    ids = lambda rs: [id(r) for r in rs]  # noqa: E731
    assert ids(select_split(records, "train", 0.25, seed=1)) == ids(train)
    assert ids(select_split(records, "val", 0.25, seed=1)) == ids(val)
    assert ids(select_split(records, "all")) == ids(records)
    assert split_records(records, 0.0)[1] == [] and split_records(records, 1.0)[0] == []
    with pytest.raises(ValueError, match="split"):
        select_split(records, "test")
    with pytest.raises(ValueError, match="val_fraction"):
        split_records(records, 1.5)


def test_validation_halves_partition_val_and_do_not_depend_on_order():
    records = _records(400)
    names = lambda rs: [r.image.name for r in rs]  # noqa: E731
    val = names(select_split(records, "val", 0.25, seed=2))
    tune = names(select_split(records, "val-tune", 0.25, seed=2))
    report = names(select_split(records, "val-report", 0.25, seed=2))
    assert not set(tune) & set(report) and sorted(tune + report) == sorted(val)
    assert len(val) // 4 < len(tune) < 3 * len(val) // 4  # about half each
    assert names(select_split(list(reversed(records)), "val-tune", 0.25, seed=2)) == list(reversed(tune))
    # a different seed halves differently (the halves use their own hash, not the split's)
    assert set(names(select_split(records, "val-tune", 0.25, seed=3))) != set(tune)


# -- PASCAL VOC --------------------------------------------------------------------------------


def _voc_xml(filename: str, objects: list[tuple[str, tuple[int, int, int, int], int]]) -> str:
    body = "".join(
        f"<object><name>{name}</name><difficult>{difficult}</difficult><bndbox><xmin>{b[0]}</xmin>"
        f"<ymin>{b[1]}</ymin><xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>"
        for name, b, difficult in objects
    )
    return (
        f"<annotation><filename>{filename}</filename><size><width>100</width><height>80</height>"
        f"<depth>3</depth></size>{body}</annotation>"
    )


def _voc_fixture(tmp_path: Path) -> tuple[Path, Path]:
    ann = tmp_path / "Annotations"
    _write(ann / "b.xml", _voc_xml("b.png", [("with_mask", (11, 21, 40, 60), 0), ("without_mask", (1, 1, 5, 9), 1)]))
    _write(ann / "a.xml", _voc_xml("a.png", [("car", (3, 4, 50, 60), 0)]))
    (tmp_path / "images").mkdir()
    return ann, tmp_path / "images"


def test_voc(tmp_path):
    ann, images = _voc_fixture(tmp_path)
    a, b = read_voc(ann, images)
    assert a.image == images / "a.png" and b.image == images / "b.png" and a.source == "voc"
    _assert_boxes(b, [[10, 20, 40, 60], [0, 0, 5, 9]])  # 1-based inclusive -> 0-based [x1, x2)
    assert b.ignore.tolist() == [False, True] and b.landmarks is None
    a, b = read_voc(ann, images, classes=["with_mask", "without_mask"])
    assert len(a) == 0 and len(b) == 2


def test_voc_bad_input(tmp_path):
    with pytest.raises(FileNotFoundError, match="no .xml"):
        read_voc(tmp_path, tmp_path)
    _write(tmp_path / "x.xml", "<annotation><object><name>face</name></object></annotation>")
    with pytest.raises(ValueError, match="bndbox"):
        read_voc(tmp_path, tmp_path)
    _write(tmp_path / "x.xml", "<annotation><object>")
    with pytest.raises(ValueError, match="x.xml"):
        read_voc(tmp_path, tmp_path)
    _write(tmp_path / "x.xml", _voc_xml("x.png", [("face", ("a", 1, 2, 3), 0)]))
    with pytest.raises(ValueError, match="coordinates"):
        read_voc(tmp_path, tmp_path)


# -- Caltech Web Faces -------------------------------------------------------------------------

CALTECH_TEXT = (
    "pic00002.jpg 10 20 30 20 20 32 20 40\n"
    "pic00001.jpg 100.5 50 120.5 50 110 60 110.5 70\n"
    "\n"
    "pic00002.jpg 50 60 70 60 60 72 60 80\n"
)


def test_caltech(tmp_path):
    ann = _write(tmp_path / "WebFaces_GroundThruth.txt", CALTECH_TEXT)
    points = read_caltech_points(ann)
    assert list(points) == ["pic00002.jpg", "pic00001.jpg"] and points["pic00002.jpg"].shape == (2, 4, 2)
    np.testing.assert_allclose(points["pic00001.jpg"][0], [[100.5, 50], [120.5, 50], [110, 60], [110.5, 70]])
    first, second = read_caltech(ann, tmp_path / "images", transform=T)
    assert first.image == tmp_path / "images" / "pic00001.jpg" and first.source == "caltech"
    # eyes' midpoint (110.5, 50), mouth (110.5, 70): d = 20, o = 20
    _assert_boxes(first, [[90.5, 40, 130.5, 80]])
    _assert_boxes(second, [[0, 10, 40, 50], [40, 50, 80, 90]])
    assert not second.ignore.any()


@pytest.mark.parametrize(
    "line, message", [("pic.jpg 1 2 3 4 5 6 7\n", "8 numbers"), ("pic.jpg 1 2 3 4 5 6 7 x\n", "x")]
)
def test_caltech_bad_lines(tmp_path, line, message):
    ann = _write(tmp_path / "gt.txt", "ok.jpg 1 2 3 4 5 6 7 8\n" + line)
    with pytest.raises(ValueError, match=message) as info:
        read_caltech_points(ann)
    assert f"{ann}:2" in str(info.value)


def test_caltech_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_caltech(tmp_path / "nope.txt", tmp_path)


# -- dlib imglab -------------------------------------------------------------------------------


def _ibug_parts() -> tuple[str, np.ndarray]:
    points = np.zeros((68, 2))
    points[36:42] = np.stack([np.arange(10, 16), np.full(6, 20)], 1)  # mean (12.5, 20)
    points[42:48] = np.stack([np.arange(30, 36), np.full(6, 22)], 1)  # mean (32.5, 22)
    points[30], points[48], points[54] = (20, 30), (14, 40), (28, 41)
    xml = "".join(f"<part name='{i:02d}' x='{x:g}' y='{y:g}'/>" for i, (x, y) in enumerate(points))
    return xml, np.array([[12.5, 20], [32.5, 22], [20, 30], [14, 40], [28, 41]])


def _imglab_xml(parts: str = "") -> str:
    return (
        "<?xml version='1.0' encoding='ISO-8859-1'?>\n<dataset><name>faces</name><images>\n"
        "<image file='photos/one.jpg' width='200' height='100'>\n"
        "  <box top='10' left='20' width='30' height='40'/>\n"
        f"  <box top='5.5' left='0' width='8' height='9' ignore='1'>{parts}</box>\n"
        "</image>\n<image file='two.jpg'/>\n</images></dataset>\n"
    )


def test_imglab(tmp_path):
    xml = _write(tmp_path / "ann" / "training.xml", _imglab_xml())
    one, two = read_imglab(xml)
    assert one.image == tmp_path / "ann" / "photos" / "one.jpg" and two.image == tmp_path / "ann" / "two.jpg"
    _assert_boxes(one, [[20, 10, 50, 50], [0, 5.5, 8, 14.5]])
    assert one.ignore.tolist() == [False, True] and one.source == "imglab"
    assert len(two) == 0 and one.landmarks is None and two.landmarks is None
    one, _ = read_imglab(str(xml), images_dir=tmp_path / "pics")
    assert one.image == tmp_path / "pics" / "photos" / "one.jpg"


def test_imglab_68_parts_give_5_landmarks(tmp_path):
    parts, expected = _ibug_parts()
    one, two = read_imglab(_write(tmp_path / "lm.xml", _imglab_xml(parts)))
    assert one.landmarks.shape == (2, 5, 2) and two.landmarks.shape == (0, 5, 2)
    assert one.has_landmarks.tolist() == [False, True]
    np.testing.assert_allclose(one.landmarks[1], expected)
    few = parts.split("/>", 1)[1]  # part 00 missing: no landmarks for that box
    assert read_imglab(_write(tmp_path / "few.xml", _imglab_xml(few)))[0].landmarks is None
    with pytest.raises(ValueError, match=r"68, 2"):
        ibug68_to_5(np.zeros((5, 2)))


@pytest.mark.parametrize(
    "text, message",
    [
        ("<images><image file='a.jpg'><box top='1' left='x' width='3' height='4'/></image></images>", "left='x'"),
        ("<images><image file='a.jpg'><box top='1' left='2' width='3'/></image></images>", "height"),
        ("<images><image><box top='1' left='2' width='3' height='4'/></image></images>", "file"),
        ("<images><image file='a.jpg'>", "xml"),
    ],
)
def test_imglab_bad_input(tmp_path, text, message):
    xml = _write(tmp_path / "bad.xml", text)
    with pytest.raises(ValueError, match=message) as info:
        read_imglab(xml)
    assert str(xml) in str(info.value)


def test_imglab_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.xml"):
        read_imglab(tmp_path / "nope.xml")


# -- COCO --------------------------------------------------------------------------------------


def _coco(tmp_path: Path, person_keypoints: bool = False) -> Path:
    face_points = [15, 30, 2, 35, 30, 2, 25, 40, 2, 18, 50, 2, 32, 50, 1]
    data = {
        "images": [
            {"id": 10, "file_name": "a.jpg", "width": 100, "height": 80},
            {"id": 11, "file_name": "sub/b.jpg", "width": 120, "height": 90},
            {"id": 12, "file_name": "c.jpg", "width": 50, "height": 50},
        ],
        "categories": [{"id": 1, "name": "face"}, {"id": 3, "name": "car"}],
        "annotations": [
            {
                "id": 1,
                "image_id": 10,
                "category_id": 1,
                "bbox": [10, 20, 30, 40],
                "iscrowd": 0,
                "keypoints": face_points,
                "num_keypoints": 5,
            },
            {"id": 2, "image_id": 10, "category_id": 3, "bbox": [50, 60, 10, 5], "iscrowd": 0},
            {"id": 3, "image_id": 11, "category_id": 1, "bbox": [0, 0, 100, 80], "iscrowd": 1},
            {
                "id": 4,
                "image_id": 11,
                "category_id": 1,
                "bbox": [5.5, 6.5, 20, 20],
                "iscrowd": 0,
                "keypoints": [1, 2, 2, 3, 4, 0, 5, 6, 2, 7, 8, 2, 9, 10, 2],
            },
        ],
    }
    if person_keypoints:  # COCO person keypoints have 17 points: not face landmarks
        for a in data["annotations"]:
            a["keypoints"] = [1, 1, 2] * 17
    return _write(tmp_path / "instances.json", json.dumps(data))


def test_coco_faces_of_a_multiclass_file(tmp_path):
    js = _coco(tmp_path)
    for categories in (["face"], [1], ["1"], "face", ("face",)):
        a, b, c = read_coco(js, tmp_path / "img", categories=categories)
        assert [r.image for r in (a, b, c)] == [tmp_path / "img" / n for n in ("a.jpg", "sub/b.jpg", "c.jpg")]
        _assert_boxes(a, [[10, 20, 40, 60]])
        np.testing.assert_allclose(a.landmarks[0], [[15, 30], [35, 30], [25, 40], [18, 50], [32, 50]])
        _assert_boxes(b, [[0, 0, 100, 80], [5.5, 6.5, 25.5, 26.5]])
        assert b.ignore.tolist() == [True, False]  # crowd region
        assert b.has_landmarks.tolist() == [False, False]  # no keypoints; an unlabelled (v = 0) point
        assert len(c) == 0 and c.landmarks.shape == (0, 5, 2) and c.source == "coco"


def test_coco_all_and_other_categories(tmp_path):
    js = _coco(tmp_path)
    a, b, c = read_coco(js, tmp_path)
    _assert_boxes(a, [[10, 20, 40, 60], [50, 60, 60, 65]])
    assert a.has_landmarks.tolist() == [True, False] and len(b) == 2 and len(c) == 0
    a, b, c = read_coco(js, tmp_path, categories=["car", 3])
    _assert_boxes(a, [[50, 60, 60, 65]])
    assert a.landmarks is None and len(b) == 0
    with pytest.raises(ValueError, match="'dog'") as info:
        read_coco(js, tmp_path, categories=["dog"])
    assert "'face' (id 1)" in str(info.value)
    with pytest.raises(ValueError, match="7"):
        read_coco(js, tmp_path, categories=[7])


def test_coco_17_keypoints_are_not_landmarks(tmp_path):
    assert all(r.landmarks is None for r in read_coco(_coco(tmp_path, person_keypoints=True), tmp_path))


@pytest.mark.parametrize(
    "mutate, error, message",
    [
        (lambda d: d["annotations"][0].update(image_id=99), ValueError, "image_id 99"),
        (lambda d: d["annotations"][0].update(bbox=[1, 2, 3]), ValueError, "bbox"),
        (lambda d: d["annotations"][0].update(bbox=[1, 2, "x", 4]), ValueError, "bbox"),
        (lambda d: d.pop("images"), ValueError, "images"),
        (lambda d: d["images"][0].pop("file_name"), ValueError, "file_name"),
    ],
)
def test_coco_bad_input(tmp_path, mutate, error, message):
    js = _coco(tmp_path)
    data = json.loads(js.read_text())
    mutate(data)
    js.write_text(json.dumps(data))
    with pytest.raises(error, match=message) as info:
        read_coco(js, tmp_path)
    assert str(js) in str(info.value)


def test_coco_not_json_or_missing(tmp_path):
    with pytest.raises(ValueError, match="json"):
        read_coco(_write(tmp_path / "x.json", "{not json"), tmp_path)
    with pytest.raises(FileNotFoundError, match="missing.json"):
        read_coco(tmp_path / "missing.json", tmp_path)


def test_coco_degenerate_box_is_ignored(tmp_path):
    js = _write(
        tmp_path / "d.json",
        json.dumps(
            {
                "images": [{"id": 1, "file_name": "a.jpg"}],
                "categories": [{"id": 1, "name": "face"}],
                "annotations": [
                    {"id": 1, "image_id": 1, "category_id": 1, "bbox": [3, 4, 0, 10]},
                    {"id": 2, "image_id": 1, "category_id": 1, "bbox": [3, 4, 5, 10], "ignore": 1},
                ],
            }
        ),
    )
    assert read_coco(js, tmp_path)[0].ignore.tolist() == [True, True]


# -- CelebA ------------------------------------------------------------------------------------

LANDMARKS_HEADER = (
    "lefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x leftmouth_y rightmouth_x rightmouth_y"
)
LANDMARK_ROWS = [
    ("000001.jpg", [70, 110, 106, 110, 88, 130, 74, 150, 102, 150]),
    ("000002.jpg", [60, 100, 100, 100, 80, 120, 70, 140, 90, 140]),
]


def _attribute_values(i: int) -> list[int]:
    return [1 if (k + i) % 3 == 0 else -1 for k in range(40)]


def _celeba(
    root: Path, width: int = 89, height: int = 109, folder: str = "img_align_celeba_89x109", anno: str = ""
) -> Path:
    lines = [str(len(LANDMARK_ROWS)), LANDMARKS_HEADER]
    lines += [f"{name} " + " ".join(f"{v:4d}" for v in values) for name, values in LANDMARK_ROWS]
    _write(root / anno / "list_landmarks_align_celeba.txt", "\n".join(lines) + "\n")
    attrs = [str(len(LANDMARK_ROWS)), " ".join(CELEBA_ATTRIBUTES) + " "]
    attrs += [
        f"{name} " + " ".join(f"{v:2d}" for v in _attribute_values(i)) for i, (name, _) in enumerate(LANDMARK_ROWS)
    ]
    _write(root / anno / "list_attr_celeba.txt", "\n".join(attrs) + "\n")
    for name, _ in LANDMARK_ROWS:
        _image(root / folder / name, width, height)
    return root


def test_celeba_half_size_copy(tmp_path):
    root = _celeba(tmp_path / "celeba")
    first, second = read_celeba(root, box_transform=T)
    assert first.image == root / "img_align_celeba_89x109" / "000001.jpg" and first.source == "celeba"
    # 178 x 218 coordinates halved: eyes (35, 55) (53, 55), nose (44, 65), mouth corners (37, 75) (51, 75)
    np.testing.assert_allclose(first.landmarks[0], [[35, 55], [53, 55], [44, 65], [37, 75], [51, 75]])
    # eye midpoint (44, 55), mouth centre (44, 75): d = 20, o = 18 -> centre (44, 65), 38 x 40
    _assert_boxes(first, [[25, 45, 63, 85]])
    assert first.attributes.shape == (1, 40) and first.attributes.dtype == np.int8
    assert first.attributes[0].tolist() == _attribute_values(0)
    assert second.attributes[0].tolist() == _attribute_values(1)
    # an explicit scale overrides the measured one
    full = read_celeba(root, box_transform=T, scale=1.0)[0]
    np.testing.assert_allclose(full.landmarks[0], np.reshape(LANDMARK_ROWS[0][1], (5, 2)))


def test_celeba_official_layout_full_size(tmp_path):
    root = _celeba(tmp_path, 178, 218, folder="Img/img_align_celeba", anno="Anno")
    first, _ = read_celeba(root, box_transform=T)
    assert first.image == root / "Img" / "img_align_celeba" / "000001.jpg"
    np.testing.assert_allclose(first.landmarks[0], np.reshape(LANDMARK_ROWS[0][1], (5, 2)))
    _assert_boxes(first, [[50, 90, 126, 170]])


def test_celeba_default_box_transform_is_looked_up_at_call_time(tmp_path, monkeypatch):
    root = _celeba(tmp_path)
    monkeypatch.setattr(caltech, "CALTECH_BOXES", T)
    _assert_boxes(read_celeba(root)[0], [[25, 45, 63, 85]])


def test_celeba_csv_variant_and_explicit_files(tmp_path):
    root = tmp_path / "kaggle"
    for name, _ in LANDMARK_ROWS:
        _image(root / "img_align_celeba" / "img_align_celeba" / name, 178, 218)
    # columns in another order than the official header: picked by name
    order = [2, 3, 0, 1, 4, 5, 6, 7, 8, 9]
    header = LANDMARKS_HEADER.split()
    rows = ["image_id," + ",".join(header[k] for k in order)]
    rows += [name + "," + ",".join(str(values[k]) for k in order) for name, values in LANDMARK_ROWS]
    _write(root / "list_landmarks_align_celeba.csv", "\n".join(rows) + "\n")
    reversed_names = list(reversed(CELEBA_ATTRIBUTES))
    attrs = ["image_id," + ",".join(reversed_names)]
    attrs += [
        name + "," + ",".join(str(v) for v in reversed(_attribute_values(i)))
        for i, (name, _) in enumerate(LANDMARK_ROWS)
    ]
    _write(root / "list_attr_celeba.csv", "\n".join(attrs) + "\n")
    first, second = read_celeba(root, box_transform=T)
    np.testing.assert_allclose(first.landmarks[0], np.reshape(LANDMARK_ROWS[0][1], (5, 2)))
    assert second.attributes[0].tolist() == _attribute_values(1)
    assert read_celeba_attributes(root / "list_attr_celeba.csv")["000001.jpg"].tolist() == _attribute_values(0)
    # explicit files and folders; no attributes file at all
    elsewhere = read_celeba(
        tmp_path / "missing",
        landmarks_file=root / "list_landmarks_align_celeba.csv",
        images_dir=root / "img_align_celeba" / "img_align_celeba",
        box_transform=T,
    )
    assert len(elsewhere) == 2 and elsewhere[0].attributes is None  # none found beside the missing root
    (root / "list_attr_celeba.csv").unlink()
    assert read_celeba(root, box_transform=T)[0].attributes is None


def test_celeba_attribute_names():
    assert len(CELEBA_ATTRIBUTES) == 40 == len(set(CELEBA_ATTRIBUTES))
    assert CELEBA_ATTRIBUTES[0] == "5_o_Clock_Shadow" and CELEBA_ATTRIBUTES[20] == "Male"
    assert CELEBA_ATTRIBUTES[-1] == "Young" and CELEBA_ATTRIBUTES[31] == "Smiling"


def _replace_line(path: Path, number: int, text: str) -> None:
    lines = path.read_text().splitlines()
    lines[number - 1] = text
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize(
    "file, number, text, message",
    [
        ("list_landmarks_align_celeba.txt", 1, "3", "says 3 images"),
        ("list_landmarks_align_celeba.txt", 3, "000001.jpg 70 110 106", ":3: expected"),
        ("list_landmarks_align_celeba.txt", 4, "000002.jpg 1 2 3 4 5 6 7 8 9 x", ":4"),
        ("list_landmarks_align_celeba.txt", 2, "a_x a_y b_x b_y c_x c_y d_x d_y e_x e_y", "lefteye_x"),
        ("list_attr_celeba.txt", 4, "000002.jpg" + " 0" * 40, "1 or -1"),
        ("list_attr_celeba.txt", 2, "Bald " * 40, "lacks"),
    ],
)
def test_celeba_bad_lists(tmp_path, file, number, text, message):
    root = _celeba(tmp_path)
    _replace_line(root / file, number, text)
    with pytest.raises(ValueError, match=message) as info:
        read_celeba(root, box_transform=T)
    assert str(root / file) in str(info.value)


def test_celeba_missing_pieces(tmp_path):
    with pytest.raises(FileNotFoundError, match="list_landmarks_align_celeba"):
        read_celeba(tmp_path)
    root = _celeba(tmp_path / "c")
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        read_celeba(root, attributes_file=root / "nope.txt", box_transform=T)
    (root / "img_align_celeba_89x109" / "000001.jpg").unlink()
    with pytest.raises(FileNotFoundError, match="000001.jpg"):
        read_celeba(root, box_transform=T)
    assert len(read_celeba(root, box_transform=T, scale=0.5)) == 2  # nothing to measure: no image needed
    _image(root / "img_align_celeba_89x109" / "000001.jpg", 100, 100)
    with pytest.raises(ValueError, match="scale"):
        read_celeba(root, box_transform=T)
    _write(root / "list_attr_celeba.txt", f"1\n{' '.join(CELEBA_ATTRIBUTES)}\n000001.jpg" + " 1" * 40 + "\n")
    with pytest.raises(ValueError, match="000002.jpg"):
        read_celeba(root, box_transform=T, scale=0.5)


# -- MTFL --------------------------------------------------------------------------------------

MTFL_TEXT = (
    " lfw_5590\\A_0001.jpg 30 50 40 32 48 40 40 50 60 60 1 2 2 3\nnet_7876/sub/B.jpg 1.5 2.5 3.5 4.5 5.5 6 7 8 9 10\n"
)


def test_mtfl(tmp_path):
    lst = _write(tmp_path / "MTFL" / "training.txt", MTFL_TEXT)
    a, b = read_mtfl(lst, box_transform=T)
    assert a.image == tmp_path / "MTFL" / "lfw_5590" / "A_0001.jpg"  # Windows separator converted
    assert b.image == tmp_path / "MTFL" / "net_7876" / "sub" / "B.jpg" and a.source == "mtfl"
    # all x first, then all y
    np.testing.assert_allclose(a.landmarks[0], [[30, 40], [50, 40], [40, 50], [32, 60], [48, 60]])
    np.testing.assert_allclose(b.landmarks[0], [[1.5, 6], [2.5, 7], [3.5, 8], [4.5, 9], [5.5, 10]])
    # eye midpoint (40, 40), mouth centre (40, 60): d = o = 20 -> centre (40, 50), 40 x 40
    _assert_boxes(a, [[20, 30, 60, 70]])
    assert a.attributes is None
    moved = read_mtfl(lst, images_dir=tmp_path / "x", box_transform=T)[0]
    assert moved.image == tmp_path / "x" / "lfw_5590" / "A_0001.jpg"


def test_mtfl_default_box_transform_is_looked_up_at_call_time(tmp_path, monkeypatch):
    lst = _write(tmp_path / "l.txt", MTFL_TEXT)
    monkeypatch.setattr(caltech, "CALTECH_BOXES", T)
    _assert_boxes(read_mtfl(lst)[0], [[20, 30, 60, 70]])


@pytest.mark.parametrize(
    "line, message",
    [
        ("a.jpg 1 2 3 4 5 6 7 8 9\n", "10 coordinates"),
        ("a.jpg 1 2 3 4 5 6 7 8 9 y\n", "y"),
        ("a.jpg 1 2 3 4 5 6 7 8 9 nan\n", "finite"),
    ],
)
def test_mtfl_bad_lines(tmp_path, line, message):
    lst = _write(tmp_path / "l.txt", MTFL_TEXT + "\n" + line)
    with pytest.raises(ValueError, match=message) as info:
        read_mtfl(lst, box_transform=T)
    assert f"{lst}:4" in str(info.value)
    with pytest.raises(FileNotFoundError, match="none.txt"):
        read_mtfl(tmp_path / "none.txt")


# -- WIDER FACE --------------------------------------------------------------------------------

WIDER_TEXT = """0--Parade/0_Parade_marchingband_1_849.jpg
2
449 330 122 149 0 0 0 0 0 0
361 98 263 339 0 0 0 1 0 0
0--Parade/0_Parade_Parade_0_452.jpg
0
0 0 0 0 0 0 0 0 0 0
1--Handshaking/1_Handshaking_1.jpg
1
10 20 0 5 2 0 0 0 1 0"""


def test_wider(tmp_path):
    gt = _write(tmp_path / "wider_face_split" / "wider_face_val_bbx_gt.txt", WIDER_TEXT)
    images = tmp_path / "WIDER_val" / "images"
    a, b, c = read_wider(gt, images)
    assert a.image == images / "0--Parade" / "0_Parade_marchingband_1_849.jpg" and a.source == "wider"
    _assert_boxes(a, [[449, 330, 571, 479], [361, 98, 624, 437]])
    assert a.ignore.tolist() == [False, True]  # invalid = 1
    assert b.image.name == "0_Parade_Parade_0_452.jpg" and len(b) == 0  # placeholder line consumed
    _assert_boxes(c, [[10, 20, 10, 25]])
    assert c.ignore.tolist() == [True]  # w = 0
    rows = read_wider_boxes(gt)[2][1]
    np.testing.assert_array_equal(rows, [[10, 20, 0, 5, 2, 0, 0, 0, 1, 0]])


def test_wider_zero_faces_without_placeholder_at_the_end(tmp_path):
    gt = _write(tmp_path / "gt.txt", WIDER_TEXT + "\n2--Demonstration/x.jpg\n0\n")
    assert len(read_wider(gt, tmp_path)[-1]) == 0


@pytest.mark.parametrize(
    "text, message",
    [
        ("\n".join(WIDER_TEXT.splitlines()[:3]), "truncated"),  # count 2, one box line
        (WIDER_TEXT + "\n3--Riot/y.jpg", "no face count"),
        (WIDER_TEXT.replace("\n2\n", "\ntwo\n"), "face count"),
        (WIDER_TEXT.replace("\n2\n", "\n1\n"), "expected an image path"),  # count below the box lines
        (WIDER_TEXT.replace("449 330", "449 x"), "10 numbers"),
        (WIDER_TEXT.replace("10 20 0 5 2", "10 20 0 5"), "10 numbers"),
        (WIDER_TEXT.replace("\n0\n0 0 0 0 0 0 0 0 0 0", "\n0\n0 0 5 0 0 0 0 0 0 0"), "placeholder"),
    ],
)
def test_wider_malformed(tmp_path, text, message):
    gt = _write(tmp_path / "gt.txt", text)
    with pytest.raises(ValueError, match=message) as info:
        read_wider(gt, tmp_path)
    assert str(gt) in str(info.value)


def test_wider_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="gt.txt"):
        read_wider(tmp_path / "gt.txt", tmp_path)


# the same ground truth as the official wider_face_val.mat: face 2 of the first image invalid, the
# second image without faces, the third one's box empty (w = 0)
WIDER_MAT_EVENTS = {
    "0--Parade": [
        ("0_Parade_marchingband_1_849", [[449, 330, 122, 149], [361, 98, 263, 339]], [0, 1]),
        ("0_Parade_Parade_0_452", [], []),
    ],
    "1--Handshaking": [("1_Handshaking_1", [[10, 20, 0, 5]], [0])],
}


def test_wider_mat_reads_like_the_text_file(tmp_path):
    mat = write_ground_truth(tmp_path / "wider_face_split" / "wider_face_val.mat", WIDER_MAT_EVENTS)
    images = tmp_path / "WIDER_val" / "images"
    from_mat = read_wider(mat, images)
    from_text = read_wider(_write(tmp_path / "gt.txt", WIDER_TEXT), images)
    assert [r.image for r in from_mat] == [r.image for r in from_text]
    assert from_mat[0].image == images / "0--Parade" / "0_Parade_marchingband_1_849.jpg"
    for a, b in zip(from_mat, from_text):
        np.testing.assert_array_equal(a.boxes, b.boxes)
        assert a.ignore.tolist() == b.ignore.tolist() and a.source == "wider"
    assert [len(r) for r in read_wider_mat(mat, images)] == [2, 0, 1]
    images.mkdir(parents=True)
    assert read_dataset("wider", mat)[0].image.parent.parent == images  # by default WIDER_val/images


def test_wider_setting_file(tmp_path):
    kept = [[[1], []], [[1]]]  # the first face of the first and of the third image
    setting = read_wider_setting(write_setting(tmp_path / "wider_easy_val.mat", WIDER_MAT_EVENTS, kept))
    assert list(setting) == [
        ("0--Parade", "0_Parade_marchingband_1_849"),
        ("0--Parade", "0_Parade_Parade_0_452"),
        ("1--Handshaking", "1_Handshaking_1"),
    ]
    assert [v.tolist() for v in setting.values()] == [[0], [], [0]]  # 0-based
    unnamed = write_setting(tmp_path / "wider_hard_val.mat", WIDER_MAT_EVENTS, kept, names=False)
    names = write_ground_truth(tmp_path / "wider_face_val.mat", WIDER_MAT_EVENTS)
    assert {k: v.tolist() for k, v in read_wider_setting(unnamed, names).items()} == {
        k: v.tolist() for k, v in setting.items()
    }
    with pytest.raises(ValueError, match="no event_list and file_list"):
        read_wider_setting(unnamed)


def test_wider_mat_errors(tmp_path):
    from scipy.io import savemat

    savemat(tmp_path / "partial.mat", {"event_list": cell(["0--Parade"])})
    with pytest.raises(ValueError, match="missing file_list, face_bbx_list") as info:
        read_wider_mat(tmp_path / "partial.mat", tmp_path)
    assert "partial.mat" in str(info.value)
    with pytest.raises(ValueError, match="not a readable MATLAB"):
        read_wider_mat(_write(tmp_path / "text.mat", "not a mat file"), tmp_path)
    with pytest.raises(FileNotFoundError, match="none.mat"):
        read_wider_mat(tmp_path / "none.mat", tmp_path)
    savemat(tmp_path / "short.mat", {"event_list": cell(["a", "b"]), "file_list": cell([cell(["x"])]), "gt_list": 0})
    with pytest.raises(ValueError, match="file_list has 1 events, event_list has 2"):
        read_wider_setting(tmp_path / "short.mat")
    bad = write_setting(tmp_path / "bad.mat", WIDER_MAT_EVENTS, [[[0], []], [[1]]])  # 0 is no 1-based index
    with pytest.raises(ValueError, match="not 1-based indices"):
        read_wider_setting(bad)


def test_wider_mat_without_scipy(tmp_path, monkeypatch):
    import sys

    mat = write_ground_truth(tmp_path / "wider_face_val.mat", WIDER_MAT_EVENTS)
    monkeypatch.setitem(sys.modules, "scipy.io", None)  # `from scipy.io import loadmat` raises ImportError
    with pytest.raises(ImportError, match=r'pip install "facecascade\[wider\]"'):
        read_wider(mat, tmp_path)


# -- FDDB --------------------------------------------------------------------------------------

FOLD_1 = """2002/08/11/big/img_591
1
123.583300 85.549500 1.265839 269.693400 161.781200  1
2002/08/26/big/img_265
2
10 6 0 100 50  1
10 6 1.5707963267948966 200 100  1
"""
FOLD_2 = "2003/01/01/big/img_1\n1\n5 3 0.7853981633974483 20 30 1\n"


def test_fddb_boxes_bound_the_ellipses(tmp_path):
    fold = _write(tmp_path / "FDDB-folds" / "FDDB-fold-01-ellipseList.txt", FOLD_1)
    a, b = read_fddb(fold, tmp_path / "originalPics")
    assert a.image == tmp_path / "originalPics" / "2002" / "08" / "11" / "big" / "img_591.jpg"
    assert a.source == "fddb" and a.landmarks is None
    _assert_boxes(b, [[90, 44, 110, 56], [194, 90, 206, 110]])  # angle 0 and 90 degrees
    # 45 degrees, a = 5, b = 3: half-extents sqrt((25 + 9) / 2) both ways
    h = math.sqrt(17)
    np.testing.assert_allclose(
        ellipse_boxes([[5, 3, math.pi / 4, 20, 30]]), [[20 - h, 30 - h, 20 + h, 30 + h]], rtol=1e-6
    )
    # the box touches the ellipse: the extremes of densely sampled boundary points
    major, minor, angle, cx, cy = 123.5833, 85.5495, 1.265839, 269.6934, 161.7812
    t = np.linspace(0, 2 * np.pi, 200001)
    x = cx + major * np.cos(t) * np.cos(angle) - minor * np.sin(t) * np.sin(angle)
    y = cy + major * np.cos(t) * np.sin(angle) + minor * np.sin(t) * np.cos(angle)
    np.testing.assert_allclose(a.boxes[0], [x.min(), y.min(), x.max(), y.max()], atol=1e-3)


def test_fddb_folder_of_folds_and_ellipses(tmp_path):
    folds = tmp_path / "FDDB-folds"
    _write(folds / "FDDB-fold-02-ellipseList.txt", FOLD_2)
    _write(folds / "FDDB-fold-01-ellipseList.txt", FOLD_1)
    _write(folds / "FDDB-fold-01.txt", "2002/08/11/big/img_591\n2002/08/26/big/img_265\n")  # image lists: skipped
    ellipses = read_fddb_ellipses(folds)
    assert list(ellipses) == ["2002/08/11/big/img_591", "2002/08/26/big/img_265", "2003/01/01/big/img_1"]
    assert ellipses["2002/08/26/big/img_265"].shape == (2, 5) and ellipses["2002/08/26/big/img_265"].dtype == np.float32
    np.testing.assert_allclose(ellipses["2003/01/01/big/img_1"], [[5, 3, math.pi / 4, 20, 30]], rtol=1e-6)
    assert [r.image.name for r in read_fddb(folds, tmp_path)] == ["img_591.jpg", "img_265.jpg", "img_1.jpg"]


@pytest.mark.parametrize(
    "text, message",
    [
        (FOLD_1.replace("\n2\n", "\n3\n"), "truncated"),
        (FOLD_1.replace("\n2\n", "\n1\n"), "expected an image path"),
        (FOLD_1.replace("10 6 0 100", "10 6 0 x"), "major_radius"),
        (FOLD_1 + "2003/x\n", "no face count"),
        (FOLD_1.replace("\n2\n", "\n2.5\n"), "face count"),
    ],
)
def test_fddb_malformed(tmp_path, text, message):
    fold = _write(tmp_path / "FDDB-fold-03-ellipseList.txt", text)
    with pytest.raises(ValueError, match=message) as info:
        read_fddb(fold, tmp_path)
    assert str(fold) in str(info.value)


def test_fddb_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="ellipseList"):
        read_fddb(tmp_path, tmp_path)
    with pytest.raises(FileNotFoundError, match="fold-01"):
        read_fddb(tmp_path / "FDDB-fold-01-ellipseList.txt", tmp_path)


# -- read_dataset ------------------------------------------------------------------------------


def test_read_dataset_dispatches_every_format(tmp_path, monkeypatch):
    monkeypatch.setattr(caltech, "CALTECH_BOXES", T)
    images = tmp_path / "images"
    images.mkdir()
    ann, _ = _voc_fixture(tmp_path / "voc")
    celeba = _celeba(tmp_path / "celeba")
    cases = {
        "voc": (ann, images, {"classes": ["with_mask"]}),
        "caltech": (_write(tmp_path / "caltech.txt", CALTECH_TEXT), images, {}),
        "imglab": (_write(tmp_path / "imglab" / "faces.xml", _imglab_xml()), None, {}),
        "coco": (_coco(tmp_path), images, {"categories": ["face"]}),
        "wider": (_write(tmp_path / "wider.txt", WIDER_TEXT), images, {}),
        "fddb": (_write(tmp_path / "fddb" / "FDDB-fold-01-ellipseList.txt", FOLD_1), images, {}),
        "celeba": (celeba, None, {}),
        "mtfl": (_write(tmp_path / "mtfl" / "list.txt", MTFL_TEXT), None, {}),
    }
    assert set(cases) == set(FORMATS) and len(FORMATS) == 8
    sizes = {}
    for fmt, (labels, imgs, kwargs) in cases.items():
        records = read_dataset(fmt, str(labels), None if imgs is None else str(imgs), **kwargs)
        assert all(isinstance(r, FaceRecord) for r in records)
        sizes[fmt] = [len(r) for r in records]
    assert sizes == {
        "voc": [0, 1],
        "caltech": [1, 2],
        "imglab": [2, 0],
        "coco": [1, 2, 0],
        "wider": [2, 0, 1],
        "fddb": [1, 2],
        "celeba": [1, 1],
        "mtfl": [1, 1],
    }
    _assert_boxes(read_dataset("caltech", tmp_path / "caltech.txt", images)[0], [[90.5, 40, 130.5, 80]])
    # celeba: the folder or its landmarks list; an explicit box transform
    by_file = read_dataset(
        "CelebA", celeba / "list_landmarks_align_celeba.txt", box_transform=BoxFromPoints(0.5, 2.0, 2.0, 4.0, 0.0)
    )
    _assert_boxes(by_file[0], [[6, 25, 82, 105]])  # twice T's size around the same centre
    assert by_file[0].attributes is not None


def test_read_dataset_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset format 'yolo'") as info:
        read_dataset("yolo", tmp_path)
    assert all(f in str(info.value) for f in FORMATS)
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        read_dataset("wider", tmp_path / "nope.txt", tmp_path)
    gt = _write(tmp_path / "gt.txt", WIDER_TEXT)
    with pytest.raises(FileNotFoundError, match="no_images"):
        read_dataset("wider", gt, tmp_path / "no_images")
    with pytest.raises(FileNotFoundError, match="nope.xml"):
        read_dataset("imglab", tmp_path / "nope.xml")


def test_read_dataset_default_image_folders(tmp_path):
    """Without ``images``, each format's usual layout is used; otherwise the annotations' folder."""

    def make(*parts: str) -> Path:
        path = tmp_path.joinpath(*parts)
        path.mkdir(parents=True, exist_ok=True)
        return path

    voc = make("VOC2007", "Annotations")
    _write(voc / "a.xml", _voc_xml("a.jpg", [("face", (1, 1, 5, 5), 0)]))
    assert default_images("voc", voc) == voc
    assert read_dataset("voc", voc)[0].image == voc / "a.jpg"
    assert read_dataset("voc", voc.parent / "Annotations")[0].image == voc / "a.jpg"
    make("VOC2007", "JPEGImages")
    assert read_dataset("voc", voc)[0].image == tmp_path / "VOC2007" / "JPEGImages" / "a.jpg"

    gt = _write(tmp_path / "Caltech" / "WebFaces_GroundThruth.txt", CALTECH_TEXT)
    assert default_images("caltech", gt) == gt.parent
    make("Caltech", "images")
    assert read_dataset("caltech", gt)[0].image == gt.parent / "images" / "pic00001.jpg"

    js = _coco(make("coco", "annotations"))
    assert default_images("coco", js) == js.parent
    make("coco", "instances")  # instances.json -> split "instances"
    assert read_dataset("coco", js)[0].image == tmp_path / "coco" / "instances" / "a.jpg"
    coco = _write(tmp_path / "coco" / "annotations" / "instances_val2017.json", js.read_text())
    make("coco", "val2017")
    assert default_images("coco", coco) == tmp_path / "coco" / "val2017"

    wider = _write(tmp_path / "wider" / "wider_face_split" / "wider_face_val_bbx_gt.txt", WIDER_TEXT)
    assert default_images("wider", wider) == wider.parent
    make("wider", "WIDER_val", "images")
    assert read_dataset("wider", wider)[0].image.parent.parent == tmp_path / "wider" / "WIDER_val" / "images"

    fold = _write(tmp_path / "fddb" / "FDDB-folds" / "FDDB-fold-01-ellipseList.txt", FOLD_1)
    assert default_images("fddb", fold) == default_images("fddb", fold.parent) == tmp_path / "fddb"
    make("fddb", "originalPics")
    assert (
        read_dataset("fddb", fold.parent)[0].image
        == tmp_path / "fddb" / "originalPics" / "2002" / "08" / "11" / "big" / "img_591.jpg"
    )
    for fmt in ("imglab", "celeba", "mtfl"):
        assert default_images(fmt, fold) is None
