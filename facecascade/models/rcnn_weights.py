"""Checkpoints of the two-stage detectors (`facecascade.models.cascade_rcnn`); the shipped
``"cascade-rcnn"`` and ``"faster-rcnn"`` are registry entries of kind ``two-stage detector``
(`facecascade.registry`; see ``facecascade/weights/MODEL_CARD_cascade-rcnn.md``)."""

from __future__ import annotations

import os
from typing import Any

from .cascade_rcnn import CascadeRCNN, RCNNConfig
from .checkpoints import load_model, save_checkpoint

KIND = "two-stage detector"


def save_rcnn(
    path: str | os.PathLike, model: CascadeRCNN, meta: dict[str, Any] | None = None, half: bool = False
) -> None:
    """Write ``model``'s weights, its `RCNNConfig` and ``meta`` (classes, training data ...)."""
    save_checkpoint(path, model, model.cfg, meta, half)


def load_rcnn(weights: str | os.PathLike) -> tuple[CascadeRCNN, dict[str, Any]]:
    """``(model in eval mode, meta)`` for a registered name of `KIND` or a checkpoint path."""
    model, meta = load_model(
        weights, KIND, "a Cascade R-CNN", CascadeRCNN, lambda **fields: RCNNConfig.from_dict(fields)
    )
    assert isinstance(model, CascadeRCNN)
    return model, meta
