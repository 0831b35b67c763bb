"""Deterministic train/validation splits of a dataset, stable across machines and Python runs."""

from __future__ import annotations

import hashlib
from typing import Sequence

from .records import FaceRecord


def _unit_hash(key: str, seed: int) -> float:
    digest = hashlib.sha1(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def in_val(name: str, val_fraction: float = 0.2, seed: int = 0) -> bool:
    """Whether the image file ``name`` belongs to the validation split (the rule of `split_records`)."""
    return _unit_hash(name, seed) < val_fraction


def split_records(records: Sequence[FaceRecord], val_fraction: float = 0.2,
                  seed: int = 0) -> tuple[list[FaceRecord], list[FaceRecord]]:
    """``(train, val)``: a record goes to val when a hash of its image file name falls below
    ``val_fraction``, so the split does not depend on order, folder location or the other files.

    Records of the same image (one per face in some formats) stay together.
    """
    if not 0.0 <= val_fraction <= 1.0:
        raise ValueError(f"val_fraction must be in [0, 1], got {val_fraction}")
    train, val = [], []
    for record in records:
        (val if in_val(record.image.name, val_fraction, seed) else train).append(record)
    return train, val


def select_split(records: Sequence[FaceRecord], split: str, val_fraction: float = 0.2,
                 seed: int = 0) -> list[FaceRecord]:
    """``split`` is ``"train"``, ``"val"`` or ``"all"``."""
    if split == "all":
        return list(records)
    if split not in ("train", "val"):
        raise ValueError(f"split must be train, val or all, got {split!r}")
    train, val = split_records(records, val_fraction, seed)
    return train if split == "train" else val
