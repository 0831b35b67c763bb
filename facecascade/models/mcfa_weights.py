"""MCFA checkpoints: ``{"state_dict", "config" (MCFAConfig fields), "meta"}``, and the named
``"mcfa"`` weights shipped in the package (see ``facecascade/weights/MODEL_CARD_mcfa.md``).
Read with ``torch.load(weights_only=True)``."""

from __future__ import annotations

import os
from typing import Any

from .checkpoints import load_model, save_checkpoint
from .mcfa import MCFAConfig, MCFANet

NAMED_ATTRIBUTE_WEIGHTS = {
    "mcfa": "facecascade's MCFA attribute model (40 CelebA attributes), trained with `facecascade train mcfa` "
    "on the training split of the shared CelebA copy plus non-faces from face_mask and Caltech "
    "WebFaces (research use only; see facecascade/weights/MODEL_CARD_mcfa.md). Shipped in the package.",
}


def save_mcfa(path: str | os.PathLike, net: MCFANet, meta: dict[str, Any] | None = None) -> None:
    """Write ``net``'s weights, its `MCFAConfig` and ``meta`` (attribute names, training data ...)."""
    save_checkpoint(path, net, net.cfg, meta)


def load_mcfa(weights: str | os.PathLike) -> tuple[MCFANet, dict[str, Any]]:
    """``(net in eval mode, meta)`` for a name of `NAMED_ATTRIBUTE_WEIGHTS` or a checkpoint path."""
    return load_model(weights, NAMED_ATTRIBUTE_WEIGHTS, "attribute", "an MCFA", MCFANet, MCFAConfig)
