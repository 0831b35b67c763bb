"""Box geometry, box/landmark coding and NMS (`facecascade.ops.boxes`, `facecascade.ops.coding`)."""

from __future__ import annotations

import pytest
import torch

from facecascade.ops import boxes as boxes_module
from facecascade.ops.boxes import box_area, box_iou, clip_boxes, crop_windows, nms, square_boxes, top_k_per_group
from facecascade.ops.coding import apply_offsets, decode_landmarks, encode_landmarks, encode_offsets


def _random_boxes(n: int, extent: float = 60.0, max_side: float = 30.0) -> torch.Tensor:
    xy = torch.rand(n, 2) * extent
    wh = torch.rand(n, 2) * max_side + 1.0
    return torch.cat([xy, xy + wh], 1)


# -- geometry ----------------------------------------------------------------------------------


def test_box_iou_hand_computed():
    a = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    b = torch.tensor(
        [
            [5.0, 5.0, 15.0, 15.0],  # inter 5*5 = 25, union 100 + 100 - 25 = 175
            [0.0, 0.0, 10.0, 10.0],  # identical
            [10.0, 0.0, 20.0, 10.0],  # touching edge
            [2.0, 3.0, 6.0, 5.0],
        ]
    )  # inside: 8 / 100
    iou = box_iou(a, b)
    assert iou.shape == (1, 4)
    torch.testing.assert_close(iou[0], torch.tensor([25 / 175, 1.0, 0.0, 0.08]))
    torch.testing.assert_close(box_iou(b, a)[:, 0], iou[0])
    torch.testing.assert_close(box_area(b), torch.tensor([100.0, 100.0, 100.0, 8.0]))


def test_square_boxes_hand_computed():
    boxes = torch.tensor(
        [
            [0.0, 0.0, 10.0, 4.0],  # wide: side 10, centre (5, 2)
            [2.0, 3.0, 4.0, 9.0],  # tall: side 6, centre (3, 6)
            [1.0, 1.0, 5.0, 5.0],
        ]
    )  # already square
    before = boxes.clone()
    out = square_boxes(boxes)
    expected = torch.tensor([[0.0, -3.0, 10.0, 7.0], [0.0, 3.0, 6.0, 9.0], [1.0, 1.0, 5.0, 5.0]])
    torch.testing.assert_close(out, expected)
    assert torch.equal(boxes, before)  # returns a new tensor


def test_square_boxes_keep_centre_random():
    boxes = _random_boxes(50)
    out = square_boxes(boxes)
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    torch.testing.assert_close(out[:, 2] - out[:, 0], torch.maximum(w, h))
    torch.testing.assert_close(out[:, 3] - out[:, 1], torch.maximum(w, h))
    torch.testing.assert_close((out[:, :2] + out[:, 2:]) / 2, (boxes[:, :2] + boxes[:, 2:]) / 2)


def test_clip_boxes():
    boxes = torch.tensor([[-5.0, -2.0, 30.0, 50.0], [3.0, 4.0, 7.0, 8.0], [25.0, 45.0, 26.0, 46.0]])
    before = boxes.clone()
    out = clip_boxes(boxes, width=20, height=40)
    expected = torch.tensor([[0.0, 0.0, 20.0, 40.0], [3.0, 4.0, 7.0, 8.0], [20.0, 40.0, 20.0, 40.0]])
    assert torch.equal(out, expected)
    assert torch.equal(boxes, before)


def test_crop_windows_hand_computed():
    # trunc -> [0, 2, 10, 8]; window [max(0-1, 0), max(2-1, 0), min(10, W), min(8, H))
    box = torch.tensor([[0.5, 2.7, 10.2, 8.9]])
    wide = crop_windows(box, torch.tensor([20]), torch.tensor([8]))  # W = 20, H = 8
    assert wide.dtype == torch.int64
    assert wide.tolist() == [[0, 1, 10, 8]]
    tall = crop_windows(box, torch.tensor([8]), torch.tensor([20]))  # W = 8, H = 20
    assert tall.tolist() == [[0, 1, 8, 8]]


