"""The WIDER FACE evaluation protocol (`facecascade.eval.wider_protocol`) on hand-computed fixtures,
its settings (height buckets, the official setting files), its agreement with our VOC AP where the
two coincide, and `facecascade eval detection --format wider`."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from facecascade.cli import main
from facecascade.data import FaceRecord
from facecascade.eval.matching import box_iou
from facecascade.eval.metrics import evaluate_detections
from facecascade.eval.wider_protocol import (
    evaluate_wider,
    image_eval,
    image_pr_info,
    normalise_scores,
    thresholds,
)
from facecascade.eval.wider_settings import BUCKETS_KIND, HeightBuckets, official_settings

from .shared_data import require
from .wider_mat import write_ground_truth, write_setting

# -- a hand-computed dataset ------------------------------------------------------------------------
#
# Image A, faces: A0 [0,0,40,40] and A1 [100,0,140,40] count (40 px high); A2 [200,0,240,40] is
# flagged invalid; A3 [300,0,310,10] is 10 px high, below the 20 px bucket.
# Image B, faces: B0 [0,0,50,50] and B1 [100,100,150,150] count. So 4 faces count at >= 20 px.
#
# Detections, with the score they have after normalisation (raw = 0.1 + 0.8 * normalised, so
# min 0.1 -> 0 and max 0.9 -> 1; the .0005 keeps every score off the 1/1000 threshold grid):
#   A: a1 on A0 (1.0), a2 [1,1,41,41] a duplicate on A0 (0.8005; IoU 39²/(2·40² - 39²) = 0.906),
#      a3 on invalid A2 (0.7005), a4 on small A3 (0.5005), a5 on nothing (0.3005)
#   B: b1 on B0 (0.9005), b2 on nothing (0.6005), b3 [110,100,160,150] on B1 (0.0;
#      IoU 40·50 / (2·2500 - 2000) = 0.667: a hit at IoU 0.5, a miss at 0.75)
A = FaceRecord(
    "event/a.jpg", [[0, 0, 40, 40], [100, 0, 140, 40], [200, 0, 240, 40], [300, 0, 310, 10]], ignore=[0, 0, 1, 0]
)
B = FaceRecord("event/b.jpg", [[0, 0, 50, 50], [100, 100, 150, 150]])
RECORDS = [A, B]


def _raw(normalised: list[float]) -> np.ndarray:
    return 0.1 + 0.8 * np.asarray(normalised)


PREDICTIONS = [
    (
        np.array([[0, 0, 40, 40], [1, 1, 41, 41], [200, 0, 240, 40], [300, 0, 310, 10], [400, 400, 440, 440.0]]),
        _raw([1.0, 0.8005, 0.7005, 0.5005, 0.3005]),
    ),
    (np.array([[0, 0, 50, 50], [300, 300, 340, 340], [110, 100, 160, 150.0]]), _raw([0.9005, 0.6005, 0.0])),
]


def _at(curve, threshold: float) -> tuple[int, int, float, float]:
    """(proposals, recalled, precision, recall) of a curve at the threshold nearest ``threshold``."""
    t = int(np.argmin(np.abs(curve.thresholds - threshold)))
    assert curve.thresholds[t] == pytest.approx(threshold)
    return int(curve.proposals[t]), int(curve.recalled[t]), float(curve.precision[t]), float(curve.recall_curve[t])


def test_thresholds_and_normalisation():
    cuts = thresholds()
    assert len(cuts) == 1000 and cuts[0] == pytest.approx(0.999) and cuts[-1] == 0.0
    a, b = normalise_scores([_raw([1.0, 0.5]), _raw([0.0])])
    np.testing.assert_allclose(np.concatenate([a, b]), [1.0, 0.5, 0.0])
    assert [s.tolist() for s in normalise_scores([np.array([0.7, 0.7]), np.zeros(0)])] == [[1.0, 1.0], []]


def test_image_eval_marks_ignored_and_duplicate_detections():
    counted = HeightBuckets((20,)).counted(A)[0]
    assert counted.tolist() == [True, True, False, False]  # A2 invalid, A3 10 px high
    pred_recall, proposal = image_eval(box_iou(PREDICTIONS[0][0], A.boxes), counted, 0.5)
    # a1 recalls A0; a2 (duplicate) a proposal recalling nothing; a3, a4 on ignored faces: no proposals
    assert proposal.tolist() == [True, True, False, False, True]
    assert pred_recall.tolist() == [1, 1, 1, 1, 1]
    proposals, recalled = image_pr_info(
        np.array([1.0, 0.8005, 0.7005, 0.5005, 0.3005]), proposal, pred_recall, thresholds()
    )
    # at 0.75: a1, a2 reach it -> 2 proposals, 1 recalled; at 0.45: a3, a4 too, still 2; at 0: 3
    assert (proposals[249], recalled[249]) == (2, 1)
    assert (proposals[549], recalled[549]) == (2, 1)
    assert (proposals[999], recalled[999]) == (3, 1)


def test_hand_computed_pr_points_and_ap():
    report = evaluate_wider(PREDICTIONS, RECORDS, HeightBuckets((20,)))
    result = report["height_20"]
    assert result.num_faces == 4 and report.settings_kind == BUCKETS_KIND and report.num_skipped == 0
    curve = result.curves[0.5]
    # (proposals, recalled) summed over A and B at each threshold; precision = recalled / proposals,
    # recall = recalled / 4
    assert _at(curve, 0.95) == (1, 1, 1.0, 0.25)  # A: a1 (1, 1); B: nothing (0, 0)
    assert _at(curve, 0.85) == (2, 2, 1.0, 0.5)  # + b1: B (1, 1)
    assert _at(curve, 0.75)[:2] == (3, 2)  # + a2 (duplicate): A (2, 1); precision 2/3
    assert _at(curve, 0.65)[:2] == (3, 2)  # + a3 on the invalid face: no proposal
    assert _at(curve, 0.55) == (4, 2, 0.5, 0.5)  # + b2: B (2, 1)
    assert _at(curve, 0.45) == (4, 2, 0.5, 0.5)  # + a4 on the 10 px face: no proposal
    assert _at(curve, 0.25) == (5, 2, 0.4, 0.5)  # + a5: A (3, 1)
    assert _at(curve, 0.0) == (6, 3, 0.5, 0.75)  # + b3 on B1: B (3, 2)
    # AP: recall steps 0 -> .25 -> .5 -> .75 with the precision envelope 1, 1, 0.5:
    # .25 * 1 + .25 * 1 + .25 * .5 = 0.625; final recall 3/4
    assert result.ap(0.5) == pytest.approx(0.625) and result.recall(0.5) == pytest.approx(0.75)
    # IoU 0.75: b3 (IoU 0.667) misses B1, so the last point is (6, 2): .25 * 1 + .25 * 1 = 0.5
    assert _at(result.curves[0.75], 0.0) == (6, 2, pytest.approx(1 / 3), 0.5)
    assert result.ap(0.75) == pytest.approx(0.5) and result.recall(0.75) == pytest.approx(0.5)


def test_buckets_count_faces_by_height():
    report = evaluate_wider(PREDICTIONS, RECORDS, HeightBuckets())
    # >= 10 px: A0, A1, A3 (10 px), B0, B1 = 5 (A2 invalid); >= 20: 4; >= 50: B0, B1 (50 px) = 2
    assert [r.num_faces for r in report.results.values()] == [5, 4, 2]
    assert [r.label for r in report.results.values()] == ["≥10 px", "≥20 px", "≥50 px"]
    # >= 10: a4 now recalls A3: the 0.45 point has A (3, 2) and B (2, 1) -> (5, 3)
    assert _at(report["height_10"].curves[0.5], 0.45)[:2] == (5, 3)
    # >= 50: A0 and A1 do not count: a1 and a2 on A0 are no proposals
    assert _at(report["height_50"].curves[0.5], 0.75)[:2] == (1, 1)  # b1 only


def test_an_image_without_faces_is_skipped_as_in_the_official_tool():
    empty = FaceRecord("event/c.jpg", np.zeros((0, 4)))
    fp = (np.array([[0, 0, 30, 30.0]]), np.array([0.5]))
    report = evaluate_wider([*PREDICTIONS, fp], [*RECORDS, empty], HeightBuckets((20,)))
    assert report.num_skipped == 1 and report.num_images == 3
    assert report["height_20"].ap(0.5) == pytest.approx(0.625)  # the false positive costs nothing
    voc = evaluate_detections([*PREDICTIONS, fp], [*RECORDS, empty], (0.5,), min_size=20)
    assert voc.ap(0.5) < 0.625  # VOC counts it


def test_no_counted_faces_give_nan():
    report = evaluate_wider(PREDICTIONS, RECORDS, HeightBuckets((1000,)))
    result = report["height_1000"]
    assert result.num_faces == 0 and np.isnan(result.ap(0.5)) and np.isnan(result.recall(0.5))
    assert report.to_dict()["settings"]["height_1000"]["iou"]["0.5"]["ap"] is None


def _coinciding_dataset(seed: int = 3):
    """12 images with 1-4 faces each, none ignored; per face maybe a detection jittered by 8 % of
    its size (some fall below IoU 0.5 or 0.75), plus false positives away from the faces; distinct
    scores spread evenly from 0 to 1 (more than 2/1000 apart, so no two share a threshold step)."""
    rng = np.random.default_rng(seed)
    records, boxes = [], []
    for i in range(12):
        xy = rng.uniform(0, 400, (int(rng.integers(1, 5)), 2))
        gt = np.concatenate([xy, xy + rng.uniform(15, 80, (len(xy), 1))], 1)
        det = gt[rng.random(len(gt)) < 0.8]
        det = det + rng.normal(0, 0.08, det.shape) * (det[:, 2:3] - det[:, 0:1])
        false = rng.uniform(600, 900, (int(rng.integers(0, 3)), 2))
        boxes.append(np.concatenate([det, np.concatenate([false, false + 30], 1)]))
        records.append(FaceRecord(f"event/{i}.jpg", gt))
    scores = rng.permutation(np.linspace(0.0, 1.0, sum(len(b) for b in boxes)))
    assert np.diff(np.sort(scores)).min() > 2 / 1000
    ends = np.cumsum([len(b) for b in boxes])
    return records, [(b, scores[e - len(b) : e]) for b, e in zip(boxes, ends)]


def test_wider_ap_equals_voc_ap_where_the_protocols_coincide():
    records, predictions = _coinciding_dataset()
    voc = evaluate_detections(predictions, records, (0.5, 0.75))
    wider = evaluate_wider(predictions, records, HeightBuckets((0,)))["height_0"]
    assert wider.num_faces == voc.num_gt > 20
    assert 0.2 < voc.ap(0.5) < 1.0 and voc.ap(0.75) < voc.ap(0.5)  # a case with misses and duplicates
    for iou in (0.5, 0.75):
        assert wider.ap(iou) == pytest.approx(voc.ap(iou), abs=1e-12)
        assert wider.recall(iou) == pytest.approx(voc.recall(iou), abs=1e-12)


# -- the official setting files ---------------------------------------------------------------------

EVENTS = {
    "0--Parade": [("a", [[0, 0, 40, 40], [100, 0, 40, 40], [300, 0, 10, 10]], [0, 0, 0])],
    "1--Handshaking": [("b", [[0, 0, 50, 50]], [0])],
}
KEPT = {"easy": [[[1]], [[1]]], "medium": [[[1, 2]], [[1]]], "hard": [[[1, 2, 3]], [[1]]]}


def _settings_folder(root, names: bool = True):
    write_ground_truth(root / "wider_face_val.mat", EVENTS)
    for name, kept in KEPT.items():
        write_setting(root / f"wider_{name}_val.mat", EVENTS, kept, names=names)
    return root


def test_official_settings(tmp_path):
    from facecascade.data import read_wider_mat

    records = read_wider_mat(_settings_folder(tmp_path / "gt") / "wider_face_val.mat", tmp_path)
    for folder in (tmp_path / "gt", _settings_folder(tmp_path / "unnamed", names=False)):
        settings = official_settings(folder)
        assert settings.keys == ("easy", "medium", "hard") and "easy/medium/hard" in settings.kind
        assert settings.counted(records[0]).tolist() == [[1, 0, 0], [1, 1, 0], [1, 1, 1]]
        assert settings.counted(records[1]).tolist() == [[1], [1], [1]]
    other = FaceRecord(tmp_path / "0--Parade" / "z.jpg", np.zeros((1, 4)))
    with pytest.raises(ValueError, match="z.jpg: not in the WIDER setting file of easy"):
        settings.check([*records, other])
    short = FaceRecord(records[0].image, records[0].boxes[:2])
    with pytest.raises(ValueError, match="hard setting keeps face 3, the annotations have 2"):
        settings.counted(short)
    (tmp_path / "gt" / "wider_medium_val.mat").unlink()
    with pytest.raises(FileNotFoundError, match="wider_medium_val.mat"):
        official_settings(tmp_path / "gt")


# -- the command line -------------------------------------------------------------------------------

PHOTOS = {  # dlib's hand-drawn boxes (testing.xml), x y w h; one face of the first photo flagged invalid
    "2008_002470": [
        [274, 181, 52, 53],
        [55, 156, 44, 44],
        [146, 166, 37, 37],
        [329, 55, 44, 44],
        [233, 74, 44, 44],
        [178, 86, 37, 37],
    ],
    "2008_002506": [[329, 78, 109, 109], [224, 95, 91, 91], [125, 65, 90, 91]],
}
INVALID = {"2008_002470": [0, 0, 0, 0, 0, 1], "2008_002506": [0, 0, 0]}


def _wider_set(root):
    """``root/WIDER_val/images/0--Parade/<photo>.jpg`` and ``root/wider_face_split/``'s text and .mat
    ground truth (the same faces)."""
    images = root / "WIDER_val" / "images"
    (images / "0--Parade").mkdir(parents=True)
    lines = []
    for name, boxes in PHOTOS.items():
        shutil.copy(require("dlib_faces") / f"{name}.jpg", images / "0--Parade" / f"{name}.jpg")
        lines += [f"0--Parade/{name}.jpg", str(len(boxes))]
        lines += [f"{x} {y} {w} {h} 0 0 0 {bad} 0 0" for (x, y, w, h), bad in zip(boxes, INVALID[name])]
    text = root / "wider_face_split" / "wider_face_val_bbx_gt.txt"
    text.parent.mkdir(parents=True)
    text.write_text("\n".join(lines) + "\n")
    events = {"0--Parade": [(name, boxes, INVALID[name]) for name, boxes in PHOTOS.items()]}
    write_ground_truth(root / "wider_face_split" / "wider_face_val.mat", events)
    return text, images, events


def _command(annotations, images, *more) -> list[str]:
    return ["eval", "detection", "--format", "wider", "--annotations", str(annotations), "--images", str(images), *more]


def test_cli_height_buckets(tmp_path, capsys, monkeypatch):
    from facecascade.detect import FaceDetector

    calls = []
    original = FaceDetector.detect_arrays
    monkeypatch.setattr(
        FaceDetector, "detect_arrays", lambda self, arrays: calls.append(len(arrays)) or original(self, arrays)
    )
    text, images, _ = _wider_set(tmp_path / "wider")
    out_json, out_png = tmp_path / "out" / "r.json", tmp_path / "out" / "pr.png"
    assert main(_command(text, images, "--json", str(out_json), "--plot", str(out_png), "-q")) == 0
    assert calls == [1, 1]  # each image detected once; every bucket and IoU scores the same detections
    out = capsys.readouterr().out
    assert "| weights | images | faces | AP@0.5 | AP@0.3 |" in out  # the VOC table is still there
    assert "WIDER FACE protocol, settings: height buckets (no WIDER setting files given)" in out
    lines = out.splitlines()
    header = lines.index("| weights | images | faces ≥10 | AP ≥10 px | AP ≥20 px | AP ≥50 px |")
    row = lines[header + 2].strip("| ").split(" | ")
    assert row[:3] == ["mtcnn", "2", "8"]  # 9 faces, one invalid
    assert all(0.0 < float(v) <= 1.0 for v in row[3:])
    assert "| weights | setting | faces | AP@0.5 | AP@0.75 | recall@0.5 | recall@0.75 |" in out
    assert "| mtcnn | ≥50 px | 4 |" in out  # 109, 91, 91 and 53 px high

    result = json.loads(out_json.read_text())["results"]["mtcnn"]
    assert {"iou", "num_gt"} <= set(result)  # the VOC keys stay
    wider = result["wider"]
    assert wider["settings_kind"] == BUCKETS_KIND and wider["num_images"] == 2
    assert list(wider["settings"]) == ["height_10", "height_20", "height_50"]
    assert [s["num_faces"] for s in wider["settings"].values()] == [8, 8, 4]
    at_50 = wider["settings"]["height_10"]["iou"]["0.5"]
    assert at_50["ap"] == pytest.approx(float(row[3]), abs=5e-4) and 0.0 < at_50["recall"] <= 1.0
    assert len(at_50["curve"]["threshold"]) == len(at_50["curve"]["precision"]) <= 100
    assert at_50["curve"]["threshold"][-1] == 0.0
    assert set(wider["settings"]["height_20"]["iou"]) == {"0.5", "0.75"}
    assert Image.open(out_png).format == "PNG"


def test_cli_official_settings(tmp_path, capsys):
    _, images, events = _wider_set(tmp_path / "wider")
    settings = tmp_path / "eval_tools" / "ground_truth"
    kept = {
        "easy": [[[1, 2, 3], [1, 2]]],
        "medium": [[[1, 2, 3, 4, 5], [1, 2, 3]]],
        "hard": [[[1, 2, 3, 4, 5, 6], [1, 2, 3]]],
    }
    for name, indices in kept.items():
        write_setting(settings / f"wider_{name}_val.mat", events, indices)
    mat = tmp_path / "wider" / "wider_face_split" / "wider_face_val.mat"
    out_json = tmp_path / "r.json"
    assert main(_command(mat, images, "--wider-settings", str(settings), "--json", str(out_json), "-q")) == 0
    out = capsys.readouterr().out
    assert f"settings: WIDER setting files easy/medium/hard ({settings})" in out
    assert "| weights | images | faces hard | AP easy | AP medium | AP hard |" in out
    wider = json.loads(out_json.read_text())["results"]["mtcnn"]["wider"]
    # hard keeps the invalid face 6: the setting alone decides, as in the official tool
    assert [s["num_faces"] for s in wider["settings"].values()] == [5, 8, 9]


def test_cli_bad_wider_input_exits_2(tmp_path, capsys):
    from scipy.io import savemat

    text, images, _ = _wider_set(tmp_path / "wider")
    broken = tmp_path / "wider_face_val.mat"
    savemat(broken, {"event_list": np.zeros((1, 1))})
    assert main(_command(broken, images, "-q")) == 2
    assert "missing file_list, face_bbx_list" in capsys.readouterr().err
    assert main(_command(text, images, "--wider-settings", str(tmp_path / "none"), "-q")) == 2
    assert "wider_easy_val.mat" in capsys.readouterr().err
    voc = ["eval", "detection", "--format", "voc", "--annotations", str(text), "--wider-settings", str(tmp_path)]
    assert main([*voc, "-q"]) == 2
    assert "--wider-settings needs --format wider" in capsys.readouterr().err
