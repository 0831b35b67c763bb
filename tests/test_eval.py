"""Detection evaluation: VOC matching, precision/recall, all-point AP, discrete ROC, plots."""

import json
import math

import numpy as np
import pytest

from facecascade.data import FaceRecord
from facecascade.eval.matching import DROPPED, box_iou, match_detections
from facecascade.eval.metrics import (
    DetectionReport,
    average_precision,
    discrete_roc,
    evaluate_detections,
    precision_recall,
    tp_rate_at_fp,
)
from facecascade.structures import Faces

A = [0, 0, 10, 10]
B = [20, 0, 30, 10]


def _record(boxes, ignore=None, name="img.jpg"):
    return FaceRecord(name, np.asarray(boxes, np.float32).reshape(-1, 4), ignore=ignore)


# --- matching -----------------------------------------------------------------------------------


def test_box_iou_hand_values():
    iou = box_iou(np.array([A, [1, 0, 11, 10]]), np.array([A, B, [0, 0, 10, 20]]))
    # [1,0,11,10] vs A: intersection 9x10 = 90, union 100 + 100 - 90 = 110.
    np.testing.assert_allclose(iou, [[1.0, 0.0, 0.5], [90 / 110, 0.0, 90 / 210]])
    assert box_iou(np.zeros((0, 4)), np.array([A])).shape == (0, 1)
    assert box_iou(np.array([[5, 5, 5, 5]]), np.array([[5, 5, 5, 5]]))[0, 0] == 0.0  # empty union: 0, no NaN
    assert box_iou(np.array([[10, 10, 0, 0]]), np.array([A]))[0, 0] == 0.0  # inverted box: empty


def test_tp_duplicate_and_unmatched_false_positives():
    boxes = [A, [1, 0, 11, 10], B, [50, 50, 60, 60]]
    scores = [0.9, 0.8, 0.7, 0.95]
    m = match_detections(boxes, scores, [A, B])
    # 0.95 overlaps nothing (FP); 0.9 takes A (TP); 0.8 has IoU 0.82 with the taken A (FP); 0.7 takes B.
    assert m.labels.tolist() == [1, 0, 1, 0]
    assert m.matched.tolist() == [0, 0, 1, -1]
    assert (m.num_tp, m.num_fp, m.num_gt, m.num_ignored) == (2, 2, 2, 0)


def test_higher_score_matches_first_whatever_the_input_order():
    m = match_detections([[1, 0, 11, 10], A], [0.5, 0.9], [A])
    assert m.labels.tolist() == [0, 1]


def test_equal_scores_keep_input_order():
    m = match_detections([[1, 0, 11, 10], A], [0.5, 0.5], [A])
    assert m.labels.tolist() == [1, 0]


def test_best_face_taken_is_a_false_positive_even_if_another_face_overlaps_enough():
    # VOC rule: the second detection's best face is A (IoU 80/120 = 0.67), already taken, so it is a
    # false positive although it overlaps the free face C by 60/140 = 0.43 >= 0.3.
    c = [6, 0, 16, 10]
    m = match_detections([A, [2, 0, 12, 10]], [0.9, 0.8], [A, c], iou_threshold=0.3)
    assert m.labels.tolist() == [1, 0]
    assert m.matched.tolist() == [0, 0]


def test_ignored_faces_drop_their_detections_and_duplicates():
    m = match_detections(
        [A, [1, 0, 11, 10], B, [50, 50, 60, 60]], [0.9, 0.8, 0.7, 0.6], [A, B], gt_ignore=[True, False]
    )
    assert m.labels.tolist() == [DROPPED, DROPPED, 1, 0]
    assert (m.num_gt, m.num_ignored) == (1, 1)


def test_min_size_ignores_low_faces():
    small, tall = [0, 0, 10, 10], [20, 0, 40, 30]  # heights 10 and 30
    m = match_detections([small, tall], [0.9, 0.8], [small, tall], min_size=20)
    assert m.labels.tolist() == [DROPPED, 1]
    assert m.ignore.tolist() == [True, False]
    m = match_detections([small, tall], [0.9, 0.8], [small, tall], min_size=10)  # "below" is strict
    assert m.labels.tolist() == [1, 1]


