"""Checkpoints of the two-stage detectors (`facecascade.models.cascade_rcnn`)."""

from __future__ import annotations

import os
from typing import Any

from .cascade_rcnn import CascadeRCNN, RCNNConfig
from .checkpoints import load_model, save_checkpoint

NAMED_RCNN_WEIGHTS: dict[str, str] = {}   # none shipped yet (see the README, "Cascade R-CNN")


def save_rcnn(path: str | os.PathLike, model: CascadeRCNN, meta: dict[str, Any] | None = None,
              half: bool = False) -> None:
    """Write ``model``'s weights, its `RCNNConfig` and ``meta`` (classes, training data ...)."""
    save_checkpoint(path, model, model.cfg, meta, half)


def load_rcnn(weights: str | os.PathLike) -> tuple[CascadeRCNN, dict[str, Any]]:
    """``(model in eval mode, meta)`` for a name of `NAMED_RCNN_WEIGHTS` or a checkpoint path."""
    return load_model(weights, NAMED_RCNN_WEIGHTS, "two-stage detector", "a Cascade R-CNN", CascadeRCNN,
                      lambda **fields: RCNNConfig.from_dict(fields))
