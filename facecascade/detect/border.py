"""A grey border around small images, so that a face filling (or overflowing) a face crop is found.

A detector scans windows inside the image. In a face crop (an 80 x 80 AFLW or LFW crop, a CelebA
aligned image, a thumbnail) the face fills the frame and often runs past its edges, so no window
holds the whole face: our `mtcnn` missed 26 of 1,498 AFLW crops (6 with no detection at all, 20
with a box cut off by the image edge, IoU < 0.4 with the face). Searched inside a grey border of
20 % of the longer side on every side, it missed 8 (border shares 0.15 / 0.3 missed 9 / 12;
an edge-replicated border 15 / 10: its smeared edges look less like background than grey).

Only images whose longer side is at most ``max_side`` pixels get the border: photos keep their
answers and their cost. Boxes and landmarks come back in the image's own pixels, and may reach
beyond its edges as the face does.
"""

from __future__ import annotations

import numpy as np

from ..structures import Faces

BORDER_SHARE = 0.2  # border on every side, as a share of the image's longer side
BORDER_GREY = 127  # the network input's zero after (x - 127.5) / 128
SMALL_IMAGE_SIDE = 256  # default max_side: face crops and thumbnails, not photos


def border_width(height: int, width: int, max_side: int) -> int:
    """Pixels of border for an image of ``height x width``: 0 when its longer side exceeds ``max_side``."""
    longer = max(height, width)
    return round(BORDER_SHARE * longer) if 0 < longer <= max_side else 0


def with_borders(arrays: list[np.ndarray], max_side: int) -> tuple[list[np.ndarray], list[int]]:
    """``(images, widths)``: each ``(H, W, 3)`` image inside its grey border (unchanged when small
    images are off, ``max_side=0``, or it is larger) and the border's width in pixels."""
    out, widths = [], []
    for array in arrays:
        pad = border_width(array.shape[0], array.shape[1], max_side)
        out.append(np.pad(array, ((pad, pad), (pad, pad), (0, 0)), constant_values=BORDER_GREY) if pad else array)
        widths.append(pad)
    return out, widths


def without_border(faces: Faces, width: int) -> Faces:
    """``faces`` found in a bordered image, in the pixels of the image inside the border."""
    if width == 0:
        return faces
    return Faces(
        faces.boxes - width,
        faces.scores,
        faces.landmarks - width,
        faces.attributes,
        faces.attribute_names,
        faces.iterations,
    )
