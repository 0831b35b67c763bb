"""Drawing `Faces` on images: boxes, landmarks, score and the most likely attributes."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .structures import Faces

LANDMARK_COLOURS = [(255, 0, 0), (0, 0, 255), (255, 255, 0), (255, 0, 255), (0, 255, 255)]
BOX_COLOUR = (0, 255, 0)


def top_attributes(faces: Faces, index: int, k: int = 3, threshold: float = 0.5) -> list[str]:
    """Names of face ``index``'s ``k`` most probable attributes among those above ``threshold``."""
    if not faces.attribute_names or k <= 0:
        return []
    probabilities = faces.attributes[index]
    order = [int(i) for i in np.argsort(-probabilities, kind="stable")[:k]]
    return [faces.attribute_names[i] for i in order if probabilities[i] > threshold]


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)  # Pillow's bundled scalable font (needs FreeType)
    except (TypeError, ValueError, OSError, ImportError):
        return ImageFont.load_default()


def _label(draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, font, pad: int) -> None:
    """Text on a dark box so it stays legible on any background."""
    left, top, right, bottom = draw.textbbox(xy, text, font=font)
    draw.rectangle([left - pad, top - pad, right + pad, bottom + pad], fill=(0, 0, 0))
    draw.text(xy, text, fill=(255, 255, 255), font=font)


def draw_faces(image: np.ndarray, faces: Faces, attributes: int = 3) -> Image.Image:
    """A PIL image of the RGB ``(H, W, 3)`` ``image`` with each face's box, landmarks, score
    and (when the faces carry attributes) its ``attributes`` most probable ones drawn."""
    canvas = Image.fromarray(image)
    draw = ImageDraw.Draw(canvas)
    width = max(1, round(max(image.shape[:2]) / 400))
    font = _font(max(12, round(max(image.shape[:2]) / 45)))
    for i, (box, score, points) in enumerate(zip(faces.boxes, faces.scores, faces.landmarks)):
        x1, y1, x2, y2 = (float(v) for v in box)
        draw.rectangle([x1, y1, x2, y2], outline=BOX_COLOUR, width=width)
        r = 1.5 * width
        for (x, y), colour in zip(points, LANDMARK_COLOURS * (len(points) // 5 + 1)):
            draw.ellipse([x - r, y - r, x + r, y + r], fill=colour)
        text = "\n".join([f"{score:.2f}", *top_attributes(faces, i, attributes)])
        _label(draw, (x1 + width, y2 + 2 * width), text, font, pad=width)
    return canvas