def test_crop_windows_rules():
    boxes = torch.tensor(
        [
            [3.9, 5.2, 12.99, 14.0],  # trunc [3, 5, 12, 14] -> [2, 4, 12, 14)
            [-3.7, -0.5, 4.2, 5.9],  # trunc [-3, 0, 4, 5] -> [0, 0, 4, 5)
            [90.0, 1.0, 150.5, 70.2],  # clipped at W = 100, H = 60
            [10.0, 10.0, 20.0, 20.0],
        ]
    )  # in a second, small image 15 x 12 (W x H)
    widths = torch.tensor([100, 100, 100, 15])
    heights = torch.tensor([60, 60, 60, 12])
    out = crop_windows(boxes, widths, heights)
    assert out.tolist() == [[2, 4, 12, 14], [0, 0, 4, 5], [89, 0, 100, 60], [9, 9, 15, 12]]


# -- coding ------------------------------------------------------------------------------------


def test_apply_offsets_hand_computed():
    boxes = torch.tensor([[10.0, 20.0, 30.0, 60.0]])
    offsets = torch.tensor([[0.1, -0.1, 0.2, 0.05]])
    # exclusive: w = 20, h = 40; inclusive: w = 21, h = 41
    torch.testing.assert_close(apply_offsets(boxes, offsets, inclusive=False), torch.tensor([[12.0, 16.0, 34.0, 62.0]]))
    torch.testing.assert_close(apply_offsets(boxes, offsets, inclusive=True), torch.tensor([[12.1, 15.9, 34.2, 62.05]]))


@pytest.mark.parametrize("inclusive", [True, False])
def test_offsets_round_trip(inclusive):
    boxes = _random_boxes(100).double()
    targets = _random_boxes(100).double()
    offsets = encode_offsets(boxes, targets, inclusive)
    assert torch.allclose(apply_offsets(boxes, offsets, inclusive), targets, atol=1e-9)
    raw = torch.randn(100, 4, dtype=torch.float64) * 0.3
    assert torch.allclose(encode_offsets(boxes, apply_offsets(boxes, raw, inclusive), inclusive), raw, atol=1e-9)
    # float32 as the cascade uses it
    b32, t32 = boxes.float(), targets.float()
    assert torch.allclose(apply_offsets(b32, encode_offsets(b32, t32, inclusive), inclusive), t32, atol=1e-4)


def test_inclusive_flag_changes_result():
    boxes = _random_boxes(10)
    offsets = torch.full((10, 4), 0.5)
    diff = apply_offsets(boxes, offsets, True) - apply_offsets(boxes, offsets, False)
    torch.testing.assert_close(diff, torch.full((10, 4), 0.5))  # 0.5 * one extra pixel


def test_decode_landmarks_hand_computed():
    boxes = torch.tensor([[10.0, 20.0, 29.0, 59.0]])  # inclusive size 20 x 40
    rel = torch.tensor([[[0.5, 0.25], [0.0, 0.0], [1.0, 1.0]]])
    out = decode_landmarks(boxes, rel)
    # x = x1 - 1 + rx * 20, y = y1 - 1 + ry * 40
    torch.testing.assert_close(out, torch.tensor([[[19.0, 29.0], [9.0, 19.0], [29.0, 59.0]]]))


def test_landmarks_round_trip():
    boxes = _random_boxes(40).double()
    rel = torch.rand(40, 5, 2, dtype=torch.float64)
    points = decode_landmarks(boxes, rel)
    assert points.shape == (40, 5, 2)
    assert torch.allclose(encode_landmarks(boxes, points), rel, atol=1e-12)
    pts = torch.rand(40, 5, 2, dtype=torch.float64) * 90
    assert torch.allclose(decode_landmarks(boxes, encode_landmarks(boxes, pts)), pts, atol=1e-9)


# -- NMS ---------------------------------------------------------------------------------------


def _overlap(a: list[float], b: list[float], mode: str) -> float:
    extra = 1.0 if mode == "min" else 0.0
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]) + extra)
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]) + extra)
    inter = iw * ih
    area_a = (a[2] - a[0] + extra) * (a[3] - a[1] + extra)
    area_b = (b[2] - b[0] + extra) * (b[3] - b[1] + extra)
    if mode == "min":
        return inter / min(area_a, area_b)
    return inter / (area_a + area_b - inter)


