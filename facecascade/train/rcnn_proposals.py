"""Proposals from our MTCNN cascade for training two-stage heads on them (FaceCraft's idea of a
cascade feeding a Fast R-CNN: the RoI heads refine the cascade's boxes; `RCNNConfig.proposals`).

The cascade runs once per training image at the operating point the detector will use
(`facecascade.models.cascade_rcnn.ProposalSource`) and its boxes and scores are cached in one
``.npz`` (image paths, boxes, scores, counts, and the source's settings), which a later run or
session reads back instead of running the cascade again. The cache holds the unflipped image's
boxes; a flipped sample mirrors them (`facecascade.ops.boxes.mirror_boxes`).

Training sees more than the cascade's handful of boxes per image: `jittered` adds boxes drawn
around the proposals and the ground truth (random shifts and scales), so each stage has boxes of
every overlap to learn from, as an RPN's hundreds of proposals would give it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..data.records import FaceRecord
from ..io import load_image

EMPTY = np.zeros((0, 4), np.float32)


def _settings_key(source) -> str:
    """The proposal source's settings as stored with (and checked against) a cache."""
    return json.dumps(asdict(source), sort_keys=True)


def compute_proposals(records: Sequence[FaceRecord], source, quiet: bool = False) -> dict[str, tuple]:
    """``{image path: (boxes (N, 4) float32, scores (N,) float32)}`` from ``source`` (a
    `ProposalSource`); an unreadable image is reported and gets no proposals."""
    detector = source.detector()
    out: dict[str, tuple] = {}
    for record in tqdm(records, disable=quiet, desc="mtcnn proposals", unit="img"):
        try:
            image = load_image(record.image)
        except (OSError, ValueError) as error:
            print(f"skipped {record.image}: {error}")
            out[str(record.image)] = (EMPTY, np.zeros(0, np.float32))
            continue
        faces = detector.detect(image)
        out[str(record.image)] = (faces.boxes.astype(np.float32), faces.scores.astype(np.float32))
    return out


def save_proposals(path: Path, proposals: dict[str, tuple], source) -> None:
    names = list(proposals)
    boxes = [proposals[n][0] for n in names]
    np.savez(
        path,
        images=np.array(names),
        boxes=np.concatenate(boxes) if boxes else EMPTY,
        scores=np.concatenate([proposals[n][1] for n in names]) if names else np.zeros(0, np.float32),
        counts=np.array([len(b) for b in boxes], np.int64),
        settings=np.array(_settings_key(source)),
    )


def load_proposals(path: Path, source) -> dict[str, tuple] | None:
    """The cached proposals at ``path``, or ``None`` when there is no cache or it was made with
    other settings than ``source``'s."""
    if not Path(path).is_file():
        return None
    data = np.load(path)
    if str(data["settings"]) != _settings_key(source):
        return None
    ends = np.cumsum(data["counts"])
    starts = ends - data["counts"]
    return {str(name): (data["boxes"][a:b], data["scores"][a:b]) for name, a, b in zip(data["images"], starts, ends)}


def cached_proposals(records: Sequence[FaceRecord], source, path: Path, quiet: bool = False) -> dict[str, tuple]:
    """Proposals of every record's image: the cache's, with the missing ones computed and the
    cache rewritten."""
    have = load_proposals(path, source) or {}
    missing = [r for r in records if str(r.image) not in have]
    if missing:
        have.update(compute_proposals(missing, source, quiet))
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        save_proposals(Path(path), have, source)
    return have


def jittered(boxes: np.ndarray, copies: int, spread: float, rng: np.random.Generator) -> np.ndarray:
    """``copies`` boxes around each of ``boxes``: centre moved by up to ``spread`` of the side and
    each side scaled by up to ``1 ± spread`` (uniform), clipped to a positive size."""
    if copies < 1 or len(boxes) == 0:
        return EMPTY
    base = np.repeat(boxes.astype(np.float32), copies, 0)
    w, h = base[:, 2] - base[:, 0], base[:, 3] - base[:, 1]
    cx, cy = base[:, 0] + w / 2, base[:, 1] + h / 2
    shift = rng.uniform(-spread, spread, (len(base), 2)).astype(np.float32)
    scale = np.exp(rng.uniform(np.log(1 - spread), np.log(1 + spread), (len(base), 2))).astype(np.float32)
    cx, cy = cx + shift[:, 0] * w, cy + shift[:, 1] * h
    w, h = np.maximum(w * scale[:, 0], 2.0), np.maximum(h * scale[:, 1], 2.0)
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1).astype(np.float32)
