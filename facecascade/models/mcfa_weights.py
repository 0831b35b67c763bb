"""MCFA checkpoints: ``{"state_dict", "config" (MCFAConfig fields), "meta"}``, read with
``torch.load(weights_only=True)``; the shipped ``"mcfa"`` is the registry entry of kind
``attributes`` (`facecascade.registry`; see ``facecascade/weights/MODEL_CARD_mcfa.md``)."""

from __future__ import annotations

import os
from typing import Any

from .checkpoints import load_model, save_checkpoint
from .mcfa import MCFAConfig, MCFANet

KIND = "attributes"


def save_mcfa(path: str | os.PathLike, net: MCFANet, meta: dict[str, Any] | None = None) -> None:
    """Write ``net``'s weights, its `MCFAConfig` and ``meta`` (attribute names, training data ...)."""
    save_checkpoint(path, net, net.cfg, meta)


def load_mcfa(weights: str | os.PathLike) -> tuple[MCFANet, dict[str, Any]]:
    """``(net in eval mode, meta)`` for a registered name of `KIND` or a checkpoint path."""
    net, meta = load_model(weights, KIND, "an MCFA", MCFANet, MCFAConfig)
    assert isinstance(net, MCFANet)
    return net, meta
