"""Weight-space interpolation between a cascade and a fine-tuned copy of it (WiSE-FT).

Fine-tuning a network on new data can cost it what it knew: our O-Net, fine-tuned from the
original MTCNN weights on face_mask, Caltech WebFaces and 996 WIDER FACE images, scores 5 points
of WIDER AP@0.5 below the original O-Net on our WIDER validation images. Wortsman et al. ("Robust
fine-tuning of zero-shot models", CVPR 2022) show that the weights on the straight line between
the starting point and the fine-tuned network, ``(1 - alpha) * start + alpha * tuned``, keep much
of both: the networks share an initialisation, so the line stays in one low-loss basin. Here it
is per stage (``alpha`` of 1 keeps the tuned stage, 0 the starting one); parameters that only the
tuned stage has (a landmark head the start lacks) stay the tuned ones.

For our O-Net the midpoint did not pay: WIDER AP@0.5 came back but AP75 fell (model card, "What
was tried"); the shipped default uses this module at ``alpha`` 0, to take the original R-Net into
an otherwise fine-tuned cascade, and `recalibrated` to choose its thresholds anew.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..models.weights import MTCNNNets, load_mtcnn, load_mtcnn_with_meta


def interpolate_states(start: Mapping[str, Tensor], tuned: Mapping[str, Tensor], alpha: float) -> dict[str, Tensor]:
    """``(1 - alpha) * start + alpha * tuned`` for every floating-point tensor of ``tuned``; tensors
    ``start`` lacks, and integer ones, are ``tuned``'s. Raises ValueError when a shared name has
    another shape (not the same architecture) or ``alpha`` is outside [0, 1]."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    out = {}
    for name, value in tuned.items():
        if name not in start or not value.is_floating_point():
            out[name] = value.clone()
            continue
        if start[name].shape != value.shape:
            raise ValueError(f"{name}: shape {tuple(start[name].shape)} vs {tuple(value.shape)}: not one architecture")
        out[name] = torch.lerp(start[name].to(value.dtype), value, alpha)
    return out


def interpolate_cascade(
    start: str | os.PathLike[str], tuned: str | os.PathLike[str], alphas: Mapping[str, float]
) -> tuple[MTCNNNets, dict[str, Any]]:
    """``tuned``'s cascade with each stage named in ``alphas`` moved to ``alpha`` on the line from
    ``start``'s same stage (other stages are ``tuned``'s), and ``tuned``'s meta with the
    interpolation recorded in ``meta["interpolation"]``."""
    unknown = set(alphas) - set(MTCNNNets._fields)
    if unknown:
        raise ValueError(f"no such stage: {sorted(unknown)} (stages: {', '.join(MTCNNNets._fields)})")
    nets, meta = load_mtcnn_with_meta(tuned)
    origin = load_mtcnn(start)
    for stage, alpha in alphas.items():
        net = getattr(nets, stage)
        net.load_state_dict(interpolate_states(getattr(origin, stage).state_dict(), net.state_dict(), alpha))
    record = {"start": str(start), "tuned": str(tuned), "alpha": {k: float(v) for k, v in alphas.items()}}
    return nets, {**meta, "interpolation": record}


def recalibrated(nets: MTCNNNets, meta: Mapping[str, Any], data: Path, settings: Mapping[str, Any]) -> dict[str, Any]:
    """``meta`` with the engine ``settings`` (``meta["settings"]``) and the stage thresholds of the
    standard and the fast path chosen anew for ``nets`` with them, on the ``val-tune`` halves of
    the detection sets in ``data``, as `facecascade.train.recipe.pack` chooses them."""
    from .recipe import Recipe, operating_points

    recipe = Recipe(data=data, out=data)  # ``out`` unused: nothing is written
    return {**meta, "settings": dict(settings), **operating_points(recipe, nets, settings)}
