"""Face crops for training and evaluating the DCRN aligner.

Each face is cut once, at load time, into a *region*: the face box's enclosing square grown by
``(1 + crop_margin) * REGION_CONTEXT`` and resized to ``REGION_CONTEXT * S`` pixels, with its points
in region pixels. Training batches are then warped from regions on the fly (`crop_batch`), with the
augmentation of the DCRN paper (§4.2: rotation, mirror with point swapping) plus small shifts and
scale changes standing in for detector box noise. Without augmentation the crop is exactly what
`facecascade.align.FaceAligner` cuts from a photo for the same box.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..data.landmarks import LandmarkFace, flip_permutation, ocular_points
from ..io import load_image
from ..models.dcrn import DCRNConfig
from ..ops.align import box_transforms, transform_points, warp_batch, warp_crops
from ..ops.head_pose import rotate_yaw
from ..ops.patches import to_crop_units
from ..ops.tps import tps_warp
from .photometric import Photometric, photometric

REGION_CONTEXT = 1.5  # region side / crop side: room for rotation, shift and scale augmentation


@dataclass(frozen=True)
class Augment:
    """Random similarity per training crop (the paper: rotation and flip)."""

    rotation: float = 20.0  # degrees, uniform in [-r, r]
    scale: float = 0.10  # crop side times 1 +- this
    shift: float = 0.06  # crop centre moved by up to this share of the crop side
    flip: float = 0.5  # probability of a mirror (points swapped left-right)
    yaw: float = 0.0  # out-of-plane turn by U(-yaw, yaw) degrees (5 points only; `turn_heads`) ...
    yaw_probability: float = 0.0  # ... for this share of the crops
    photometric: Photometric = field(default_factory=Photometric)


NO_AUGMENT = Augment(0.0, 0.0, 0.0, 0.0)
# Poses and photos LFW / CelebA lack: larger turns in and out of the image plane, looser boxes
# (a detector's box on a profile sits off the face's centre), colour, blur, JPEG and occluders.
POSE_AUGMENT = Augment(
    rotation=30.0,
    scale=0.15,
    shift=0.10,
    yaw=25.0,
    yaw_probability=0.5,
    photometric=Photometric(colour=0.5, grey=0.1, blur=0.2, jpeg=0.2, occlusion=0.2),
)
AUGMENTS = {"paper": Augment(), "pose": POSE_AUGMENT}


def crop_transforms(boxes: np.ndarray, cfg: DCRNConfig) -> np.ndarray:
    """``(N, 2, 3)`` image pixel -> crop pixel maps for face boxes ``(N, 4)``."""
    return box_transforms(boxes, cfg.crop_size, cfg.crop_margin)


class FaceRegions:
    """Faces cut into regions (uint8 ``(N, R, R, 3)``) with their points ``(N, K, 2)`` in region
    pixels. ``boxes`` are the boxes the crops are normalised from (detector boxes for training, so
    the aligner learns the boxes it will be given)."""

    def __init__(self, regions: np.ndarray, points: np.ndarray, cfg: DCRNConfig, names: list[str] | None = None):
        if len(regions) != len(points):
            raise ValueError(f"{len(regions)} regions for {len(points)} point sets")
        self.regions, self.points, self.cfg = regions, points.astype(np.float32), cfg
        self.names = names or [str(i) for i in range(len(regions))]

    def __len__(self) -> int:
        return len(self.regions)

    @property
    def region_size(self) -> int:
        return self.regions.shape[1]

    @classmethod
    def from_faces(cls, faces: list[LandmarkFace], boxes: np.ndarray, cfg: DCRNConfig) -> tuple[FaceRegions, list[str]]:
        """Regions of ``faces`` cut around ``boxes (N, 4)``; unreadable images are left out and
        reported as ``"path: reason"`` strings."""
        size = round(cfg.crop_size * REGION_CONTEXT)
        margin = (1 + cfg.crop_margin) * REGION_CONTEXT - 1
        regions, points, names, errors = [], [], [], []
        cache: dict[Path, np.ndarray] = {}
        for face, box in zip(faces, boxes):
            try:
                image = cache[face.image] if face.image in cache else load_image(face.image)
            except (ValueError, FileNotFoundError, OSError) as exc:
                errors.append(f"{face.image}: {exc}")
                continue
            cache = {face.image: image}  # faces of one image are usually consecutive
            transform = box_transforms(box[None], size, margin)
            regions.append(warp_crops(image, transform, size)[0])
            points.append(transform_points(transform, face.points[None])[0])
            names.append(str(face.image))
        num = faces[0].points.shape[0] if faces else cfg.num_points
        empty = np.zeros((0, size, size, 3), np.uint8)
        return cls(
            np.stack(regions) if regions else empty,
            np.stack(points) if points else np.zeros((0, num, 2), np.float32),
            cfg,
            names,
        ), errors

    def save(self, path: Path) -> None:
        np.savez(path, regions=self.regions, points=self.points, names=np.asarray(self.names))

    @classmethod
    def load(cls, path: Path, cfg: DCRNConfig) -> FaceRegions:
        data = np.load(path)
        return cls(data["regions"], data["points"], cfg, [str(n) for n in data["names"]])


def _random_similarities(n: int, aug: Augment, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    angle = np.radians(rng.uniform(-aug.rotation, aug.rotation, n))
    scale = 1.0 + rng.uniform(-aug.scale, aug.scale, n)
    shift = rng.uniform(-aug.shift, aug.shift, (n, 2))
    return angle, scale, shift


def region_to_crop(
    n: int, region: int, crop: int, aug: Augment, rng: np.random.Generator | None
) -> tuple[np.ndarray, np.ndarray]:
    """``((n, 2, 3) region pixel -> crop pixel maps, (n,) bool mirrored)``: the centred crop of
    side ``region / REGION_CONTEXT``, rotated, scaled, shifted and mirrored at random."""
    if rng is None or aug == NO_AUGMENT:
        angle, scale, shift, flip = np.zeros(n), np.ones(n), np.zeros((n, 2)), np.zeros(n, bool)
    else:
        angle, scale, shift = _random_similarities(n, aug, rng)
        flip = rng.random(n) < aug.flip
    zoom = crop / (region / REGION_CONTEXT * scale)  # crop pixels per region pixel
    cos, sin = np.cos(angle) * zoom, np.sin(angle) * zoom
    centre = (region - 1) / 2.0 + shift * (region / REGION_CONTEXT)  # region pixel that becomes the crop centre
    out = np.zeros((n, 2, 3))
    out[:, 0, 0], out[:, 0, 1], out[:, 1, 0], out[:, 1, 1] = cos, -sin, sin, cos
    out[:, :, 2] = (crop - 1) / 2.0 - np.einsum("nij,nj->ni", out[:, :, :2], centre)
    out[flip, 0, :] = -out[flip, 0, :]  # mirror: x -> (crop - 1) - x
    out[flip, 0, 2] += crop - 1.0
    return out, flip


def crop_batch(
    regions: FaceRegions,
    index: np.ndarray,
    aug: Augment = NO_AUGMENT,
    rng: np.random.Generator | None = None,
    device: torch.device | str = "cpu",
) -> tuple[Tensor, Tensor]:
    """``(crops (B, 3, S, S) float 0..255, points (B, K, 2) crop units)`` for faces ``index``."""
    cfg = regions.cfg
    transforms, flip = region_to_crop(len(index), regions.region_size, cfg.crop_size, aug, rng)
    source = torch.from_numpy(regions.regions[index]).to(device).permute(0, 3, 1, 2).float()
    crops = warp_batch(source, torch.from_numpy(transforms).float().to(device), cfg.crop_size)
    points = transform_points(transforms, regions.points[index])
    if flip.any():
        points[flip] = points[flip][:, flip_permutation(points.shape[1])]
    if rng is not None:
        crops, points = turn_heads(crops, points, aug, rng)
        crops = photometric(crops, aug.photometric, rng)
    return crops, torch.from_numpy(to_crop_units(points, cfg.crop_size)).float().to(device)


def turn_heads(crops: Tensor, points: np.ndarray, aug: Augment, rng: np.random.Generator) -> tuple[Tensor, np.ndarray]:
    """A share ``aug.yaw_probability`` of the faces turned out of the image plane by up to
    ``aug.yaw`` degrees: the points move as the fitted 3D mean shape's would
    (`facecascade.ops.head_pose.rotate_yaw`) and a thin-plate spline carries the pixels along,
    the crop's border fixed (`facecascade.ops.tps.tps_warp`)."""
    chosen = rng.random(len(points)) < aug.yaw_probability
    if aug.yaw <= 0 or points.shape[1] != 5 or not chosen.any():
        return crops, points
    turned = rotate_yaw(points[chosen], rng.uniform(-aug.yaw, aug.yaw, int(chosen.sum()))).astype(np.float32)
    index = torch.from_numpy(np.flatnonzero(chosen)).to(crops.device)
    crops = crops.clone()
    crops[index] = tps_warp(
        crops[index],
        torch.from_numpy(points[chosen]).to(crops),
        torch.from_numpy(turned).to(crops),
    )
    points = points.copy()
    points[chosen] = turned
    return crops, points


def ocular_distance(points: Tensor) -> Tensor:
    """``(B,)`` inter-ocular normaliser of ``(B, K, 2)`` ground-truth points (see
    `facecascade.data.landmarks.normalizers`)."""
    left, right = ocular_points(points.shape[1])
    return (points[:, right].mean(1) - points[:, left].mean(1)).norm(dim=1)


def nme_loss(predicted: Tensor, truth: Tensor) -> Tensor:
    """``(B,)`` NME (DCRN Eq. 1-2), inter-ocular, differentiable; the normaliser is floored at
    1e-3 crop units so a degenerate annotation cannot blow the loss up."""
    return (predicted - truth).norm(dim=2).mean(1) / ocular_distance(truth).clamp_min(1e-3)
