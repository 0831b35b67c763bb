"""Sample generation per image: random windows for P-Net, perturbed and mined windows for R-Net
and O-Net (`facecascade.train.samples` describes the stored format and the IoU labels)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..data.records import FaceRecord
from ..detect.mtcnn import Batch, MTCNNCascade
from ..ops.boxes import box_iou
from ..ops.coding import encode_landmarks, encode_offsets
from .losses import SampleKind
from .samples import POS_IOU, SampleArrays, crop_samples, label_windows, pnet_reference_boxes, window_crops


@dataclass(frozen=True)
class SamplingConfig:
    """How many windows to draw (the MTCNN paper gives ratios, not counts; these are ours)."""

    negatives_per_image: int = 30  # random windows anywhere, kept if IoU < 0.3
    near_negatives_per_face: int = 4  # windows near a face, kept if IoU < 0.3
    shifts_per_face: int = 16  # windows around a face: positives and part faces
    landmark_shifts_per_face: int = 6  # windows around a face with 5 points, IoU > 0.65
    min_face: float = 12.0  # faces smaller than this (shorter side, px) give no positives: P-Net's
    # window; WIDER FACE's 12-16 px faces are the ones a detector run at min_face_size 10 must find
    max_negatives_per_image: int = 60  # cap on mined negatives per image (stages 2 and 3)
    small_face: float = 32.0  # faces shorter than this (px) get ``small_face_repeat`` x
    small_face_repeat: int = 3  # the positive/part windows: the small faces the original
    # weights find and ours missed (model card) are ~1/6 of Caltech's
    box_sources: tuple[str, ...] | None = None  # sources whose faces train box regression (None:
    # all); the others' positives and part faces get NaN box targets (face/non-face only)


def _faces(record: FaceRecord) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.from_numpy(record.boxes).float(), torch.from_numpy(record.ignore)


def around_faces(rng: np.random.Generator, faces: np.ndarray, per_face: int, shift: float = 0.2) -> np.ndarray:
    """Square float boxes ``(F * per_face, 4)`` around faces: side 0.8 x short .. 1.25 x long side,
    centre moved by up to ``shift`` of the face size."""
    if len(faces) == 0 or per_face == 0:
        return np.zeros((0, 4), np.float32)
    f = np.repeat(faces.astype(np.float64), per_face, axis=0)
    w, h = f[:, 2] - f[:, 0], f[:, 3] - f[:, 1]
    side = rng.uniform(0.8 * np.minimum(w, h), 1.25 * np.maximum(w, h))
    cx = (f[:, 0] + f[:, 2]) / 2 + rng.uniform(-shift, shift, len(f)) * w
    cy = (f[:, 1] + f[:, 3]) / 2 + rng.uniform(-shift, shift, len(f)) * h
    return np.stack([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], 1).astype(np.float32)


def _integer_squares_inside(boxes: np.ndarray, width: int, height: int, min_side: int = 12) -> np.ndarray:
    """Boxes rounded to integer square windows ``[x0, x0 + S)``, only those fully inside."""
    side = np.round(boxes[:, 2] - boxes[:, 0]).astype(np.int64)
    x0 = np.round(boxes[:, 0]).astype(np.int64)
    y0 = np.round(boxes[:, 1]).astype(np.int64)
    out = np.stack([x0, y0, x0 + side, y0 + side], 1)
    inside = (side >= min_side) & (x0 >= 0) & (y0 >= 0) & (out[:, 2] <= width) & (out[:, 3] <= height)
    return out[inside]


def _random_squares(rng: np.random.Generator, n: int, width: int, height: int) -> np.ndarray:
    top = min(width, height) // 2
    if top <= 12 or n == 0:
        return np.zeros((0, 4), np.float32)
    side = rng.integers(12, top, n)
    x0 = rng.integers(0, width - side)
    y0 = rng.integers(0, height - side)
    return np.stack([x0, y0, x0 + side, y0 + side], 1).astype(np.float32)


def _near_squares(rng: np.random.Generator, faces: np.ndarray, per_face: int) -> np.ndarray:
    """Windows of a face's size shifted by up to one face size: mostly hard negatives."""
    return around_faces(rng, faces, per_face, shift=1.0)


