"""Deterministic train/validation splits of a dataset, stable across machines and Python runs."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, TypeVar


class HasImage(Protocol):
    """Anything split by its image file: `FaceRecord`, `facecascade.data.landmarks.LandmarkFace`."""

    @property
    def image(self) -> Path: ...  # read-only: both are frozen dataclasses


Item = TypeVar("Item", bound=HasImage)


def _unit_hash(key: str, seed: int) -> float:
    digest = hashlib.sha1(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def in_val(name: str, val_fraction: float = 0.2, seed: int = 0) -> bool:
    """Whether the image file ``name`` belongs to the validation split (the rule of `split_records`)."""
    return _unit_hash(name, seed) < val_fraction


def split_records(records: Sequence[Item], val_fraction: float = 0.2, seed: int = 0) -> tuple[list[Item], list[Item]]:
    """``(train, val)``: a record goes to val when a hash of its image file name falls below
    ``val_fraction``, so the split does not depend on order, folder location or the other files.

    Records of the same image (one per face in some formats) stay together.
    """
    if not 0.0 <= val_fraction <= 1.0:
        raise ValueError(f"val_fraction must be in [0, 1], got {val_fraction}")
    train: list[Item] = []
    val: list[Item] = []
    for record in records:
        (val if in_val(record.image.name, val_fraction, seed) else train).append(record)
    return train, val


SPLITS = ("all", "train", "val", "val-tune", "val-report")
HALF_SEED_OFFSET = 1  # the validation halves hash with seed + 1, independently of the split's own hash


def select_split(records: Sequence[Item], split: str, val_fraction: float = 0.2, seed: int = 0) -> list[Item]:
    """``split`` is one of `SPLITS`: ``"train"``, ``"val"``, ``"all"``, or a half of the validation
    split, ``"val-tune"`` (where a recipe may choose settings such as stage thresholds on images it
    never trained on) and ``"val-report"`` (the other half, untouched by any choice), halved by a
    second hash of the file name."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    if split == "all":
        return list(records)
    train, val = split_records(records, val_fraction, seed)
    if split == "train":
        return train
    if split == "val":
        return val
    report, tune = split_records(val, 0.5, seed + HALF_SEED_OFFSET)
    return tune if split == "val-tune" else report
