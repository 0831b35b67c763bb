"""MCFA checkpoints: ``{"state_dict", "config" (MCFAConfig fields), "meta"}``, and the named
``"mcfa"`` weights shipped in the package (see ``facecascade/weights/MODEL_CARD_mcfa.md``).
Read with ``torch.load(weights_only=True)``."""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from .mcfa import MCFAConfig, MCFANet
from .weights import PACKAGED

NAMED_ATTRIBUTE_WEIGHTS = {
    "mcfa": "facecascade's MCFA attribute model (40 CelebA attributes), trained with `facecascade train mcfa` "
            "on the training split of the shared CelebA copy plus non-faces from face_mask and Caltech "
            "WebFaces (research use only; see facecascade/weights/MODEL_CARD_mcfa.md). Shipped in the package.",
}


def save_mcfa(path: str | os.PathLike, net: MCFANet, meta: dict[str, Any] | None = None) -> None:
    """Write ``net``'s weights, its `MCFAConfig` and ``meta`` (attribute names, training data ...)."""
    config = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(net.cfg).items()}
    torch.save({"state_dict": net.state_dict(), "config": config, "meta": dict(meta or {})}, Path(path))


def load_mcfa(weights: str | os.PathLike) -> tuple[MCFANet, dict[str, Any]]:
    """``(net in eval mode, meta)`` for a name of `NAMED_ATTRIBUTE_WEIGHTS` or a checkpoint path."""
    name = os.fspath(weights)
    path = PACKAGED / f"{name}.pt" if name in NAMED_ATTRIBUTE_WEIGHTS else Path(name)
    if not path.is_file():
        known = ", ".join(NAMED_ATTRIBUTE_WEIGHTS)
        raise FileNotFoundError(f"no attribute weights {name!r}: not a file, nor one of the named weights ({known})"
                                if name not in NAMED_ATTRIBUTE_WEIGHTS else
                                f"the named weights {name!r} are missing from the installed package ({path})")
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint or "config" not in checkpoint:
        raise ValueError(f"{path} is not an MCFA checkpoint (expected keys 'state_dict' and 'config')")
    cfg = MCFAConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in checkpoint["config"].items()})
    net = MCFANet(cfg)
    net.load_state_dict(checkpoint["state_dict"])
    return net.eval(), checkpoint.get("meta", {})