def _targets(
    kinds: torch.Tensor, best: torch.Tensor, ref: torch.Tensor, record: FaceRecord, inclusive: bool, boxes_too: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Box and landmark targets of the windows ``ref``; box targets NaN unless ``boxes_too``."""
    faces = torch.from_numpy(record.boxes).float()
    boxes = torch.zeros((len(kinds), 4))
    points = torch.zeros((len(kinds), 5, 2))
    if len(faces):
        matched = faces[best]
        boxes = encode_offsets(ref, matched, inclusive=inclusive)
        if record.landmarks is not None:
            lm = torch.from_numpy(np.nan_to_num(record.landmarks)).float()[best]
            points = encode_landmarks(ref, lm)
    keep_box = (kinds == SampleKind.POSITIVE) | (kinds == SampleKind.PART)
    boxes[~keep_box] = 0
    if not boxes_too:
        boxes[keep_box] = float("nan")
    points[kinds != SampleKind.LANDMARK] = 0
    return boxes.numpy().astype(np.float32), points.numpy().astype(np.float32)


def _landmark_kinds(record: FaceRecord, boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Windows with IoU > 0.65 to a face that has 5 points become landmark faces; others dropped."""
    faces, _ = _faces(record)
    iou = box_iou(boxes, faces)
    top, best = iou.max(1)
    ok = (top > POS_IOU) & torch.from_numpy(record.has_landmarks)[best]
    kinds = torch.where(ok, torch.tensor(int(SampleKind.LANDMARK)), torch.tensor(-1))
    return kinds, best


def _labels(
    record: FaceRecord, boxes: torch.Tensor, landmark: bool, rng: np.random.Generator, cfg: SamplingConfig
) -> tuple[torch.Tensor, torch.Tensor]:
    """Kinds (-1: drop) and matched faces of candidate windows.

    ``landmark``: landmark faces only. Otherwise IoU labels, with at most
    ``cfg.max_negatives_per_image`` negatives, and none from a landmark set's images (face crops,
    whose background is too little to be representative)."""
    if landmark:
        return _landmark_kinds(record, boxes)
    kinds, best = label_windows(boxes, *_faces(record))
    negatives = torch.nonzero(kinds == SampleKind.NEGATIVE).flatten()
    cap = 0 if record.landmarks is not None else cfg.max_negatives_per_image
    if len(negatives) > cap:
        drop = rng.choice(len(negatives), len(negatives) - cap, replace=False)
        kinds[negatives[torch.from_numpy(drop)]] = -1
    return kinds, best


def _assemble(crops: np.ndarray, kinds: torch.Tensor, boxes: np.ndarray, points: np.ndarray) -> SampleArrays:
    keep = (kinds >= 0).numpy()
    return SampleArrays(crops[keep], kinds.numpy()[keep].astype(np.int8), boxes[keep], points[keep])


def _trains_boxes(record: FaceRecord, cfg: SamplingConfig) -> bool:
    """Whether ``record``'s faces train box regression (`SamplingConfig.box_sources`)."""
    return cfg.box_sources is None or record.source in cfg.box_sources


def _short_sides(faces: np.ndarray) -> np.ndarray:
    """``(F,)`` shorter side of each ``x1, y1, x2, y2`` box."""
    return np.minimum(faces[:, 2] - faces[:, 0], faces[:, 3] - faces[:, 1])


def _big_faces(record: FaceRecord, cfg: SamplingConfig) -> np.ndarray:
    """Faces large enough for positives (shorter side >= ``cfg.min_face``) and not ignored."""
    return record.boxes[(_short_sides(record.boxes) >= cfg.min_face) & ~record.ignore]


def _weighted_faces(faces: np.ndarray, cfg: SamplingConfig) -> np.ndarray:
    """``faces`` with the small ones (shorter side < ``cfg.small_face``) repeated
    ``cfg.small_face_repeat`` times, so that more windows are drawn around them."""
    return np.repeat(faces, np.where(_short_sides(faces) < cfg.small_face, cfg.small_face_repeat, 1), axis=0)


def pnet_samples(image: np.ndarray, record: FaceRecord, rng: np.random.Generator, cfg: SamplingConfig) -> SampleArrays:
    """12x12 samples from random square windows of one image.

    Detection images give negatives, positives and part faces; images of a landmark set give
    landmark faces and, from other windows, positives and part faces (its faces are faces too).
    """
    h, w = image.shape[:2]
    big = _big_faces(record, cfg)
    if record.landmarks is not None:
        groups = [
            (around_faces(rng, big, cfg.landmark_shifts_per_face, shift=0.1), True),
            (around_faces(rng, big, cfg.shifts_per_face // 2), False),
        ]
    else:
        groups = [
            (
                np.concatenate(
                    [
                        _random_squares(rng, cfg.negatives_per_image, w, h),
                        _near_squares(rng, big, cfg.near_negatives_per_face),
                        around_faces(rng, _weighted_faces(big, cfg), cfg.shifts_per_face),
                    ]
                ),
                False,
            )
        ]
    parts = []
    for cands, landmark in groups:
        windows = torch.from_numpy(_integer_squares_inside(cands, w, h))
        kinds, best = _labels(record, windows.float(), landmark, rng, cfg)
        crops = crop_samples(image, windows, 12)
        parts.append(
            _assemble(
                crops,
                kinds,
                *_targets(kinds, best, pnet_reference_boxes(windows), record, False, _trains_boxes(record, cfg)),
            )
        )
    return SampleArrays.concat(parts, 12)


def window_samples(
    image: np.ndarray,
    record: FaceRecord,
    boxes: torch.Tensor,
    size: int,
    rng: np.random.Generator,
    cfg: SamplingConfig,
    landmark: bool = False,
) -> SampleArrays:
    """``size`` x ``size`` samples (R-Net: 24, O-Net: 48) of candidate ``boxes`` (mined by the
    earlier stages, or drawn around faces), cropped and encoded as stages 2 and 3 do;
    ``landmark``: keep landmark faces only (see `_labels`)."""
    kinds, best = _labels(record, boxes, landmark, rng, cfg)
    wanted = kinds >= 0
    boxes, kinds, best = boxes[wanted], kinds[wanted], best[wanted]
    crops, keep = window_crops(image, boxes, size)
    boxes, kinds, best = boxes[keep], kinds[keep], best[keep]
    return _assemble(crops, kinds, *_targets(kinds, best, boxes, record, True, _trains_boxes(record, cfg)))


def perturbed_boxes(
    record: FaceRecord, rng: np.random.Generator, cfg: SamplingConfig, landmark: bool = False
) -> torch.Tensor:
    """Square candidate boxes drawn around the (large enough, not ignored) faces: close ones for
    landmark faces, looser ones for positives and part faces."""
    big = _big_faces(record, cfg)
    if landmark:
        return torch.from_numpy(around_faces(rng, big, cfg.landmark_shifts_per_face, shift=0.1))
    return torch.from_numpy(around_faces(rng, _weighted_faces(big, cfg), cfg.shifts_per_face // 2, shift=0.2))


def negative_boxes(
    image: np.ndarray, record: FaceRecord, rng: np.random.Generator, cfg: SamplingConfig
) -> torch.Tensor:
    """Random windows and windows near faces, as candidates for stages 2 and 3 (mostly negatives;
    `label_windows` decides), so that those stages see negatives however good the earlier ones are."""
    h, w = image.shape[:2]
    faces = record.boxes[~record.ignore]
    boxes = np.concatenate(
        [
            _random_squares(rng, cfg.negatives_per_image // 3, w, h),
            _near_squares(rng, faces, cfg.near_negatives_per_face),
        ]
    )
    return torch.from_numpy(boxes.astype(np.float32))


@torch.inference_mode()
def mined_boxes(cascade: MTCNNCascade, image: np.ndarray, upto: str) -> torch.Tensor:
    """Candidate boxes the trained earlier stages give ``image``: after P-Net (``upto="pnet"``,
    for R-Net samples) or after P-Net and R-Net (``"rnet"``, for O-Net samples)."""
    batch: Batch = cascade.prepare([image])
    cands = cascade.propose(batch)
    if upto == "rnet":
        cands = cascade.refine(batch, cands)
    return cands.boxes.cpu()