def test_iou_threshold_is_inclusive():
    det = [A]
    half = [0, 0, 10, 20]  # IoU 100 / 200 = 0.5
    third = [0, 0, 10, 30]  # IoU 100 / 300 = 0.33
    assert match_detections(det, [1.0], [half], iou_threshold=0.5).labels.tolist() == [1]
    assert match_detections(det, [1.0], [third], iou_threshold=0.5).labels.tolist() == [0]
    assert match_detections(det, [1.0], [third], iou_threshold=0.3).labels.tolist() == [1]


def test_matching_empty_inputs():
    none = match_detections(np.zeros((0, 4)), np.zeros(0), [A, B])
    assert none.labels.shape == (0,) and none.num_gt == 2
    no_faces = match_detections([A, B], [0.5, 0.4], np.zeros((0, 4)))
    assert no_faces.labels.tolist() == [0, 0] and no_faces.num_gt == 0
    both = match_detections(np.zeros((0, 4)), np.zeros(0), np.zeros((0, 4)))
    assert both.labels.shape == (0,) and both.num_gt == 0
    with pytest.raises(ValueError):
        match_detections([A], [0.5, 0.4], [A])


def test_random_matching_invariants(rng):
    for _ in range(50):
        gt = rng.uniform(0, 100, (rng.integers(0, 6), 2))
        gt = np.hstack([gt, gt + rng.uniform(5, 30, gt.shape)])
        det = gt[rng.integers(0, max(len(gt), 1), rng.integers(0, 10))] if len(gt) else np.zeros((0, 4))
        det = det + rng.normal(0, 3, det.shape)
        ignore = rng.random(len(gt)) < 0.3
        m = match_detections(det, rng.random(len(det)), gt, ignore, 0.5)
        taken = m.matched[m.labels == 1]
        assert len(set(taken.tolist())) == len(taken)  # each face taken at most once
        assert not ignore[taken].any()
        assert (ignore[m.matched[m.labels == DROPPED]]).all()


# --- precision, recall, AP ----------------------------------------------------------------------


def test_average_precision_all_point_interpolation_where_precision_rises_again():
    # Ranked detections T F F T T, 4 faces (one never found):
    #   precision 1, 1/2, 1/3, 2/4, 3/5    recall 1/4, 1/4, 1/4, 2/4, 3/4
    # Precision made monotone from the right: 1 at recall 1/4, 0.6 at 2/4 and 3/4, 0 beyond.
    # AP = 1/4 * 1 + 1/4 * 0.6 + 1/4 * 0.6 + 1/4 * 0 = 0.55   (without interpolation: 0.525)
    precision, recall = precision_recall(np.array([1, 0, 0, 1, 1], bool), 4)
    np.testing.assert_allclose(precision, [1, 1 / 2, 1 / 3, 2 / 4, 3 / 5])
    np.testing.assert_allclose(recall, [0.25, 0.25, 0.25, 0.5, 0.75])
    assert average_precision(precision, recall) == pytest.approx(0.55)


def test_average_precision_complete_recall():
    # T T F T F, 3 faces: precision 1, 1, 2/3, 3/4, 3/5 at recall 1/3, 2/3, 2/3, 1, 1.
    # AP = 1/3 * 1 + 1/3 * 1 + 1/3 * 3/4 = 0.91667
    assert average_precision(*precision_recall(np.array([1, 1, 0, 1, 0], bool), 3)) == pytest.approx(11 / 12)
    assert average_precision(*precision_recall(np.ones(4, bool), 4)) == pytest.approx(1.0)
    assert average_precision(np.zeros(0), np.zeros(0)) == 0.0


