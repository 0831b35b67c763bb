"""DCRN checkpoints (`facecascade.models.checkpoints` layout with a `DCRNConfig`); the shipped
``"dcrn"`` is the registry entry of kind ``aligner`` (`facecascade.registry`; see
``facecascade/weights/MODEL_CARD_dcrn.md``)."""

from __future__ import annotations

import os
from typing import Any

from .checkpoints import load_model, save_checkpoint
from .dcrn import DCRN, DCRNConfig

KIND = "aligner"


def save_dcrn(path: str | os.PathLike, model: DCRN, meta: dict[str, Any] | None = None, half: bool = False) -> None:
    """Write GEN and LRN weights (no critic), the `DCRNConfig` and ``meta`` (``half``: float16
    storage, as shipped)."""
    save_checkpoint(path, model, model.cfg, meta, half)


def load_dcrn(weights: str | os.PathLike) -> tuple[DCRN, dict[str, Any]]:
    """``(model in eval mode, meta)`` for a registered name of `KIND` or a checkpoint path."""
    model, meta = load_model(weights, KIND, "a DCRN", DCRN, DCRNConfig)
    assert isinstance(model, DCRN)
    return model, meta
