"""Training-time augmentation: make large training faces look like the small faces a stage meets.

R-Net and O-Net crop each candidate window from the full-resolution image and area-resample it to
24 or 48 px (`facecascade.ops.resample`). A 22-pixel face is therefore *up*-sampled to 48 px,
blocky and without detail, while almost every training face (CelebA, MTFL, most Caltech faces)
is larger than the input and arrives sharp. Trained on those alone, our first O-Net scored small
faces low: 20-30 px faces were still covered after P-Net for 87 % of them but found in the end for
68 % (the original weights: 92 %; model card, "Where Caltech is lost").

`low_resolution` replays the inference path on a random share of a batch: the ``S x S`` sample
is area-resampled down to ``k x k`` (``k`` drawn uniformly in ``[min_side, S)``, the window side
of a face that small), then back up to ``S x S`` by the same area resampling the cascade uses.
Targets do not change: boxes and landmarks are relative to the window, which is the same window.
All sample kinds are treated alike, so blur alone says nothing about face vs. non-face.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def low_resolution(x: Tensor, probability: float, min_side: int, generator: torch.Generator | None = None) -> Tensor:
    """``x (B, C, S, S)`` float with each sample, with ``probability``, seen at a random lower
    resolution ``k`` in ``[min_side, S)`` and resampled back to ``S``; ``x`` itself is not changed."""
    n, _, height, width = x.shape
    if height != width:
        raise ValueError(f"low_resolution expects square samples, got {height}x{width}")
    if probability <= 0 or min_side >= width or n == 0:
        return x
    chosen = torch.rand(n, generator=generator) < probability
    sides = torch.randint(min_side, width, (n,), generator=generator)
    out = x.clone()
    for k in sides[chosen].unique().tolist():
        index = torch.nonzero(chosen & (sides == k)).flatten().to(x.device)
        small = F.interpolate(x.index_select(0, index), size=(k, k), mode="area")
        out[index] = F.interpolate(small, size=(width, width), mode="area")
    return out