def _greedy_reference(boxes, scores, threshold, groups, mode):
    boxes, scores, groups = boxes.tolist(), scores.tolist(), groups.tolist()
    order = sorted(range(len(boxes)), key=lambda i: -scores[i])
    kept: list[int] = []
    for i in order:
        if all(groups[i] != groups[j] or _overlap(boxes[i], boxes[j], mode) <= threshold for j in kept):
            kept.append(i)
    return kept


@pytest.mark.parametrize("mode", ["union", "min", "min-streamed"])
@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_nms_matches_brute_force(mode, threshold, seed, monkeypatch):
    if mode == "min-streamed":  # the O(N)-memory path that large inputs take
        monkeypatch.setattr(boxes_module, "MIN_NMS_MATRIX", 0)
        mode = "min"
    torch.manual_seed(seed)
    # clusters of jittered copies (high overlaps) plus scattered boxes (all overlaps)
    base = _random_boxes(10, extent=80.0, max_side=30.0).repeat_interleave(8, 0)
    base[:, 2:] += 9.0  # sides >= 10, so the jitter below keeps every box valid
    clustered = base + (torch.rand(80, 4) - 0.5) * torch.rand(80, 1) * 8
    assert bool((clustered[:, 2:] > clustered[:, :2]).all())
    boxes = torch.cat([clustered, _random_boxes(40, extent=60.0, max_side=25.0)])
    n = len(boxes)
    scores = torch.randperm(n).float() / n + torch.rand(n) * 1e-3  # distinct
    groups = torch.randint(0, 3, (n,))
    keep = nms(boxes, scores, threshold, groups=groups, mode=mode)
    assert keep.dtype == torch.int64
    expected = _greedy_reference(boxes, scores, threshold, groups, mode)
    assert keep.tolist() == expected
    assert 3 < len(expected) < n  # the case really suppresses and really keeps
    no_groups = nms(boxes, scores, threshold, mode=mode)
    assert no_groups.tolist() == _greedy_reference(boxes, scores, threshold, torch.zeros(n), mode)
    assert len(no_groups) < len(keep)  # groups protect boxes of other groups


def test_nms_min_differs_from_union():
    # a small box inside a big one: IoU 0.04 (kept by union), overlap-over-min 1.0 (dropped by min)
    boxes = torch.tensor([[0.0, 0.0, 49.0, 49.0], [10.0, 10.0, 19.0, 19.0]])
    scores = torch.tensor([0.9, 0.8])
    assert nms(boxes, scores, 0.5).tolist() == [0, 1]
    assert nms(boxes, scores, 0.5, mode="min").tolist() == [0]


def test_nms_min_uses_inclusive_pixels():
    # [0, 9] and [5, 14] along x: 10 pixels each, 5 shared -> 0.5 with inclusive areas
    # (continuous areas would give 4 / 9 = 0.444)
    boxes = torch.tensor([[0.0, 0.0, 9.0, 9.0], [5.0, 0.0, 14.0, 9.0]])
    scores = torch.tensor([0.6, 0.9])
    assert nms(boxes, scores, 0.5, mode="min").tolist() == [1, 0]  # 0.5 is not > 0.5
    assert nms(boxes, scores, 0.47, mode="min").tolist() == [1]  # 0.5 > 0.47 > 0.444
    # touching at one pixel column x = 9: inclusive intersection 1 x 10
    touch = torch.tensor([[0.0, 0.0, 9.0, 9.0], [9.0, 0.0, 18.0, 9.0]])
    assert nms(touch, scores, 0.09, mode="min").tolist() == [1]
    assert nms(touch, scores, 0.1, mode="min").tolist() == [1, 0]


def test_nms_union_threshold_is_strict():
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 20.0]])  # IoU exactly 0.5
    scores = torch.tensor([0.2, 0.7])
    assert nms(boxes, scores, 0.5).tolist() == [1, 0]
    assert nms(boxes, scores, 0.49).tolist() == [1]


