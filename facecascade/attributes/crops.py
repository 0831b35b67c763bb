"""The attribute crop: the same region of a face at training and at inference.

A face box (MTCNN's convention, as the detector returns and as `facecascade.data` derives from
landmarks) is grown to the square of side ``(1 + ATTRIBUTE_MARGIN) * max(w, h)`` around its centre,
so that hair, hats, necklaces and neckties are in view, and resampled to the network's input.
"""

from __future__ import annotations

import numpy as np

from ..ops.align import box_transforms

ATTRIBUTE_MARGIN = 0.6  # on CelebA's aligned crops this square is about the whole image


def attribute_transforms(boxes: np.ndarray, size: int, margin: float = ATTRIBUTE_MARGIN) -> np.ndarray:
    """``(N, 2, 3)`` image-pixel -> crop-pixel maps of the attribute crops of ``boxes (N, 4)``."""
    return box_transforms(boxes, size, margin)
