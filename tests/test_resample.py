"""Exact area resampling from summed-area tables (`facecascade.ops.resample`) against
``torch.nn.functional.interpolate(mode="area")``."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from facecascade.ops.resample import IntegralImages, resize_area


def _image(h: int, w: int, c: int = 3) -> torch.Tensor:
    return torch.randint(0, 256, (h, w, c), dtype=torch.uint8)


def _area(image_hwc: torch.Tensor, h: int, w: int) -> torch.Tensor:
    x = image_hwc.permute(2, 0, 1)[None].double()
    return F.interpolate(x, size=(h, w), mode="area")[0].permute(1, 2, 0).float()


@pytest.mark.parametrize(
    "src, sizes",
    [
        ((37, 53), [(37, 53), (26, 38), (19, 27), (12, 12), (1, 1), (5, 53)]),  # identity and downsampling
        ((10, 7), [(23, 16), (10, 21), (11, 7), (40, 3)]),  # upsampling, mixed
        ((1, 1), [(1, 1), (4, 6)]),  # one pixel
        ((64, 64), [(63, 63), (33, 31), (2, 3)]),  # non-integer ratios
    ],
)
def test_resize_area_matches_interpolate(src, sizes):
    image = _image(*src)
    outs = resize_area(image, sizes)
    assert len(outs) == len(sizes)
    for (h, w), out in zip(sizes, outs):
        assert out.dtype == torch.float32
        assert out.shape == (h, w, 3)
        torch.testing.assert_close(out, _area(image, h, w), atol=1e-4, rtol=0)


def test_resize_area_identity_is_exact():
    image = _image(9, 13)
    assert torch.equal(resize_area(image, [(9, 13)])[0], image.float())


def test_resize_area_hand_computed():
    image = torch.tensor([[0, 2, 4, 6], [8, 10, 12, 14]], dtype=torch.uint8)[..., None]
    out = resize_area(image, [(1, 2), (1, 3)])
    # (1, 2): means of 2x2 blocks
    assert out[0][..., 0].tolist() == [[5.0, 9.0]]
    # (1, 3): bins [0, 2), [1, 3), [2, 4) of the columns (adaptive pooling overlaps them)
    assert out[1][..., 0].tolist() == [[5.0, 7.0, 9.0]]


def test_integral_resize_equals_resize_area():
    images = [_image(30, 41), _image(17, 12)]
    integral = IntegralImages.build(images)
    for i, image in enumerate(images):
        for got, want in zip(integral.resize(i, [(13, 20), (9, 9)]), resize_area(image, [(13, 20), (9, 9)])):
            assert torch.equal(got, want)
    assert integral.heights.tolist() == [30, 17]
    assert integral.widths.tolist() == [41, 12]


def _crop_reference(image: torch.Tensor, window: list[int], size: int) -> torch.Tensor:
    x0, y0, x1, y1 = window
    return _area(image[y0:y1, x0:x1], size, size)


@pytest.mark.parametrize("size", [12, 24, 48])
def test_crop_resize_matches_interpolate(size):
    images = [_image(40, 57), _image(23, 18)]  # two images of different sizes in one batch
    integral = IntegralImages.build(images)
    windows = torch.tensor(
        [
            [0, 0, 57, 40],  # whole image 0
            [3, 5, 30, 33],  # inner, downsampled for size 12/24, upsampled for 48
            [50, 30, 57, 40],  # touching right and bottom borders
            [0, 0, 1, 1],  # one pixel, top-left corner
            [56, 39, 57, 40],  # one pixel, bottom-right corner
            [10, 0, 11, 40],  # one column
            [0, 0, 18, 23],  # whole image 1
            [17, 22, 18, 23],  # one pixel, bottom-right of image 1
            [2, 7, 15, 23],  # touching the bottom of image 1
            [0, 3, 18, 4],  # one row of image 1
        ]
    )
    image_index = torch.tensor([0, 0, 0, 0, 0, 0, 1, 1, 1, 1])
    out = integral.crop_resize(image_index, windows, size)
    assert out.dtype == torch.float32
    assert out.shape == (len(windows), size, size, 3)
    for k in range(len(windows)):
        ref = _crop_reference(images[int(image_index[k])], windows[k].tolist(), size)
        torch.testing.assert_close(out[k], ref, atol=1e-4, rtol=0, msg=f"window {k}")


def test_crop_resize_random_windows_and_order():
    images = [_image(31, 44), _image(50, 29), _image(12, 13)]
    integral = IntegralImages.build(images)
    g = torch.Generator().manual_seed(3)
    index, windows = [], []
    for _ in range(60):
        i = int(torch.randint(0, 3, (1,), generator=g))
        h, w = images[i].shape[:2]
        x0 = int(torch.randint(0, w, (1,), generator=g))
        y0 = int(torch.randint(0, h, (1,), generator=g))
        x1 = int(torch.randint(x0 + 1, w + 1, (1,), generator=g))
        y1 = int(torch.randint(y0 + 1, h + 1, (1,), generator=g))
        index.append(i)
        windows.append([x0, y0, x1, y1])
    out = integral.crop_resize(torch.tensor(index), torch.tensor(windows, dtype=torch.int32), 24)
    for k, (i, win) in enumerate(zip(index, windows)):
        torch.testing.assert_close(out[k], _crop_reference(images[i], win, 24), atol=1e-4, rtol=0)


def test_crop_resize_single_channel():
    image = _image(20, 20, c=1)
    integral = IntegralImages.build([image])
    out = integral.crop_resize(torch.tensor([0]), torch.tensor([[2, 3, 17, 11]]), 12)
    assert out.shape == (1, 12, 12, 1)
    torch.testing.assert_close(out[0], _crop_reference(image, [2, 3, 17, 11], 12), atol=1e-4, rtol=0)


def test_crop_resize_empty_batch():
    """No windows (e.g. every candidate of a stage fell outside its image) gives an empty batch."""
    integral = IntegralImages.build([_image(20, 20)])
    empty = integral.crop_resize(torch.zeros(0, dtype=torch.long), torch.zeros((0, 4), dtype=torch.long), 24)
    assert empty.shape == (0, 24, 24, 3)


def test_large_image_sums_do_not_overflow():
    # 4200 x 2100 x 255 > 2**31: the table must switch to int64
    image = torch.full((4200, 2100, 1), 255, dtype=torch.uint8)
    integral = IntegralImages.build([image])
    out = integral.crop_resize(torch.tensor([0]), torch.tensor([[0, 0, 2100, 4200]]), 12)
    # int32 sums would wrap around to garbage; int64 ones are off only by float32 rounding
    torch.testing.assert_close(out, torch.full((1, 12, 12, 1), 255.0), atol=1e-3, rtol=0)
    torch.testing.assert_close(resize_area(image, [(3, 2)])[0], torch.full((3, 2, 1), 255.0), atol=1e-3, rtol=0)
