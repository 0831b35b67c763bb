"""Which weights an export reads: a registry name or a checkpoint file, its kind and its files'
SHA-256."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from ..registry import file_sha256, is_registered, list_weights, verified_files, weights_info


@dataclass(frozen=True)
class WeightsSource:
    """``name`` (a registry name, or the checkpoint's path), its registry kind and ``{file: sha256}``."""

    name: str
    kind: str
    files: dict[str, str]


def checkpoint_kind(path: Path) -> str:
    """The registry kind of a facecascade checkpoint file, from its keys (``ValueError`` for another file)."""
    try:  # mmap: the tensors are not read here
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:  # unpickling errors have no common base class
        raise ValueError(f"cannot read '{path}' as a weights-only torch checkpoint: {exc}") from exc
    config = checkpoint.get("config") if isinstance(checkpoint, dict) else None
    if isinstance(checkpoint, dict) and {"pnet", "rnet", "onet"} <= checkpoint.keys():
        return "detector"
    kinds = {"heads": "two-stage detector", "crop_size": "aligner", "sizes": "attributes"}
    for key, kind in kinds.items():
        if isinstance(config, dict) and key in config:
            return kind
    raise ValueError(f"'{path}' is not a facecascade checkpoint (MTCNN, Cascade R-CNN, DCRN or MCFA)")


def weights_source(weights: str | os.PathLike) -> WeightsSource:
    """The registered name ``weights`` (files checked against their SHA-256) or a checkpoint path;
    ``ValueError`` naming the registered weights for anything else."""
    if is_registered(weights):
        info = weights_info(str(weights))
        verified_files(info.name)
        return WeightsSource(info.name, info.kind, dict(info.sha256))
    path = Path(weights)
    if not path.is_file():
        known = ", ".join(list_weights())
        raise ValueError(f"unknown weights {os.fspath(weights)!r}: use one of {known} or a checkpoint path")
    return WeightsSource(str(path), checkpoint_kind(path), {path.name: file_sha256(path)})
