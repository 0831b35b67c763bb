"""Model checkpoints of the form ``{"state_dict", "config" (a config dataclass's fields), "meta"}``;
a weights argument (a registered name or a file path) becomes a file through `facecascade.registry`."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..registry import resolve_weights


def config_fields(config: Any) -> dict[str, Any]:
    """A config dataclass's fields for a checkpoint or a JSON report, top-level tuples as lists."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()}


def save_checkpoint(
    path: str | os.PathLike, net: nn.Module, config: Any, meta: dict[str, Any] | None = None, half: bool = False
) -> None:
    """Write ``net``'s weights, its config dataclass (tuples stored as lists) and ``meta``.

    ``half=True`` stores float tensors as float16 (half the file; ``load_state_dict`` converts them
    back into the model's float32 parameters)."""
    fields = config_fields(config)
    state = {k: v.half() if half and v.is_floating_point() else v for k, v in net.state_dict().items()}
    torch.save({"state_dict": state, "config": fields, "meta": dict(meta or {})}, Path(path))


def read_checkpoint(path: Path, what: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """``(state_dict, config fields with lists as tuples, meta)`` of a checkpoint file; ``what`` names
    the kind with its article ("an MCFA")."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint or "config" not in checkpoint:
        raise ValueError(f"{path} is not {what} checkpoint (expected keys 'state_dict' and 'config')")
    config = {k: tuple(v) if isinstance(v, list) else v for k, v in checkpoint["config"].items()}
    return checkpoint["state_dict"], config, checkpoint.get("meta", {})


def load_model(
    weights: str | os.PathLike,
    kind: str,
    article: str,
    build: Callable[[Any], nn.Module],
    config: Callable[..., Any],
) -> tuple[nn.Module, dict[str, Any]]:
    """``(model in eval mode, meta)`` for a registered name of ``kind`` (`facecascade.registry`:
    its file checked against its SHA-256) or a checkpoint path: the model is
    ``build(config(**fields))`` with the checkpoint's weights. ``article`` ("a DCRN") words the
    errors."""
    state, fields, meta = read_checkpoint(resolve_weights(weights, kind)[0], article)
    model = build(config(**fields))
    model.load_state_dict(state)
    return model.eval(), meta
