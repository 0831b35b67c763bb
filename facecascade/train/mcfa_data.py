"""MCFA training data: CelebA faces (attributes, 5 landmarks, a box derived from them) and
non-face crops cut from face_mask / Caltech WebFaces photos away from every face (IoU < 0.001,
as the paper's non-faces).

Faces stay as whole 89 x 109 images in memory; each batch cuts its attribute crops with a random
shift, scale, rotation and mirror (`face_batch`), optionally jitters their pixels
(`facecascade.train.photometric`: colour, blur, occlusion), and carries the box and landmarks in crop coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..attributes.crops import attribute_transforms
from ..data.records import FaceRecord
from ..detect.mtcnn import normalize_pixels
from ..io import load_image
from ..ops.align import box_transforms, warp_batch, warp_crops
from .photometric import Photometric, photometric

MIRROR_POINTS = [1, 0, 2, 4, 3]  # left/right eye and mouth corners swap under a mirror


@dataclass
class FaceSet:
    """Faces for attribute training: ``images (N, 3, H, W)`` uint8 (one size), ``boxes (N, 4)``,
    ``landmarks (N, 5, 2)`` in image pixels, ``attributes (N, d)`` in {0, 1}."""

    images: Tensor
    boxes: np.ndarray
    landmarks: np.ndarray
    attributes: np.ndarray
    names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.boxes)


def load_faces(records: list[FaceRecord], names: tuple[str, ...]) -> FaceSet:
    """Decode the records' images (one face each, all the same size, as CelebA's aligned crops)."""
    if not records:
        raise ValueError("no face records to load")
    images = np.stack([load_image(r.image) for r in records])  # (N, H, W, 3)
    return FaceSet(
        torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(),
        np.concatenate([r.boxes for r in records]).astype(np.float32),
        np.concatenate([r.landmarks for r in records]).astype(np.float32),
        (np.concatenate([r.attributes for r in records]) > 0).astype(np.float32),
        names,
    )


def _jittered(boxes: np.ndarray, shift: float, scale: float, rng: np.random.Generator) -> np.ndarray:
    """Boxes moved by up to ``shift`` box sides and scaled by up to ``1 +- scale``."""
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    cx = (boxes[:, 0] + boxes[:, 2]) / 2 + rng.uniform(-shift, shift, len(boxes)) * w
    cy = (boxes[:, 1] + boxes[:, 3]) / 2 + rng.uniform(-shift, shift, len(boxes)) * h
    k = rng.uniform(1 - scale, 1 + scale, len(boxes))
    return np.stack([cx - k * w / 2, cy - k * h / 2, cx + k * w / 2, cy + k * h / 2], 1)


def _rotated(transforms: np.ndarray, degrees: float, size: int, rng: np.random.Generator) -> np.ndarray:
    """``transforms (N, 2, 3)`` followed by a rotation of each crop about its centre by up to
    ``+- degrees``."""
    angle = np.deg2rad(rng.uniform(-degrees, degrees, len(transforms)))
    cos, sin = np.cos(angle), np.sin(angle)
    rotation = np.stack([np.stack([cos, -sin], 1), np.stack([sin, cos], 1)], 1)  # (N, 2, 2)
    centre = np.full(2, (size - 1) / 2)
    out = np.empty_like(transforms)
    out[:, :, :2] = rotation @ transforms[:, :, :2]
    out[:, :, 2] = np.einsum("nde,ne->nd", rotation, transforms[:, :, 2] - centre) + centre
    return out


def _apply(transforms: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``points (N, K, 2)`` through ``transforms (N, 2, 3)``."""
    return np.einsum("nde,nke->nkd", transforms[:, :, :2], points) + transforms[:, None, :, 2]


