"""Checkpoints of the two-stage detectors (`facecascade.models.cascade_rcnn`)."""

from __future__ import annotations

import os
from typing import Any

from .cascade_rcnn import CascadeRCNN, RCNNConfig
from .checkpoints import load_model, save_checkpoint

NAMED_RCNN_WEIGHTS = {
    "cascade-rcnn": "facecascade's Cascade R-CNN face detector (3 stages at IoU 0.5/0.6/0.7, ResNet-FPN "
    "trained from scratch), trained with `facecascade train rcnn` on the training split of the "
    "shared face_mask and Caltech WebFaces copies (research use only; see "
    "facecascade/weights/MODEL_CARD_cascade-rcnn.md). Shipped in the package.",
    "faster-rcnn": "the single-head baseline (`--mode baseline`) of the same backbone, data and steps, for "
    "comparison (research use only; same model card). Shipped in the package.",
}


def save_rcnn(
    path: str | os.PathLike, model: CascadeRCNN, meta: dict[str, Any] | None = None, half: bool = False
) -> None:
    """Write ``model``'s weights, its `RCNNConfig` and ``meta`` (classes, training data ...)."""
    save_checkpoint(path, model, model.cfg, meta, half)


def load_rcnn(weights: str | os.PathLike) -> tuple[CascadeRCNN, dict[str, Any]]:
    """``(model in eval mode, meta)`` for a name of `NAMED_RCNN_WEIGHTS` or a checkpoint path."""
    return load_model(
        weights,
        NAMED_RCNN_WEIGHTS,
        "two-stage detector",
        "a Cascade R-CNN",
        CascadeRCNN,
        lambda **fields: RCNNConfig.from_dict(fields),
    )
