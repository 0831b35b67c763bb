"""The image pyramid, packed onto one canvas so one P-Net call serves every level of every image.

A fully convolutional P-Net (12x12 window, stride 2) run on a canvas gives, for each level placed
at an even offset, exactly the response map it would give on that level alone, for every cell
whose 12x12 window lies inside the level. The one exception is the last row (column) of a level
of odd height (width): alone, ceil-mode max-pooling takes its maximum over one conv1 row; on the
canvas the pool also sees the conv1 row just past the level. `CanvasLayout.pool_edges` lists
those conv1 rows and columns, and the cascade fills them with a large negative value before
pooling, which makes every response cell equal to the reference's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np
import torch


def pyramid_scales(height: int, width: int, min_face_size: float, factor: float, cell: int = 12) -> list[float]:
    """Scales ``cell / min_face_size * factor**k`` while the short side stays >= ``cell`` pixels.

    The same recurrence as Zhang et al.'s reference (and facenet-pytorch), so that level sizes
    match it bit for bit.
    """
    if min_face_size <= 0 or not 0.0 < factor < 1.0:
        raise ValueError(f"need min_face_size > 0 and 0 < factor < 1, got {min_face_size}, {factor}")
    scale = cell / min_face_size
    short = min(height, width) * scale
    scales = []
    while short >= cell:
        scales.append(scale)
        scale *= factor
        short *= factor
    return scales


def level_size(height: int, width: int, scale: float) -> tuple[int, int]:
    """Pixel size ``(h, w)`` of a pyramid level: ``int(h * scale + 1)`` as in the reference."""
    return int(height * scale + 1), int(width * scale + 1)


def pnet_output_size(size: int) -> int:
    """P-Net response cells along one side of a level of ``size`` pixels (3x3 conv, 2x2/2 ceil
    max-pool, two 3x3 convs)."""
    return math.ceil((size - 2) / 2) - 4


@dataclass(frozen=True)
class CanvasLayout:
    """Where each pyramid level of each image lies on the canvas.

    Attributes (one row per level, levels of all images together):
        image_index: ``(L,)`` which image the level comes from.
        scales: ``(L,)`` the level's nominal scale.
        sizes: ``(L, 2)`` level ``(h, w)`` in pixels.
        offsets: ``(L, 2)`` top-left ``(y, x)`` on the canvas; always even.
        canvas_size: ``(H, W)``; both even.
    """

    image_index: np.ndarray
    scales: np.ndarray
    sizes: np.ndarray
    offsets: np.ndarray
    canvas_size: tuple[int, int]

    @property
    def num_levels(self) -> int:
        return len(self.scales)

    @cached_property
    def pool_edges(self) -> tuple[list[tuple[int, int, int]], list[tuple[int, int, int]]]:
        """conv1-output rows ``(row, x0, x1)`` and columns ``(col, y0, y1)`` just past levels of odd
        height/width, which ceil-mode pooling of the level alone would not see."""
        rows, cols = [], []
        for (h, w), (y, x) in zip(self.sizes.tolist(), self.offsets.tolist()):
            if h % 2:
                rows.append((y + h - 2, x, x + w - 1))  # w - 1: the corner too
            if w % 2:
                cols.append((x + w - 2, y, y + h - 1))
        return rows, cols

    @cached_property
    def pool_edge_arrays(self) -> tuple[torch.Tensor, torch.Tensor]:
        """`pool_edges` as two ``(n, 3)`` int64 tensors (rows, columns), for the native stem."""
        rows, cols = self.pool_edges
        return (
            torch.tensor(rows, dtype=torch.int64).reshape(-1, 3),
            torch.tensor(cols, dtype=torch.int64).reshape(-1, 3),
        )

    @cached_property
    def cell_level_map(self) -> np.ndarray:
        """``int64 (Hc, Wc)`` map of P-Net response cells to level ids; ``-1`` where no level is."""
        hc = pnet_output_size(self.canvas_size[0])
        wc = pnet_output_size(self.canvas_size[1])
        out = np.full((max(hc, 0), max(wc, 0)), -1, np.int64)
        for lid, ((h, w), (y, x)) in enumerate(zip(self.sizes, self.offsets)):
            out[y // 2 : y // 2 + pnet_output_size(h), x // 2 : x // 2 + pnet_output_size(w)] = lid
        return out


def _even(v: int) -> int:
    return v + (v & 1)


def _skyline_pack(sizes: list[tuple[int, int]], width: int, gap: int) -> tuple[np.ndarray, tuple[int, int]]:
    """Skyline bottom-left packing of rectangles ``(h, w)`` (each at most ``width`` wide) within
    ``width``; tallest first, each at the lowest position (then the leftmost) where it fits."""
    order = sorted(range(len(sizes)), key=lambda i: (-sizes[i][0], -sizes[i][1], i))
    skyline = np.zeros(width // 2 + gap // 2, np.int64)  # occupied height per 2-pixel column
    offsets = np.zeros((len(sizes), 2), np.int64)
    for i in order:
        h, w = _even(sizes[i][0]) + gap, (_even(sizes[i][1]) + gap) // 2
        tops = np.lib.stride_tricks.sliding_window_view(skyline, w).max(1)  # y if placed at 2*x
        x = int(np.argmin(tops))  # lowest, then leftmost
        offsets[i] = (tops[x], 2 * x)
        skyline[x : x + w] = tops[x] + h
    extent = offsets + np.array([[_even(h), _even(w)] for h, w in sizes])
    return offsets, (int(extent[:, 0].max()), int(extent[:, 1].max()))


def pack_levels(sizes: list[tuple[int, int]], gap: int = 0) -> tuple[np.ndarray, tuple[int, int]]:
    """Pack rectangles ``(h, w)`` onto a canvas; returns even offsets ``(L, 2)`` and the size.

    Skyline bottom-left packing (`_skyline_pack`) within a width of the widest two, three or four
    rectangles side by side, whichever canvas is smallest (then narrowest). For a pyramid the
    first levels share the top and the small ones fill the space under them instead of opening a
    new row (for a VGA image at the 0.709 step: 247k canvas pixels for 224k of levels with the
    three widest side by side, 260k with two, against 288k with plain shelves).
    ``gap`` pixels (rounded up to even) separate neighbours.
    """
    if not sizes:
        return np.zeros((0, 2), np.int64), (0, 0)
    gap = _even(gap)
    widths = sorted((_even(w) for _, w in sizes), reverse=True)
    candidates = {sum(widths[:k]) + gap * (k - 1) for k in range(min(2, len(widths)), min(4, len(widths)) + 1)}
    packings = [_skyline_pack(sizes, width, gap) for width in sorted(candidates)]
    return min(packings, key=lambda p: (p[1][0] * p[1][1], p[1][1]))


@lru_cache(maxsize=64)
def plan_canvas(image_sizes: tuple[tuple[int, int], ...], min_face_size: float, factor: float) -> CanvasLayout:
    """The pyramid levels of images of ``image_sizes`` ``((h, w), ...)`` packed on one canvas."""
    image_index, scales, sizes = [], [], []
    for i, (h, w) in enumerate(image_sizes):
        for s in pyramid_scales(h, w, min_face_size, factor):
            image_index.append(i)
            scales.append(s)
            sizes.append(level_size(h, w, s))
    offsets, canvas_size = pack_levels(sizes)
    return CanvasLayout(
        np.asarray(image_index, np.int64),
        np.asarray(scales, np.float64),
        np.asarray(sizes, np.int64).reshape(-1, 2),
        offsets,
        canvas_size,
    )


def reuse_levels(
    windows: torch.Tensor,
    image_index: torch.Tensor,
    layout: CanvasLayout,
    image_sizes: tuple[tuple[int, int], ...],
    size: int,
    min_ratio: float = 1.5,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pyramid patch reuse (FaceCraft §6.5): where to crop later-stage windows on the canvas.

    For each integer window ``[x0, y0, x1, y1)`` of image ``image_index``, the pyramid level of that
    image on which the window's longer side is closest to ``2 * size`` pixels (in log scale), among
    levels where it is at least ``min_ratio * size`` (so a crop only ever shrinks), and the window
    mapped onto the canvas through that level's exact per-axis scale (``level_w / image_w``; area
    resizing maps ``[0, W)`` onto ``[0, w)``) and offset.

    Returns:
        ``rois (N, 4)`` float32 ``x0, y0, x1, y1`` canvas coordinates (pixel corners, end
        exclusive) and ``usable (N,)`` bool: False where no level is large enough (small faces:
        crop those from the image itself).
    """
    device = windows.device
    n = len(windows)
    if n == 0 or layout.num_levels == 0:
        return torch.zeros((n, 4), device=device), torch.zeros(n, dtype=torch.bool, device=device)
    full = torch.tensor(
        [image_sizes[i] for i in layout.image_index.tolist()], dtype=torch.float32, device=device
    )  # (L, 2) H, W
    lsizes = torch.from_numpy(layout.sizes).to(device, torch.float32)  # (L, 2) h, w
    sy, sx = lsizes[:, 0] / full[:, 0], lsizes[:, 1] / full[:, 1]  # (L,)
    w = windows.float()
    side = torch.maximum(w[:, 2] - w[:, 0], w[:, 3] - w[:, 1])  # (N,)
    ratio = side[:, None] * torch.minimum(sx, sy)[None, :] / size  # (N, L)
    owner = torch.from_numpy(layout.image_index).to(device)[None, :] == image_index[:, None]
    valid = owner & (ratio >= min_ratio)
    cost = torch.where(valid, (ratio / 2).log().abs(), torch.full_like(ratio, torch.inf))
    level = cost.argmin(1)
    usable = valid.any(1)
    offsets = torch.from_numpy(layout.offsets).to(device, torch.float32)[level]  # (N, 2) y, x
    fx, fy = sx[level], sy[level]
    rois = torch.stack(
        [
            w[:, 0] * fx + offsets[:, 1],
            w[:, 1] * fy + offsets[:, 0],
            w[:, 2] * fx + offsets[:, 1],
            w[:, 3] * fy + offsets[:, 0],
        ],
        1,
    )
    return rois, usable
