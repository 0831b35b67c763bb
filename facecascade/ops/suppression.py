"""Response-map max-pool suppression (FaceCraft, Qin et al., §4.3 and §6.5).

Instead of NMS over stage 1's boxes, "max pooling on the output feature map ... the resolution of
the feature map stays unchanged. In the k x k area, only the point with the highest score is kept".
Two readings, both here: `block_maxima` cuts each level's response map into ``k x k`` blocks (max
pooling with stride ``k``) and keeps each block's best cell; `local_peaks` keeps the cells that are
the maximum of the ``k x k`` neighbourhood centred on them (stride 1), which keeps fewer. With
P-Net's stride of 2 pixels and 12-pixel windows, neighbouring cells overlap by IoU 0.71 (side by
side) and 0.53 (diagonally), so ``k = 2`` acts like NMS at 0.5 between neighbours, in one
vectorised pass over the passing cells instead of a greedy loop over boxes.
"""

from __future__ import annotations

import torch
from torch import Tensor


def block_maxima(group: Tensor, rows: Tensor, cols: Tensor, scores: Tensor, kernel: int) -> Tensor:
    """Indices of the cells that hold the maximum score of their ``kernel x kernel`` block.

    Args:
        group: ``(K,)`` int64 map id of each cell (pyramid level); blocks never span two maps.
        rows, cols: ``(K,)`` int64 cell position in its own map (blocks start at 0).
        scores: ``(K,)`` scores; cells absent from the lists (below the threshold) count as 0.
        kernel: block side ``k >= 1`` (1 keeps every cell).

    Returns:
        ``(M,)`` int64 indices into the inputs, ascending; one per non-empty block (ties go to the
        first cell listed).
    """
    if kernel < 1:
        raise ValueError(f"kernel must be >= 1, got {kernel}")
    if len(scores) == 0 or kernel == 1:
        return torch.arange(len(scores), device=scores.device)
    if bool((rows < 0).any()) or bool((cols < 0).any()):
        raise ValueError("block_maxima needs cell positions >= 0")
    br, bc = rows // kernel, cols // kernel
    key = (group * (int(br.max()) + 1) + br) * (int(bc.max()) + 1) + bc
    _, block = torch.unique(key, return_inverse=True)
    best = torch.full((int(block.max()) + 1,), -torch.inf, dtype=scores.dtype, device=scores.device)
    best = best.scatter_reduce(0, block, scores, reduce="amax")
    index = torch.arange(len(scores), device=scores.device)
    candidate = torch.where(scores == best[block], index, len(scores))
    first = torch.full_like(best, len(scores), dtype=torch.long).scatter_reduce(0, block, candidate, reduce="amin")
    return torch.sort(first).values


def local_peaks(group: Tensor, rows: Tensor, cols: Tensor, scores: Tensor, kernel: int) -> Tensor:
    """Indices of the cells that are the maximum of the ``kernel x kernel`` neighbourhood centred on
    them (max pooling with stride 1, so the map keeps its resolution; the other reading of §4.3).

    Same arguments as `block_maxima`; ``kernel`` odd. A cell is dropped when a listed cell of its
    own map within ``kernel // 2`` rows and columns scores higher, or the same and is listed
    first. Returns ascending indices.
    """
    if kernel < 1 or kernel % 2 == 0:
        raise ValueError(f"kernel must be odd and >= 1, got {kernel}")
    n = len(scores)
    if n == 0 or kernel == 1:
        return torch.arange(n, device=scores.device)
    r = kernel // 2
    width = int(cols.max()) + 2 * r + 1
    height = int(rows.max()) + 2 * r + 1
    key = (group * height + rows + r) * width + cols + r
    order = torch.argsort(key)
    sorted_key = key[order]
    index = torch.arange(n, device=scores.device)
    keep = torch.ones(n, dtype=torch.bool, device=scores.device)
    for dr in range(-r, r + 1):
        for dc in range(-r, r + 1):
            if dr == 0 and dc == 0:
                continue
            neighbour = key + dr * width + dc
            pos = torch.searchsorted(sorted_key, neighbour).clamp_(max=n - 1)
            found = sorted_key[pos] == neighbour
            other = order[pos]
            beaten = found & ((scores[other] > scores) | ((scores[other] == scores) & (other < index)))
            keep &= ~beaten
    return index[keep]
