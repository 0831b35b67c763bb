"""DCRN checkpoints (`facecascade.models.checkpoints` layout with a `DCRNConfig`) and the named
``"dcrn"`` weights shipped in the package (see ``facecascade/weights/MODEL_CARD_dcrn.md``)."""

from __future__ import annotations

import os
from typing import Any

from .checkpoints import load_model, save_checkpoint
from .dcrn import DCRN, DCRNConfig

NAMED_ALIGNER_WEIGHTS = {
    "dcrn": "facecascade's DCRN aligner (5 points), trained with `facecascade train dcrn` on the training "
    "split of the shared MTFL (LFW part) and CelebA copies, crops normalised from our 'mtcnn' "
    "detector's boxes (research use only; see facecascade/weights/MODEL_CARD_dcrn.md). Shipped in the package.",
}


def save_dcrn(path: str | os.PathLike, model: DCRN, meta: dict[str, Any] | None = None, half: bool = False) -> None:
    """Write GEN and LRN weights (no critic), the `DCRNConfig` and ``meta`` (``half``: float16
    storage, as shipped)."""
    save_checkpoint(path, model, model.cfg, meta, half)


def load_dcrn(weights: str | os.PathLike) -> tuple[DCRN, dict[str, Any]]:
    """``(model in eval mode, meta)`` for a name of `NAMED_ALIGNER_WEIGHTS` or a checkpoint path."""
    return load_model(weights, NAMED_ALIGNER_WEIGHTS, "aligner", "a DCRN", DCRN, DCRNConfig)
