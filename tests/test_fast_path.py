"""FaceCraft's fast inference: max-pool suppression and pyramid patch reuse."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facecascade import FaceDetector
from facecascade.detect.mtcnn import MTCNNCascade, MTCNNConfig
from facecascade.eval.matching import box_iou
from facecascade.models import MTCNNNets, ONet, PNet, RNet
from facecascade.ops.pyramid import plan_canvas, reuse_levels
from facecascade.ops.suppression import block_maxima, local_peaks

from .shared_data import require


def _brute_force_block_maxima(maps: list[np.ndarray], threshold: float, k: int) -> set[tuple[int, int, int]]:
    """(level, row, col) of the best passing cell of every k x k block, by loops."""
    kept = set()
    for lid, m in enumerate(maps):
        for r0 in range(0, m.shape[0], k):
            for c0 in range(0, m.shape[1], k):
                block = m[r0 : r0 + k, c0 : c0 + k]
                best, where = -1.0, None
                for r in range(block.shape[0]):  # row-major: the first of equal scores wins
                    for c in range(block.shape[1]):
                        if block[r, c] >= threshold and block[r, c] > best:
                            best, where = block[r, c], (lid, r0 + r, c0 + c)
                if where is not None:
                    kept.add(where)
    return kept


@pytest.mark.parametrize("k", [1, 2, 3])
def test_block_maxima_matches_a_brute_force_reference(k):
    rng = np.random.default_rng(k)
    maps = [rng.random((h, w)).round(2) for h, w in ((9, 13), (5, 4), (1, 1), (6, 7))]  # rounded: ties
    cells = [
        (l, r, c) for l, m in enumerate(maps) for r in range(m.shape[0]) for c in range(m.shape[1]) if m[r, c] >= 0.5
    ]
    level, rows, cols = (torch.tensor(v) for v in zip(*cells))
    scores = torch.tensor([maps[l][r, c] for l, r, c in cells])
    kept = block_maxima(level, rows, cols, scores, k)
    assert kept.tolist() == sorted(kept.tolist())
    got = {cells[i] for i in kept.tolist()}
    assert got == _brute_force_block_maxima(maps, 0.5, k)


def test_block_maxima_edge_cases():
    empty = torch.zeros(0, dtype=torch.long)
    assert len(block_maxima(empty, empty, empty, torch.zeros(0), 2)) == 0
    # two equal scores in one block: the first listed wins; other maps never compete
    g, r, c = torch.tensor([0, 0, 1]), torch.tensor([1, 0, 0]), torch.tensor([1, 0, 0])
    assert block_maxima(g, r, c, torch.tensor([0.9, 0.9, 0.1]), 2).tolist() == [0, 2]
    with pytest.raises(ValueError):
        block_maxima(g, r, c, torch.ones(3), 0)
    with pytest.raises(ValueError):
        block_maxima(g, -r - 1, c, torch.ones(3), 2)


def test_reuse_levels_picks_the_level_twice_the_stage_input_and_maps_the_window():
    sizes = ((480, 640),)
    layout = plan_canvas(sizes, 20.0, 0.709)
    windows = torch.tensor([[100, 120, 300, 320], [10, 10, 40, 40]])
    rois, usable = reuse_levels(windows, torch.zeros(2, dtype=torch.long), layout, sizes, 24)
    assert usable.tolist() == [True, False]  # a 30-pixel window is never 1.5 x 24 on a level
    # by hand: the level where 200 px * scale is closest to 48 px (log scale)
    sy = layout.sizes[:, 0] / 480.0
    sx = layout.sizes[:, 1] / 640.0
    ratio = 200 * np.minimum(sx, sy) / 24
    best = int(np.argmin(np.where(ratio >= 1.5, np.abs(np.log(ratio / 2)), np.inf)))
    oy, ox = layout.offsets[best]
    expected = [100 * sx[best] + ox, 120 * sy[best] + oy, 300 * sx[best] + ox, 320 * sy[best] + oy]
    assert rois[0].tolist() == pytest.approx(expected, abs=1e-4)
    assert 1.5 <= ratio[best] < 2 / 0.709 * 1.01


def test_reuse_levels_stays_within_each_windows_own_image():
    sizes = ((200, 300), (400, 260))
    layout = plan_canvas(sizes, 20.0, 0.709)
    windows = torch.tensor([[0, 0, 150, 150], [0, 0, 150, 150]])
    rois, usable = reuse_levels(windows, torch.tensor([0, 1]), layout, sizes, 24)
    assert usable.all()
    for roi, image in zip(rois, (0, 1)):
        x, y = float(roi[0]), float(roi[1])
        inside = [
            lid
            for lid, ((h, w), (oy, ox)) in enumerate(zip(layout.sizes, layout.offsets))
            if ox <= x < ox + w and oy <= y < oy + h
        ]
        assert inside and all(layout.image_index[lid] == image for lid in inside)


def _random_cascade(config: MTCNNConfig) -> MTCNNCascade:
    torch.manual_seed(0)
    nets = MTCNNNets(PNet().eval(), RNet().eval(), ONet().eval())
    return MTCNNCascade(nets, config, torch.device("cpu"))


def test_reused_crops_match_area_crops_of_the_image_on_smooth_images():
    yy, xx = np.mgrid[:360, :480]
    image = np.stack([xx * 0.5, yy * 0.6, (xx + yy) * 0.3], -1).clip(0, 255).astype(np.uint8)
    cascade = _random_cascade(MTCNNConfig(patch_reuse=True))
    batch = cascade.prepare([image])
    cascade.propose(batch)  # builds and keeps the pyramid canvas
    assert batch.canvas is not None
    windows = torch.tensor([[50, 60, 250, 260], [200, 100, 330, 230], [5, 5, 25, 25]])
    index = torch.zeros(3, dtype=torch.long)
    from facecascade.detect.mtcnn import Candidates, normalize_pixels

    cands = Candidates(windows.float(), torch.ones(3), index)
    reused = cascade._reused_crops(batch, cands, windows, 24)
    exact = normalize_pixels(batch.integral.crop_resize(index, windows, 24)).permute(0, 3, 1, 2)
    assert reused.shape == exact.shape == (3, 3, 24, 24)
    assert float((reused - exact).abs().max()) < 0.03  # < 4 grey levels on a smooth ramp
    assert torch.equal(reused[2], exact[2])  # too small for any level: the image crop


def test_fast_path_settings_are_validated():
    with pytest.raises(ValueError):
        MTCNNConfig(suppression="block", suppression_kernel=0)
    with pytest.raises(ValueError):
        MTCNNConfig(suppression="peak", suppression_kernel=2)
    with pytest.raises(ValueError):
        MTCNNConfig(suppression="maxpool")
    with pytest.raises(ValueError):
        MTCNNConfig(reuse_ratio=0.5)


def test_fast_detector_finds_the_same_faces_as_the_standard_one():
    photo = require("dlib_faces/2008_002506.jpg")
    standard = FaceDetector().detect(photo)
    fast = FaceDetector(fast=True)
    assert "fast=True" in repr(fast)
    faces = fast.detect(photo)
    assert len(faces) == len(standard) == 3
    assert box_iou(faces.boxes, standard.boxes).max(1).min() > 0.7  # the same three faces


def test_fast_preset_and_an_explicit_pyramid_step():
    fast = FaceDetector("mtcnn-original", fast=True).config  # weights without their own fast settings
    assert fast.suppression == "block" and fast.suppression_kernel == 2 and fast.scale_factor == 0.58
    assert fast.nms_image == 0.55
    assert not fast.patch_reuse
    # weights change the preset where their AP holds (meta["fast_settings"]): the default its NMS,
    # mtcnn-joint its pyramid step
    own = FaceDetector(fast=True).config
    assert own.nms_image == 0.7 and (own.suppression, own.scale_factor) == ("block", 0.58)
    joint = FaceDetector("mtcnn-joint", fast=True).config
    assert (joint.scale_factor, joint.nms_image, joint.suppression) == (0.65, 0.55, "block")
    assert FaceDetector(fast=True, scale_factor=0.7).config.scale_factor == 0.7
    standard = FaceDetector().config
    assert standard.suppression == "nms" and standard.scale_factor == 0.709


def _brute_force_local_peaks(cells: list[tuple[int, int, int]], scores: list[float], k: int) -> set[int]:
    r = k // 2
    kept = set()
    for i, (l, y, x) in enumerate(cells):
        beaten = any(
            lj == l
            and abs(yj - y) <= r
            and abs(xj - x) <= r
            and j != i
            and (scores[j] > scores[i] or (scores[j] == scores[i] and j < i))
            for j, (lj, yj, xj) in enumerate(cells)
        )
        if not beaten:
            kept.add(i)
    return kept


@pytest.mark.parametrize("k", [1, 3, 5])
def test_local_peaks_matches_a_brute_force_reference(k):
    rng = np.random.default_rng(10 + k)
    maps = [rng.random((h, w)).round(2) for h, w in ((9, 13), (5, 4), (1, 1), (6, 7))]
    cells = [
        (l, r, c) for l, m in enumerate(maps) for r in range(m.shape[0]) for c in range(m.shape[1]) if m[r, c] >= 0.4
    ]
    scores = [float(maps[l][r, c]) for l, r, c in cells]
    level, rows, cols = (torch.tensor(v) for v in zip(*cells))
    kept = local_peaks(level, rows, cols, torch.tensor(scores), k)
    assert kept.tolist() == sorted(kept.tolist())
    assert set(kept.tolist()) == _brute_force_local_peaks(cells, scores, k)
    with pytest.raises(ValueError):
        local_peaks(level, rows, cols, torch.tensor(scores), 2)


def test_a_checkpoint_changes_the_fast_preset_with_known_fields_only():
    from facecascade.detect.mtcnn import FAST_PATH, fast_preset

    assert fast_preset({}) == FAST_PATH
    own = fast_preset({"fast_settings": {"nms_image": 0.7, "bf16_stages": ["onet"]}})
    assert own == {**FAST_PATH, "nms_image": 0.7, "bf16_stages": ("onet",)}
    with pytest.raises(ValueError, match="nms_everything"):
        fast_preset({"fast_settings": {"nms_everything": 0.7}})