def _dataset_with_ranking():
    """Two images whose 5 detections rank T F F T T over 4 faces (one face missed)."""
    records = [_record([A, B], name="one.jpg"), _record([A, B], name="two.jpg")]
    far = [70, 70, 80, 80]
    predictions = [
        (np.array([A, far, B], np.float32), np.array([0.9, 0.8, 0.6])),  # T (0.9), F (0.8), T (0.6)
        (np.array([far, A], np.float32), np.array([0.7, 0.5])),  # F (0.7), T (0.5); B missed
    ]
    return predictions, records


def test_evaluate_detections_over_images():
    predictions, records = _dataset_with_ranking()
    report = evaluate_detections(predictions, records)
    assert (report.num_images, report.num_detections, report.num_gt, report.num_ignored) == (2, 5, 4, 0)
    assert report.iou_thresholds == [0.5, 0.3]
    r = report[0.5]
    assert r.tp.tolist() == [True, False, False, True, True]
    np.testing.assert_allclose(r.scores, [0.9, 0.8, 0.7, 0.6, 0.5])
    assert r.ap == pytest.approx(0.55) and report.ap(0.3) == pytest.approx(0.55)
    assert r.recall == pytest.approx(0.75) and (r.num_tp, r.num_fp) == (3, 2)


def test_evaluate_accepts_faces_and_counts_ignored_and_min_size():
    records = [_record([A, [20, 0, 40, 30], [50, 0, 80, 30]], ignore=[False, False, True])]
    faces = Faces(np.array([A, [20, 0, 40, 30], [50, 0, 80, 30]]), np.array([0.9, 0.8, 0.7]))
    report = evaluate_detections([faces], records, min_size=20)
    # A (height 10) is ignored by min_size, the third face by its flag: one face counts.
    assert (report.num_gt, report.num_ignored, report.num_detections) == (1, 2, 3)
    assert report[0.5].num_dropped == 2 and report[0.5].tp.tolist() == [True]
    assert report.ap() == pytest.approx(1.0) and report.recall() == pytest.approx(1.0)


def test_empty_inputs():
    no_dets = evaluate_detections([(np.zeros((0, 4)), np.zeros(0))], [_record([A, B])])
    assert no_dets.ap() == 0.0 and no_dets.recall() == 0.0 and no_dets.num_gt == 2
    assert no_dets[0.5].roc()[0].shape == (0,)
    no_faces = evaluate_detections([(np.array([A]), np.array([0.9]))], [_record(np.zeros((0, 4)))])
    assert math.isnan(no_faces.ap()) and math.isnan(no_faces.recall()) and no_faces[0.5].num_fp == 1
    both = evaluate_detections([(np.zeros((0, 4)), np.zeros(0))], [_record(np.zeros((0, 4)))])
    assert math.isnan(both.ap()) and both.num_images == 1 and both.num_detections == 0
    nothing = evaluate_detections([], [])
    assert nothing.num_images == 0 and math.isnan(nothing.ap(0.3))
    for report in (no_dets, no_faces, both, nothing):
        json.dumps(report.to_dict(), allow_nan=False)  # NaN becomes null
    assert no_faces.to_dict()["iou"]["0.5"]["ap"] is None
    with pytest.raises(ValueError):
        evaluate_detections([], [_record([A])])


def _reference_ap(scores, flags, num_gt):
    """Brute force: mean over the faces of the best precision at a recall at least the face's rank."""
    ranked = [f for _, f in sorted(zip(scores, flags), key=lambda p: -p[0])]
    points = []
    hits = 0
    for k, f in enumerate(ranked, 1):
        hits += f
        points.append((hits / num_gt, hits / k))
    total = 0.0
    for j in range(1, num_gt + 1):
        reached = [p for r, p in points if r >= j / num_gt - 1e-12]
        total += max(reached) if reached else 0.0
    return total / num_gt


