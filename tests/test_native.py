"""The native CPU kernels (`facecascade.ops.native`) against the PyTorch code they replace.

The resampling kernels must agree bit for bit; convolutions and PReLU to float32 rounding. CI sets
``FACECASCADE_REQUIRE_NATIVE=1`` so that a failed build fails there instead of skipping.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from facecascade.models.layers import CeilMaxPool2d, PReLU, PReLUMaxPool, WindowStem, with_fused_layers
from facecascade.models.mtcnn import ONet, RNet
from facecascade.ops import native, resample

from .shared_data import require

pytestmark = pytest.mark.skipif(
    not native.enabled() and os.environ.get("FACECASCADE_REQUIRE_NATIVE") != "1",
    reason="native kernels not built (no C compiler when installing)",
)


@pytest.fixture
def torch_only(monkeypatch):
    """Run the PyTorch versions inside the test (``FACECASCADE_NATIVE=0``)."""

    def switch(on: bool) -> None:
        if on:
            monkeypatch.delenv("FACECASCADE_NATIVE", raising=False)
        else:
            monkeypatch.setenv("FACECASCADE_NATIVE", "0")

    return switch


def _image(h: int, w: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (h, w, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def test_library_loads():
    assert native.library_path() is not None
    assert native.enabled()


def test_switch_off_by_environment(torch_only):
    torch_only(False)
    assert not native.enabled()


@pytest.mark.parametrize("dtype", [torch.int32, torch.int64])
def test_summed_area_table_matches_cumsum(dtype):
    image = _image(37, 53)
    out = torch.empty((38, 54, 3), dtype=dtype)
    native.summed_area_table(image, out)
    expected = torch.zeros((38, 54, 3), dtype=torch.int64)
    expected[1:, 1:] = image.long().cumsum(0).cumsum(1)
    assert torch.equal(out.long(), expected)


def test_resize_matches_torch_path_in_both_layouts(torch_only):
    table = resample._summed_area_table(_image(97, 131))
    for oh, ow, scale, shift in [(58, 79, 1.0, 0.0), (40, 50, 0.0078125, -0.99609375), (13, 90, 0.3, 0.1)]:
        torch_only(False)
        expected = resample.resize_area_into(table, torch.empty((oh, ow, 3)), scale, shift)
        torch_only(True)
        canvas = torch.zeros((oh + 5, ow + 7, 3))  # channels-last, padded rows
        got = resample.resize_area_into(table, canvas[2 : 2 + oh, 3 : 3 + ow], scale, shift)
        planes = torch.zeros((3, oh + 4, ow + 9))  # planar
        native.resize_area_into(table, planes[:, 1 : 1 + oh, 2 : 2 + ow].permute(1, 2, 0), scale, shift)
        assert torch.equal(got, expected)
        assert torch.equal(planes[:, 1 : 1 + oh, 2 : 2 + ow].permute(1, 2, 0), expected)
        assert canvas[:2].abs().sum() == 0 and planes[:, :1].abs().sum() == 0  # nothing written outside


def test_crops_match_torch_path(torch_only):
    integral = resample.IntegralImages([_image(97, 131), _image(50, 60, seed=1)])
    windows = torch.tensor([[0, 0, 131, 97], [5, 7, 40, 90], [10, 3, 11, 4], [0, 0, 60, 50], [20, 10, 59, 49]])
    owner = torch.tensor([0, 0, 0, 1, 1])
    for size in (12, 24, 48):
        torch_only(False)
        expected = integral.crop_resize(owner, windows, size, 0.0078125, -0.99609375)
        torch_only(True)
        got = integral.crop_resize(owner, windows, size, 0.0078125, -0.99609375)
        assert torch.equal(got, expected)


@pytest.mark.parametrize(
    "channels,kernel,stride,size",
    [(10, 2, 2, (23, 22)), (28, 3, 2, (22, 22)), (64, 2, 2, (9, 8)), (32, 3, 2, (46, 45))],
)
def test_prelu_max_pool_matches_layers(channels, kernel, stride, size):
    x = torch.randn(3, channels, *size).contiguous(memory_format=torch.channels_last)
    prelu = PReLU(channels)
    prelu.weight.data = torch.randn(channels)  # negative slopes too
    with torch.no_grad():
        expected = CeilMaxPool2d(kernel, stride)(nn.PReLU.forward(prelu, x))
        got = native.prelu_max_pool(x, prelu.weight, kernel, stride)
    assert got.shape == expected.shape
    assert got.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)


def test_prelu_max_pool_leaves_nan_out():
    x = torch.tensor([[1.0, 5.0], [2.0, 3.0]]).view(1, 1, 2, 2).contiguous(memory_format=torch.channels_last)
    x[0, 0, 0, 1] = float("nan")
    got = native.prelu_max_pool(x, torch.tensor([0.5]), 2, 2)
    assert got.item() == 3.0


def _torch_stem(canvas: torch.Tensor, conv: nn.Conv2d, slope: torch.Tensor, rows, cols) -> torch.Tensor:
    """The cascade's PyTorch path: conv1, PReLU, skipped positions filled very low, ceil pool."""
    y = F.prelu(conv(canvas), slope)
    for r, x0, x1 in rows:
        y[:, :, r, x0:x1] = -1e4
    for c, y0, y1 in cols:
        y[:, :, y0:y1, c] = -1e4
    return CeilMaxPool2d(2, 2)(y)


