"""The image pyramid and its packing on one P-Net canvas (`facecascade.ops.pyramid`)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from facecascade.detect.mtcnn import _mask_pool_edges
from facecascade.models import PNet
from facecascade.ops.pyramid import CanvasLayout, level_size, pack_levels, plan_canvas, pnet_output_size, pyramid_scales

# -- scales and sizes --------------------------------------------------------------------------


def test_pyramid_scales_hand_computed():
    scales = pyramid_scales(480, 640, 20, 0.709)
    # first scale 12 / 20 = 0.6; short side 480 * 0.6 = 288, then * 0.709 each level:
    # 288, 204.19, 144.77, 102.64, 72.77, 51.60, 36.58, 25.94, 18.39, 13.04 | 9.24 < 12 stops
    assert len(scales) == 10
    assert scales[0] == pytest.approx(0.6)
    assert pytest.approx(13.04, abs=0.01) == 480 * 0.6 * 0.709**9
    assert pytest.approx(9.24, abs=0.01) == 480 * 0.6 * 0.709**10
    for k, s in enumerate(scales):
        assert s == pytest.approx(0.6 * 0.709**k, rel=1e-12)
    assert scales[1] == pytest.approx(0.4254)
    assert scales[-1] == pytest.approx(0.6 * 0.045271, rel=1e-4)


def test_pyramid_scales_stop_rule():
    # short side exactly 12 at the first scale is one level; 11 is none
    assert pyramid_scales(12, 100, 12, 0.5) == [1.0]
    assert pyramid_scales(11, 100, 12, 0.5) == []
    # 48 -> 24 -> 12 -> 6: three levels at factor 0.5
    assert pyramid_scales(48, 48, 12, 0.5) == [1.0, 0.5, 0.25]
    # the short side decides, whichever axis it is
    assert pyramid_scales(100, 48, 12, 0.5) == pyramid_scales(48, 100, 12, 0.5)
    assert pyramid_scales(10, 10, 6, 0.5) == [2.0]  # min face below 12 pixels upsamples


@pytest.mark.parametrize("min_face, factor", [(0, 0.7), (-5, 0.7), (20, 0.0), (20, 1.0), (20, 1.3)])
def test_pyramid_scales_bad_arguments(min_face, factor):
    with pytest.raises(ValueError):
        pyramid_scales(100, 100, min_face, factor)


def test_level_size_hand_computed():
    assert level_size(480, 640, 0.6) == (289, 385)  # 288 + 1, 384 + 1
    assert level_size(480, 640, 0.6 * 0.709) == (205, 273)  # int(204.19 + 1), int(272.26 + 1)
    assert level_size(37, 53, 1.0) == (38, 54)
    assert level_size(30, 31, 0.5) == (16, 16)  # int(16.0), int(16.5)
    for h, w, s in [(480, 640, 0.3), (123, 77, 0.4254), (1000, 999, 0.0123)]:
        assert level_size(h, w, s) == (int(h * s + 1), int(w * s + 1))


def test_pnet_output_size_formula():
    assert pnet_output_size(12) == 1
    assert pnet_output_size(13) == 2  # ceil(11 / 2) - 4
    assert pnet_output_size(14) == 2
    assert pnet_output_size(15) == 3
    assert pnet_output_size(289) == 140  # ceil(287 / 2) - 4
    for n in range(12, 80):
        assert pnet_output_size(n) == math.ceil((n - 2) / 2) - 4


@torch.no_grad()
def test_pnet_output_size_matches_real_pnet():
    pnet = PNet().eval()
    for h, w in [(12, 12), (13, 12), (12, 13), (14, 15), (16, 17), (23, 30), (31, 24), (45, 46)]:
        out = pnet.trunk(torch.randn(1, 3, h, w))
        assert tuple(out.shape) == (1, 32, pnet_output_size(h), pnet_output_size(w))
        logits, offsets, landmarks = pnet(torch.randn(2, 3, h, w))
        assert logits.shape == (2, 2, pnet_output_size(h), pnet_output_size(w))
        assert offsets.shape == (2, 4, pnet_output_size(h), pnet_output_size(w))
        assert landmarks is None


# -- packing -----------------------------------------------------------------------------------


def _check_packing(sizes, offsets, canvas):
    sizes = np.asarray(sizes).reshape(-1, 2)
    assert offsets.shape == (len(sizes), 2)
    assert (offsets % 2 == 0).all()
    assert canvas[0] % 2 == 0 and canvas[1] % 2 == 0
    assert (offsets >= 0).all()
    assert (offsets + sizes <= np.asarray(canvas)).all()
    for i in range(len(sizes)):
        for j in range(i + 1, len(sizes)):
            (yi, xi), (hi, wi) = offsets[i], sizes[i]
            (yj, xj), (hj, wj) = offsets[j], sizes[j]
            disjoint = yi + hi <= yj or yj + hj <= yi or xi + wi <= xj or xj + wj <= xi
            assert disjoint, f"levels {i} and {j} overlap"


def test_pack_levels_pyramid():
    sizes = [level_size(480, 640, s) for s in pyramid_scales(480, 640, 20, 0.709)]
    offsets, canvas = pack_levels(sizes)
    _check_packing(sizes, offsets, canvas)
    # the canvas is not wastefully large: less than twice the pixels of the levels
    assert canvas[0] * canvas[1] < 2 * sum(h * w for h, w in sizes)


@pytest.mark.parametrize("seed", range(5))
def test_pack_levels_random(seed):
    rng = np.random.default_rng(seed)
    sizes = [tuple(int(v) for v in rng.integers(12, 90, 2)) for _ in range(rng.integers(1, 15))]
    offsets, canvas = pack_levels(sizes)
    _check_packing(sizes, offsets, canvas)


def test_pack_levels_single_and_empty():
    offsets, canvas = pack_levels([(13, 15)])
    assert offsets.tolist() == [[0, 0]] and canvas == (14, 16)
    offsets, canvas = pack_levels([])
    assert offsets.shape == (0, 2) and canvas == (0, 0)


@pytest.mark.parametrize("gap", [2, 3])
def test_pack_levels_gap(gap):
    sizes = [(20, 21), (20, 20), (15, 13), (12, 12)]
    offsets, canvas = pack_levels(sizes, gap=gap)
    _check_packing(sizes, offsets, canvas)  # offsets even even for an odd gap (rounded up)
    for i in range(len(sizes)):
        for j in range(i + 1, len(sizes)):
            (yi, xi), (hi, wi) = offsets[i], sizes[i]
            (yj, xj), (hj, wj) = offsets[j], sizes[j]
            separated = yi + hi + gap <= yj or yj + hj + gap <= yi or xi + wi + gap <= xj or xj + wj + gap <= xi
            assert separated


def test_plan_canvas_two_images():
    layout = plan_canvas(((120, 90), (61, 203)), 20.0, 0.709)
    assert isinstance(layout, CanvasLayout)
    n0 = len(pyramid_scales(120, 90, 20.0, 0.709))
    n1 = len(pyramid_scales(61, 203, 20.0, 0.709))
    assert layout.num_levels == n0 + n1
    assert layout.image_index.tolist() == [0] * n0 + [1] * n1
    np.testing.assert_allclose(
        layout.scales, pyramid_scales(120, 90, 20.0, 0.709) + pyramid_scales(61, 203, 20.0, 0.709)
    )
    for (h, w), i, s in zip(layout.sizes.tolist(), layout.image_index, layout.scales):
        assert (h, w) == level_size(*((120, 90), (61, 203))[i], s)
    _check_packing(layout.sizes, layout.offsets, layout.canvas_size)


def test_plan_canvas_no_levels():
    layout = plan_canvas(((8, 8),), 20.0, 0.709)
    assert layout.num_levels == 0
    assert layout.sizes.shape == (0, 2)


def test_cell_level_map():
    layout = plan_canvas(((60, 45), (33, 70)), 12.0, 0.709)
    cmap = layout.cell_level_map
    assert cmap.dtype == np.int64
    assert cmap.shape == (pnet_output_size(layout.canvas_size[0]), pnet_output_size(layout.canvas_size[1]))
    for lid, ((h, w), (y, x)) in enumerate(zip(layout.sizes, layout.offsets)):
        cells = cmap == lid
        assert cells.sum() == pnet_output_size(h) * pnet_output_size(w)  # nothing overwritten
        rows, cols = np.nonzero(cells)
        assert rows.min() == y // 2 and cols.min() == x // 2
        assert rows.max() == y // 2 + pnet_output_size(h) - 1
        assert cols.max() == x // 2 + pnet_output_size(w) - 1
    assert (cmap == -1).any()


def test_pool_edges_hand_computed():
    layout = CanvasLayout(
        np.zeros(3, np.int64),
        np.ones(3),
        np.array([[13, 15], [14, 16], [12, 13]]),
        np.array([[0, 0], [0, 16], [14, 0]]),
        (26, 32),
    )
    rows, cols = layout.pool_edges
    # odd h = 13 at y = 0: conv1 row 11 over columns [0, 14); odd w = 15: conv1 column 13 over rows [0, 12)
    # level 2 (12, 13) at (14, 0): even height, odd width -> column 11 over rows [14, 25)
    assert rows == [(11, 0, 14)]
    assert cols == [(13, 0, 12), (11, 14, 25)]


# -- the key property: one canvas = every level alone ------------------------------------------


def _canvas_matches_levels(layout: CanvasLayout, background: str, mask: bool = True, channels_last: bool = False):
    """Per level: (canvas response, response of the level alone)."""
    pnet = PNet().eval()
    fast = PNet().eval()
    fast.load_state_dict(pnet.state_dict())
    if channels_last:  # as `MTCNNCascade` runs it
        fast = fast.to(memory_format=torch.channels_last)
    hc, wc = layout.canvas_size
    if background == "zeros":
        canvas = torch.zeros(1, 3, hc, wc)
    else:  # large values, so an unmasked leak is visible
        canvas = torch.rand(1, 3, hc, wc) * 6 - 3
    levels = []
    for (h, w), (y, x) in zip(layout.sizes.tolist(), layout.offsets.tolist()):
        level = torch.rand(1, 3, h, w) * 2 - 1
        canvas[:, :, y : y + h, x : x + w] = level
        levels.append(level)
    if channels_last:
        canvas = canvas.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        stem = fast.stem(canvas)
        if mask:
            stem = _mask_pool_edges(stem, layout)
        feats = fast.body(stem)
        assert feats.shape[-2:] == (pnet_output_size(hc), pnet_output_size(wc))
        pairs = []
        for level, (h, w), (y, x) in zip(levels, layout.sizes.tolist(), layout.offsets.tolist()):
            alone = pnet.trunk(level)
            on_canvas = feats[:, :, y // 2 : y // 2 + pnet_output_size(h), x // 2 : x // 2 + pnet_output_size(w)]
            pairs.append((on_canvas, alone))
    return pairs


def _handmade_layout(sizes):
    offsets, canvas = pack_levels(sizes)
    n = len(sizes)
    return CanvasLayout(np.zeros(n, np.int64), np.ones(n), np.asarray(sizes, np.int64), offsets, canvas)


LAYOUTS = {
    # every parity combination of (h, w), packed tightly
    "parities": lambda: _handmade_layout([(31, 29), (30, 27), (25, 30), (24, 24), (13, 13), (12, 15), (17, 12)]),
    "two_images": lambda: plan_canvas(((61, 47), (40, 77)), 12.0, 0.709),
    "pyramid": lambda: plan_canvas(((120, 160),), 20.0, 0.709),
}


@pytest.mark.parametrize("background, channels_last", [("zeros", False), ("random", False), ("random", True)])
@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_canvas_response_equals_each_level_alone(name, background, channels_last):
    layout = LAYOUTS[name]()
    odd = [(h % 2, w % 2) for h, w in layout.sizes.tolist()]
    assert (1, 1) in odd and ((1, 0) in odd or name != "parities")
    pairs = _canvas_matches_levels(layout, background, channels_last=channels_last)
    for lid, (on_canvas, alone) in enumerate(pairs):
        assert on_canvas.shape == alone.shape
        assert torch.allclose(on_canvas, alone, atol=1e-5), f"level {lid} size {layout.sizes[lid]}"


def test_without_pool_edge_mask_odd_levels_differ():
    """The mask is what makes odd levels exact: without it the test above must be able to fail."""
    layout = LAYOUTS["parities"]()
    pairs = _canvas_matches_levels(layout, "random", mask=False)
    for (on_canvas, alone), (h, w) in zip(pairs, layout.sizes.tolist()):
        if h % 2 == 0 and w % 2 == 0:
            assert torch.allclose(on_canvas, alone, atol=1e-5)
        else:
            assert not torch.allclose(on_canvas, alone, atol=1e-5)