def test_ap_matches_brute_force_reference(rng):
    for _ in range(30):
        num_images = int(rng.integers(1, 6))
        records, predictions, flags, all_scores = [], [], [], []
        for i in range(num_images):
            gt = rng.uniform(0, 200, (rng.integers(0, 5), 2))
            gt = np.hstack([gt, gt + 20])
            records.append(_record(gt, name=f"{i}.jpg"))
            hits = gt[rng.random(len(gt)) < 0.7]
            misses = rng.uniform(300, 400, (rng.integers(0, 4), 2))
            boxes = np.vstack([hits, np.hstack([misses, misses + 20])])
            scores = rng.random(len(boxes))
            predictions.append((boxes, scores))
            flags += [1] * len(hits) + [0] * len(misses)
            all_scores += scores.tolist()
        report = evaluate_detections(predictions, records, (0.5,))
        if report.num_gt == 0:
            continue
        assert report.ap() == pytest.approx(_reference_ap(all_scores, flags, report.num_gt), abs=1e-12)
        assert report.recall() == pytest.approx(sum(flags) / report.num_gt)


def test_to_dict_schema_and_subsampled_curve(rng):
    n = 1000
    gt = np.hstack([np.arange(n)[:, None] * 30.0, np.zeros((n, 1))])
    gt = np.hstack([gt, gt + 20])
    found = rng.random(n) < 0.8
    boxes = np.vstack([gt[found], gt[~found] + 10000])  # unfound faces get far-away false positives
    report = evaluate_detections([(boxes, rng.random(n))], [_record(gt)])
    d = report.to_dict()
    assert set(d) == {"num_images", "num_detections", "num_gt", "num_ignored", "min_size", "iou"}
    assert set(d["iou"]) == {"0.5", "0.3"}
    entry = d["iou"]["0.5"]
    assert set(entry) == {"iou_threshold", "ap", "recall", "num_tp", "num_fp", "num_dropped", "curve"}
    curve = entry["curve"]
    assert 150 <= len(curve["recall"]) <= 200 and len(curve["precision"]) == len(curve["score"]) == len(curve["recall"])
    assert curve["recall"][-1] == pytest.approx(entry["recall"], abs=1e-6)
    assert curve["score"] == sorted(curve["score"], reverse=True)
    json.dumps(d, allow_nan=False)


# --- discrete ROC -------------------------------------------------------------------------------


def test_discrete_roc_hand_case():
    # Ranked: 0.9 T, 0.8 F, 0.8 T, 0.7 F, 0.6 T over 4 faces. Thresholds 0.9, 0.8, 0.7, 0.6 give
    # (FP, TP) = (0, 1), (1, 2), (2, 2), (2, 3): the tie at 0.8 enters as one point.
    far = [70, 70, 80, 80]
    c, d = [40, 0, 50, 10], [0, 40, 10, 50]
    records = [_record([A, B, c, d])]
    predictions = [(np.array([A, far, B, far, c]), np.array([0.9, 0.8, 0.8, 0.7, 0.6]))]
    fp, tp = discrete_roc(predictions, records, normalize=False)
    assert fp.tolist() == [0, 1, 2, 2] and tp.tolist() == [1, 2, 2, 3]
    fp, rate = discrete_roc(predictions, records)
    np.testing.assert_allclose(rate, [0.25, 0.5, 0.5, 0.75])
    assert tp_rate_at_fp(fp, rate, 0) == 0.25
    assert tp_rate_at_fp(fp, rate, 1) == 0.5
    assert tp_rate_at_fp(fp, rate, 1000) == 0.75
    assert tp_rate_at_fp(np.array([1]), np.array([0.5]), 0) == 0.0


# --- plots --------------------------------------------------------------------------------------


def test_plots_write_png(tmp_path):
    from facecascade.eval.plots import plot_pr_curves, plot_roc

    predictions, records = _dataset_with_ranking()
    report = evaluate_detections(predictions, records)
    empty = evaluate_detections([(np.zeros((0, 4)), np.zeros(0))], [_record(np.zeros((0, 4)))])
    reports: dict[str, DetectionReport] = {"a": report, "b.pt": report, "no faces": empty}
    for path in (plot_pr_curves(reports, tmp_path / "sub" / "pr.png"), plot_roc(reports, tmp_path / "roc.png")):
        data = path.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
