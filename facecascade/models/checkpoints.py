"""Model checkpoints of the form ``{"state_dict", "config" (a config dataclass's fields), "meta"}``,
and how a weights argument (a shipped name or a file path) becomes a file."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .weights import PACKAGED


def weights_path(weights: str | os.PathLike, named: Mapping[str, str], what: str) -> Path:
    """The file behind ``weights``: ``PACKAGED/<name>.pt`` for a name in ``named``, else the path
    itself; ``FileNotFoundError`` naming the shipped ``what`` weights when there is no such file."""
    name = os.fspath(weights)
    path = PACKAGED / f"{name}.pt" if name in named else Path(name)
    if not path.is_file():
        known = ", ".join(named)
        raise FileNotFoundError(
            f"no {what} weights {name!r}: not a file, nor one of the named weights ({known})"
            if name not in named
            else f"the named weights {name!r} are missing from the installed package ({path})"
        )
    return path


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
    named: Mapping[str, str],
    role: str,
    kind: str,
    build: Callable[[Any], nn.Module],
    config: type,
) -> tuple[nn.Module, dict[str, Any]]:
    """``(model in eval mode, meta)`` for a name in ``named`` or a checkpoint path: the model is
    ``build(config(**fields))`` with the checkpoint's weights. ``role`` ("aligner") and ``kind``
    ("a DCRN") word the errors."""
    state, fields, meta = read_checkpoint(weights_path(weights, named, role), kind)
    model = build(config(**fields))
    model.load_state_dict(state)
    return model.eval(), meta
