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

from collections.abc import Sequence
from functools import lru_cache

import torch
from torch import Tensor

from . import native


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
    if native.summed_area_table_ok(image, out):
        return native.summed_area_table(image, out)
    out[0] = 0
    out[1:, 0] = 0
    inner = out[1:, 1:]
    torch.cumsum(image, 1, dtype=out.dtype, out=inner)  # in place: no full-size temporaries
    inner.cumsum_(0)
    return out


@lru_cache(maxsize=256)
def _resize_plan(
    height: int, width: int, out_h: int, out_w: int, channels: int, scale: float, device: torch.device
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Bins of an area resize ``(height, width) -> (out_h, out_w)`` as table row indices ``r0, r1
    (out_h,)``, column indices ``c0, c1 (out_w * channels,)`` into a table row flattened with its
    channels, and the factors ``scale / row count (out_h, 1)`` and ``1 / column count
    (out_w * channels,)``. Small, and the same for every image of a size: cached."""
    zero = torch.zeros((), dtype=torch.long, device=device)
    r0, r1 = _bins(zero, torch.tensor(height, device=device), out_h)
    c0, c1 = _bins(zero, torch.tensor(width, device=device), out_w)
    ch = torch.arange(channels, device=device)
    c0, c1 = ((c[:, None] * channels + ch).reshape(-1) for c in (c0, c1))
    row_factor = (scale / (r1 - r0).double())[:, None].float()
    col_factor = (1.0 / (c1 - c0).double() * channels).float()  # column count = (c1 - c0) / C
    return r0, r1, c0, c1, row_factor, col_factor


def resize_area_into(table: Tensor, out: Tensor, scale: float = 1.0, shift: float = 0.0) -> Tensor:
    """Write ``scale * area_resize(image) + shift`` into ``out`` ``(h, w, C)`` float32, given the
    image's summed-area table ``(H + 1, W + 1, C)``; ``out`` may be a view into a larger
    channels-last canvas (rows of ``w * C`` contiguous values). Returns ``out``.

    Rows first (two gathers of whole table rows), then columns, by ``gather`` with one broadcast
    index row instead of ``index_select`` along the middle dimension (4x slower). With the native
    kernels (`facecascade.ops.native`) one pass instead, same results bit for bit, any ``out``
    strides.
    """
    if native.resize_area_ok(table, out):
        return native.resize_area_into(table, out, scale, shift)
    hp, wp, c = table.shape
    oh, ow = out.shape[:2]
    r0, r1, c0, c1, row_factor, col_factor = _resize_plan(hp - 1, wp - 1, oh, ow, c, float(scale), table.device)
    flat = table.view(hp, wp * c)
    rows = flat.index_select(0, r1).sub_(flat.index_select(0, r0))  # (oh, (W + 1) C)
    sums = rows.gather(1, c1.expand(oh, -1)).sub_(rows.gather(1, c0.expand(oh, -1)))  # (oh, ow C)
    dst = out.view(oh, ow * c)
    torch.mul(sums, col_factor, out=dst)
    dst.mul_(row_factor)
    if shift:
        dst.add_(shift)
    return out


def resize_area(image: Tensor, sizes: Sequence[tuple[int, int]], table: Tensor | None = None) -> list[Tensor]:
    """Area-resize ``image (H, W, C)`` uint8 to each ``(h, w)`` in ``sizes``; float32 ``(h, w, C)``."""
    if table is None:
        table = _summed_area_table(image)
    return [resize_area_into(table, torch.empty((oh, ow, table.shape[2]), device=table.device)) for oh, ow in sizes]


class IntegralImages:
    """Summed-area tables of a batch of ``(H_i, W_i, C)`` uint8 images of any sizes.

    Built once per batch; serves the pyramid (`resize`, or `tables` with `resize_area_into`) and every
    crop of every stage (`crop_resize`).
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
            view = self._flat[base : base + h * w].view(h, w, -1)
            self.tables.append(_summed_area_table(im, out=view))

    @classmethod
    def build(cls, images: list[Tensor]) -> IntegralImages:
        """Tables for ``images``: a list of ``(H, W, C)`` uint8 tensors."""
        return cls(images)

    def resize(self, index: int, sizes: Sequence[tuple[int, int]]) -> list[Tensor]:
        """Area-resized copies of image ``index``: float32 ``(h, w, C)`` for each ``(h, w)``."""
        return resize_area(self._images[index], sizes, self.tables[index])

    def crop_resize(
        self, image_index: Tensor, windows: Tensor, size: int, scale: float = 1.0, shift: float = 0.0
    ) -> Tensor:
        """Crop integer windows and area-resize each to ``size x size``.

        Args:
            image_index: ``(B,)`` which image each window is in.
            windows: ``(B, 4)`` int ``[x0, y0, x1, y1)`` 0-based, end exclusive, inside the image,
                non-empty.
            size: output side in pixels.
            scale, shift: the output is ``scale * pixel + shift`` (a normalisation folded in).

        Returns:
            float32 ``(B, size, size, C)`` channel-last crops (pixel values 0..255 by default).

        Each output value is four gathers from the flat tables (the corners of its bin), with
        indices formed per channel by broadcasting ``(B, size, 1)`` row offsets against ``(B, 1,
        size * C)`` column offsets, in int32 where the tables allow.
        """
        windows = windows.long()
        if native.crop_resize_ok(self._flat) and windows.device.type == "cpu":
            c = self._flat.shape[1]
            return native.crop_resize(
                self._flat, self._base * c, self._row_stride * c, image_index, windows, size, scale, shift
            )
        n, c = len(windows), self._flat.shape[1]
        r0, r1 = _bins(windows[:, 1], windows[:, 3] - windows[:, 1], size)  # (B, size)
        c0, c1 = _bins(windows[:, 0], windows[:, 2] - windows[:, 0], size)
        index_dtype = torch.int32 if self._flat.numel() < 2**31 else torch.long
        row_len = (self._row_stride[image_index] * c)[:, None]
        base = (self._base[image_index] * c)[:, None]
        channel = torch.arange(c, device=windows.device)

        def rows(r: Tensor) -> Tensor:
            return (base + r * row_len).to(index_dtype)[:, :, None]  # (B, size, 1)

        def cols(col: Tensor) -> Tensor:
            return (col[:, :, None] * c + channel).view(n, 1, size * c).to(index_dtype)  # (B, 1, size C)

        flat = self._flat.view(-1)
        top, bottom, left, right = rows(r0), rows(r1), cols(c0), cols(c1)

        def corner(r: Tensor, col: Tensor) -> Tensor:
            return flat.index_select(0, (r + col).view(-1)).view(n, size, size * c)

        sums = corner(bottom, right).sub_(corner(top, right)).sub_(corner(bottom, left)).add_(corner(top, left))
        col_factor = (1.0 / (c1 - c0).float())[:, :, None].expand(n, size, c).reshape(n, 1, size * c)
        out = torch.mul(sums, col_factor).mul_((scale / (r1 - r0).float())[:, :, None])
        if shift:
            out.add_(shift)
        return out.view(n, size, size, c)