def test_nms_groups_hand_case():
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0]] * 3)
    scores = torch.tensor([0.5, 0.9, 0.7])
    groups = torch.tensor([0, 0, 1])
    for mode in ("union", "min"):
        assert nms(boxes, scores, 0.5, groups=groups, mode=mode).tolist() == [1, 2]


@pytest.mark.parametrize("mode", ["union", "min"])
def test_nms_empty(mode):
    keep = nms(torch.zeros((0, 4)), torch.zeros(0), 0.5, mode=mode)
    assert keep.dtype == torch.int64 and keep.shape == (0,)
    keep = nms(torch.zeros((0, 4)), torch.zeros(0), 0.5, groups=torch.zeros(0, dtype=torch.long), mode=mode)
    assert keep.dtype == torch.int64 and keep.shape == (0,)


def test_nms_bad_mode():
    with pytest.raises(ValueError, match="mode"):
        nms(torch.zeros((1, 4)), torch.zeros(1), 0.5, mode="iou")


def test_top_k_per_group_keeps_rank_order_and_each_groups_best():
    ranked = torch.tensor([5, 2, 7, 0, 3, 6, 1, 4])  # indices, best first
    groups = torch.tensor([0, 1, 0, 1, 1, 0, 2, 0])  # group of box i
    # in rank order the groups are 5:0 2:0 7:0 0:0 3:1 6:2 1:1 4:1
    assert top_k_per_group(ranked, groups, 2).tolist() == [5, 2, 3, 6, 1]
    assert top_k_per_group(ranked, groups, 1).tolist() == [5, 3, 6]
    assert top_k_per_group(ranked, groups, 0).tolist() == ranked.tolist()  # 0: no cap
    assert top_k_per_group(ranked, groups, 8).tolist() == ranked.tolist()
    assert top_k_per_group(torch.zeros(0, dtype=torch.long), groups, 3).tolist() == []


def test_vote_boxes_hand_computed():
    from facecascade.ops.boxes import vote_boxes

    boxes = torch.tensor([[0.0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60], [0, 0, 10, 10]])
    scores = torch.tensor([0.75, 0.25, 0.5, 0.9])
    groups = torch.tensor([0, 0, 0, 1])
    # box 1 overlaps box 0 at IoU 90 / 110 = 0.818; box 2 is far; box 3 is in another image
    voted = vote_boxes(boxes, scores, torch.tensor([0, 2, 3]), 0.8, groups=groups)
    expected = torch.tensor([[0.25, 0, 10.25, 10], [50, 50, 60, 60], [0, 0, 10, 10]])
    assert torch.allclose(voted, expected)
    # above the pair's IoU, or without groups at IoU 0.9 (box 3 is box 0's twin), each as computed by hand
    assert torch.allclose(vote_boxes(boxes, scores, torch.tensor([0]), 0.85, groups=groups), boxes[:1])
    twin = vote_boxes(boxes, scores, torch.tensor([0]), 0.9)
    assert torch.allclose(twin, boxes[:1])  # box 0 and box 3 are equal: their mean is the same box
    assert vote_boxes(boxes, scores, torch.zeros(0, dtype=torch.long), 0.5).shape == (0, 4)


def test_vote_boxes_does_not_depend_on_the_other_images():
    """A face's voted box is bit-identical whether its image is alone or in a batch (the service,
    Ray and the CLI batch images differently)."""
    from facecascade.ops.boxes import vote_boxes

    torch.manual_seed(0)
    own = _random_boxes(40, extent=20.0)
    own_scores = torch.rand(40) + 0.1
    alone = vote_boxes(own, own_scores, torch.arange(5), 0.3)
    others = _random_boxes(300)
    boxes = torch.cat([others, own])
    scores = torch.cat([torch.rand(300) + 0.1, own_scores])
    groups = torch.cat([torch.zeros(300, dtype=torch.long), torch.ones(40, dtype=torch.long)])
    in_batch = vote_boxes(boxes, scores, torch.arange(300, 305), 0.3, groups=groups)
    assert torch.equal(alone, in_batch)