@pytest.mark.parametrize("height,width", [(41, 67), (40, 66), (12, 12)])
def test_pnet_stem_matches_torch_path(height, width):
    torch.manual_seed(0)
    conv, slope = nn.Conv2d(3, 10, 3), torch.randn(10)
    planes = torch.zeros((3, height, width + native.STEM_PAD))
    planes[:, :, :width] = torch.randn(3, height, width)
    # odd rows/columns (the second of a pooling window, as in a real layout), one past the band
    rows, cols = [(3, 4, 30), (2 * ((height - 3) // 2) - 1, 0, 7)], [(5, 0, 9), (width - 3 - width % 2, 2, height + 5)]
    with torch.no_grad():
        expected = _torch_stem(planes[None, :, :, :width], conv, slope, rows, cols)
        got = native.pnet_stem(planes, width, 0, height, conv, slope, torch.tensor(rows), torch.tensor(cols))
        band = native.pnet_stem(
            planes,
            width,
            2,
            height,
            conv,
            slope,  # a band from row 2
            torch.tensor(rows) - torch.tensor([2, 0, 0]),
            torch.tensor(cols) - torch.tensor([0, 2, 2]),
        )
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(band, expected[:, :, 1:], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("net_cls", [RNet, ONet])
def test_fused_layers_match_network(net_cls):
    torch.manual_seed(0)
    net = net_cls().eval()
    for m in net.modules():
        if isinstance(m, nn.PReLU):
            m.weight.data = torch.randn_like(m.weight) * 0.5
    fused = with_fused_layers(net)
    assert isinstance(fused.trunk[0], WindowStem)
    assert any(isinstance(m, PReLUMaxPool) for m in fused.trunk)
    x = torch.randn(5, 3, net.window, net.window).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        expected, got = net(x), fused(x)
    for e, g in zip(expected, got):
        if e is not None:
            torch.testing.assert_close(g, e, rtol=1e-4, atol=1e-4)
    assert net.trunk[0].__class__ is nn.Conv2d  # the source network is untouched


@pytest.mark.parametrize("photo", ["dlib_faces/2008_002506.jpg", "dlib_faces/bald_guys.jpg"])
def test_cascade_native_and_torch_paths_agree(torch_only, photo):
    from facecascade import FaceDetector, load_image

    image = load_image(require(photo))
    torch_only(False)  # float32 everywhere: only the kernels differ
    reference = FaceDetector(weights="mtcnn-original", precision="fp32").detect(image)
    torch_only(True)
    detector = FaceDetector(weights="mtcnn-original", precision="fp32")
    assert detector.cascade._native_stem
    got = detector.detect(image)
    assert len(got) == len(reference) > 0
    np.testing.assert_allclose(got.boxes, reference.boxes, atol=0.05)
    np.testing.assert_allclose(got.landmarks, reference.landmarks, atol=0.05)