def crop_targets(faces: FaceSet, index: np.ndarray, transforms: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The faces' boxes ``(B, 2, 2)`` (corners) and landmarks ``(B, 5, 2)`` in crop sides."""
    return (
        _apply(transforms, faces.boxes[index].reshape(-1, 2, 2)) / size,
        _apply(transforms, faces.landmarks[index]) / size,
    )


def face_batch(
    faces: FaceSet,
    index: np.ndarray,
    size: int,
    rng: np.random.Generator | None = None,
    shift: float = 0.0,
    scale: float = 0.0,
    mirror: bool = False,
    rotate: float = 0.0,
    jitter: Photometric | None = None,
) -> tuple[Tensor, ...]:
    """Normalised crops ``(B, 3, size, size)``, and targets in crop sides: boxes ``(B, 4)``,
    landmarks ``(B, 5, 2)``; attributes ``(B, d)``. With ``rng``: random crop shift/scale, rotation
    by up to ``+- rotate`` degrees (the box target is then its rotated corners), ``jitter``
    (`facecascade.train.photometric`), and a mirror of half the batch when ``mirror``."""
    boxes = faces.boxes[index]
    crop_boxes = boxes if rng is None else _jittered(boxes, shift, scale, rng)
    transforms = attribute_transforms(crop_boxes, size)
    if rng is not None and rotate:
        transforms = _rotated(transforms, rotate, size, rng)
    x = warp_batch(faces.images[index].float(), torch.from_numpy(transforms).float(), size)
    if rng is not None and jitter is not None:
        x = photometric(x, jitter, rng)
    corners, points = crop_targets(faces, index, transforms, size)
    if rng is not None and mirror:
        flip = rng.random(len(index)) < 0.5
        x[torch.from_numpy(flip)] = x[torch.from_numpy(flip)].flip(-1)
        edge = (size - 1) / size  # pixel u -> size - 1 - u, in crop sides
        corners[flip, :, 0] = edge - corners[flip][:, ::-1, 0]
        points[flip] = points[flip][:, MIRROR_POINTS]
        points[flip, :, 0] = edge - points[flip, :, 0]
    return (
        normalize_pixels(x),
        torch.from_numpy(corners.reshape(-1, 4)).float(),
        torch.from_numpy(points).float(),
        torch.from_numpy(faces.attributes[index]),
    )


def _max_iou(box: np.ndarray, boxes: np.ndarray) -> float:
    if len(boxes) == 0:
        return 0.0
    ix = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    iy = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = ix * iy
    union = (box[2] - box[0]) * (box[3] - box[1]) + (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) - inter
    return float((inter / union).max())


def sample_negatives(
    records: list[FaceRecord],
    count: int,
    size: int,
    rng: np.random.Generator,
    per_image: int = 4,
    max_iou: float = 0.001,
) -> np.ndarray:
    """``(count, size, size, 3)`` uint8 square patches (sides 15-60 % of the shorter image side)
    that overlap no annotated face by IoU ``>= max_iou``; unreadable images are skipped."""
    out: list[np.ndarray] = []
    for i in rng.permutation(len(records)):
        if len(out) >= count:
            break
        try:
            image = load_image(records[i].image)
        except (ValueError, FileNotFoundError):
            continue
        h, w = image.shape[:2]
        patches = []
        for _ in range(per_image * 5):
            side = rng.uniform(0.15, 0.6) * min(h, w)
            x0, y0 = rng.uniform(0, w - side), rng.uniform(0, h - side)
            patch = np.array([x0, y0, x0 + side, y0 + side], np.float32)
            if _max_iou(patch, records[i].boxes) < max_iou:
                patches.append(patch)
            if len(patches) == per_image:
                break
        if patches:
            out.extend(warp_crops(image, box_transforms(np.stack(patches), size), size))
    if len(out) < count:
        raise ValueError(f"found only {len(out)} non-face patches of the {count} asked for")
    return np.stack(out[:count])


def negatives_cached(path: Path, records: list[FaceRecord], count: int, size: int, seed: int) -> np.ndarray:
    """`sample_negatives`, saved to ``path`` (``.npy``) and read back from it on later runs, so
    every training variant sees the same non-faces."""
    if path.is_file():
        cached = np.load(path)
        if len(cached) == count and cached.shape[1] == size:
            return cached
    patches = sample_negatives(records, count, size, np.random.default_rng(seed))
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, patches)
    return patches


def negative_batch(patches: np.ndarray, index: np.ndarray, rng: np.random.Generator | None = None) -> Tensor:
    """Normalised ``(B, 3, S, S)`` non-face crops, half mirrored when ``rng`` is given."""
    x = torch.from_numpy(patches[index]).permute(0, 3, 1, 2).float()
    if rng is not None:
        flip = torch.from_numpy(rng.random(len(index)) < 0.5)
        x[flip] = x[flip].flip(-1)
    return normalize_pixels(x)
