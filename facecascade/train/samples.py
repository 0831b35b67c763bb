"""Training samples for the cascade stages (Zhang et al. 2016, §III-A), stored compactly.

A sample set is a folder of ``.npy`` arrays, memory-mapped when read:

* ``images.npy`` ``(N, S, S, 3)`` uint8 crops (S = 12, 24 or 48), area-resampled exactly as the
  cascade crops at inference (`facecascade.ops.resample`);
* ``kinds.npy`` ``(N,)`` int8 `SampleKind` (the paper's sample type indicator);
* ``boxes.npy`` ``(N, 4)`` float32 box-regression targets (offsets in window sizes);
* ``landmarks.npy`` ``(N, 5, 2)`` float32 landmark targets relative to the window (0 if none).

Windows are labelled by IoU with the annotated faces: negatives < 0.3, part faces 0.4-0.65,
positives > 0.65; windows overlapping an *ignored* face by 0.3 or more are dropped rather than
called negatives. Landmark faces are windows with IoU > 0.65 around faces with 5 points.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..data.records import FaceRecord
from ..ops.boxes import box_iou, crop_windows, mirror_boxes
from ..ops.resample import IntegralImages
from .losses import SampleKind

NEG_IOU, PART_IOU, POS_IOU = 0.3, 0.4, 0.65
MIRROR_ORDER = [1, 0, 2, 4, 3]  # landmark order after a horizontal flip (eyes and mouth corners swap)
ARRAYS = ("images", "kinds", "boxes", "landmarks")


@dataclass
class SampleArrays:
    images: np.ndarray  # (N, S, S, 3) uint8
    kinds: np.ndarray  # (N,) int8
    boxes: np.ndarray  # (N, 4) float32
    landmarks: np.ndarray  # (N, 5, 2) float32

    def __len__(self) -> int:
        return len(self.kinds)

    @classmethod
    def concat(cls, parts: list[SampleArrays], size: int) -> SampleArrays:
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls(
                np.zeros((0, size, size, 3), np.uint8),
                np.zeros(0, np.int8),
                np.zeros((0, 4), np.float32),
                np.zeros((0, 5, 2), np.float32),
            )
        return cls(*(np.concatenate([getattr(p, k) for p in parts]) for k in ARRAYS))

    def counts(self) -> dict[str, int]:
        return {kind.name.lower(): int((self.kinds == kind).sum()) for kind in SampleKind}


def save_samples(folder: Path, samples: SampleArrays) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in ARRAYS:
        tmp = folder / f".{name}.tmp.npy"
        np.save(tmp, getattr(samples, name))
        tmp.replace(folder / f"{name}.npy")


def load_samples(folder: Path) -> SampleArrays:
    missing = [n for n in ARRAYS if not (Path(folder) / f"{n}.npy").is_file()]
    if missing:
        raise FileNotFoundError(f"{folder}: no sample arrays {', '.join(missing)} (generate them first)")
    return SampleArrays(*(np.load(Path(folder) / f"{n}.npy", mmap_mode="r") for n in ARRAYS))


# -- geometry ------------------------------------------------------------------------------------


def mirror_record(image: np.ndarray, record: FaceRecord) -> tuple[np.ndarray, FaceRecord]:
    """The image flipped left-right with its boxes and landmarks (left/right points swapped)."""
    width = image.shape[1]
    boxes = mirror_boxes(record.boxes, width)
    landmarks = None
    if record.landmarks is not None:
        landmarks = record.landmarks[:, MIRROR_ORDER].copy()
        landmarks[..., 0] = width - 1 - landmarks[..., 0]
    flipped = FaceRecord(record.image, boxes, landmarks, record.ignore, record.attributes, record.source)
    return np.ascontiguousarray(image[:, ::-1]), flipped


def pnet_reference_boxes(windows: torch.Tensor) -> torch.Tensor:
    """The box P-Net's calibration starts from for a square window ``[x0, x0 + S)``.

    At inference a response cell whose 12x12 input window spans image pixels ``[x0, x0 + S)``
    (``S = 12 / scale``) gets the box ``(x0 + S / 12, y0 + S / 12, x0 + S, y0 + S)``, with
    exclusive sizes (`facecascade.detect.mtcnn`); targets are encoded against that box.
    """
    side = (windows[:, 2] - windows[:, 0]).float()
    out = windows.float().clone()
    out[:, :2] += (side / 12.0)[:, None]
    return out


def label_windows(boxes: torch.Tensor, faces: torch.Tensor, ignore: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For candidate ``boxes (M, 4)``: the `SampleKind` (-1: drop) and the best face index."""
    kinds = torch.full((len(boxes),), -1, dtype=torch.long)
    best = torch.zeros(len(boxes), dtype=torch.long)
    if len(faces) == 0:
        kinds[:] = SampleKind.NEGATIVE
        return kinds, best
    iou = box_iou(boxes, faces)
    valid = iou.masked_fill(ignore[None, :], -1.0)
    top, best = valid.max(1)
    near_ignored = (iou.masked_fill(~ignore[None, :], 0.0) >= NEG_IOU).any(1)
    kinds[(iou.max(1).values < NEG_IOU)] = SampleKind.NEGATIVE
    kinds[(top >= PART_IOU) & (top <= POS_IOU)] = SampleKind.PART
    kinds[top > POS_IOU] = SampleKind.POSITIVE
    kinds[near_ignored & (kinds != SampleKind.NEGATIVE) & (top <= POS_IOU)] = -1
    return kinds, best


# -- crops ----------------------------------------------------------------------------------------


def crop_samples(image: np.ndarray, windows: torch.Tensor, size: int) -> np.ndarray:
    """uint8 ``(M, size, size, 3)`` area-resampled crops of integer ``windows [x0, y0, x1, y1)``
    (inside the image, non-empty)."""
    if len(windows) == 0:
        return np.zeros((0, size, size, 3), np.uint8)
    tables = IntegralImages([torch.from_numpy(np.ascontiguousarray(image))])
    crops = tables.crop_resize(torch.zeros(len(windows), dtype=torch.long), windows, size)
    return crops.round_().clamp_(0, 255).to(torch.uint8).numpy()


def window_crops(image: np.ndarray, boxes: torch.Tensor, size: int) -> tuple[np.ndarray, torch.Tensor]:
    """Crops of candidate ``boxes`` the way stages 2 and 3 make them (`crop_windows`), and the
    mask of boxes kept (boxes whose window is empty are dropped)."""
    h, w = image.shape[:2]
    n = len(boxes)
    windows = crop_windows(boxes, torch.full((n,), w), torch.full((n,), h))
    keep = (windows[:, 2] > windows[:, 0]) & (windows[:, 3] > windows[:, 1])
    return crop_samples(image, windows[keep], size), keep
