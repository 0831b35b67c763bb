"""Exact area resampling of whole images and of many boxes at once, from integral images.

``resize_area`` and ``IntegralImages.crop_resize`` give the same numbers as
``torch.nn.functional.interpolate(..., mode="area")`` (adaptive average pooling: output cell ``i``
of ``n`` averages input pixels ``floor(i*H/n) .. ceil((i+1)*H/n) - 1``), which is what the original
MTCNN weights were run with, but:

* every crop of a cascade stage is made by ONE gather over a summed-area table, instead of a
  Python loop of per-box resizes;
* every pyramid level reuses the same table (two row/column gathers per level);
* sums are exact integers (int32/int64), so results do not depend on summation order.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor


def _bins(start: Tensor, length: Tensor, n: int) -> tuple[Tensor, Tensor]:
    """Adaptive-pooling bin edges ``[lo, hi)`` ``(..., n)`` for windows ``start + [0, length)``."""
    i = torch.arange(n, device=length.device)
    lo = (i * length[..., None]) // n
    hi = ((i + 1) * length[..., None] + n - 1) // n
    return start[..., None] + lo, start[..., None] + hi


def _table_dtype(height: int, width: int) -> torch.dtype:
    return torch.int32 if height * width * 255 < 2**31 else torch.int64


def _summed_area_table(image: Tensor, out: Tensor | None = None) -> Tensor:
    """``(H + 1, W + 1, C)`` table of ``image (H, W, C)`` uint8 sums (zero first row/column),
    written into ``out`` when given."""
    h, w, c = image.shape
    if out is None:
        out = torch.empty((h + 1, w + 1, c), dtype=_table_dtype(h, w), device=image.device)
    out[0] = 0
    out[1:, 0] = 0
    inner = out[1:, 1:]
    torch.cumsum(image, 1, dtype=out.dtype, out=inner)  # in place: no full-size temporaries
    inner.cumsum_(0)
    return out


def resize_area(image: Tensor, sizes: Sequence[tuple[int, int]], table: Tensor | None = None) -> list[Tensor]:
    """Area-resize ``image (H, W, C)`` uint8 to each ``(h, w)`` in ``sizes``; float32 ``(h, w, C)``."""
    if table is None:
        table = _summed_area_table(image)
    h, w = image.shape[:2]
    device = table.device
    zero = torch.zeros((), dtype=torch.long, device=device)
    outs = []
    for oh, ow in sizes:
        r0, r1 = _bins(zero, torch.tensor(h, device=device), oh)
        c0, c1 = _bins(zero, torch.tensor(w, device=device), ow)
        rows = table.index_select(0, r1) - table.index_select(0, r0)   # (oh, W + 1, C)
        sums = rows.index_select(1, c1) - rows.index_select(1, c0)     # (oh, ow, C)
        count = ((r1 - r0)[:, None] * (c1 - c0)[None, :]).to(torch.float32)
        outs.append(sums.to(torch.float32) / count[..., None])
    return outs


class IntegralImages:
    """Summed-area tables of a batch of ``(H_i, W_i, C)`` uint8 images of any sizes.

    Built once per batch; serves the pyramid (`resize`) and every crop of every stage
    (`crop_resize`).
    """

    def __init__(self, images: list[Tensor]):
        """Tables for ``images``: a list of ``(H, W, C)`` uint8 tensors on one device.

        All tables live in one flat buffer (so a crop gather indexes every image at once);
        ``tables[i]`` is a ``(H_i + 1, W_i + 1, C)`` view of it.
        """
        device = images[0].device
        shapes = [(im.shape[0] + 1, im.shape[1] + 1) for im in images]
        dtype = torch.int64 if any(_table_dtype(*im.shape[:2]) == torch.int64 for im in images) else torch.int32
        sizes = torch.tensor([h * w for h, w in shapes], device=device)
        self._flat = torch.empty((int(sizes.sum()), images[0].shape[2]), dtype=dtype, device=device)
        self._base = torch.cumsum(sizes, 0) - sizes
        self._row_stride = torch.tensor([w for _, w in shapes], device=device)
        self.heights = torch.tensor([im.shape[0] for im in images], device=device)
        self.widths = torch.tensor([im.shape[1] for im in images], device=device)
        self._images = images
        self.tables = []
        for im, (h, w), base in zip(images, shapes, self._base.tolist()):
            view = self._flat[base:base + h * w].view(h, w, -1)
            self.tables.append(_summed_area_table(im, out=view))

    @classmethod
    def build(cls, images: list[Tensor]) -> "IntegralImages":
        """Tables for ``images``: a list of ``(H, W, C)`` uint8 tensors."""
        return cls(images)

    def resize(self, index: int, sizes: Sequence[tuple[int, int]]) -> list[Tensor]:
        """Area-resized copies of image ``index``: float32 ``(h, w, C)`` for each ``(h, w)``."""
        return resize_area(self._images[index], sizes, self.tables[index])

    def crop_resize(self, image_index: Tensor, windows: Tensor, size: int) -> Tensor:
        """Crop integer windows and area-resize each to ``size x size``.

        Args:
            image_index: ``(B,)`` which image each window is in.
            windows: ``(B, 4)`` int ``[x0, y0, x1, y1)`` 0-based, end exclusive, inside the image,
                non-empty.
            size: output side in pixels.

        Returns:
            float32 ``(B, size, size, C)`` channel-last crops (pixel values 0..255).
        """
        windows = windows.long()
        r0, r1 = _bins(windows[:, 1], windows[:, 3] - windows[:, 1], size)  # (B, size)
        c0, c1 = _bins(windows[:, 0], windows[:, 2] - windows[:, 0], size)
        stride = self._row_stride[image_index][:, None, None]
        base = self._base[image_index][:, None, None]

        def corner(rows: Tensor, cols: Tensor) -> Tensor:
            flat = base + rows[:, :, None] * stride + cols[:, None, :]   # (B, size, size)
            return self._flat.index_select(0, flat.reshape(-1))

        sums = corner(r1, c1) - corner(r0, c1) - corner(r1, c0) + corner(r0, c0)
        count = ((r1 - r0)[:, :, None] * (c1 - c0)[:, None, :]).reshape(-1, 1).to(torch.float32)
        return (sums.to(torch.float32) / count).reshape(len(windows), size, size, self._flat.shape[1])
