"""Faces from a two-stage detector checkpoint (`facecascade train rcnn`): the same
``detect_arrays`` contract as `FaceDetector`, so evaluation and the tools can run either."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ..models.cascade_rcnn import image_input
from ..models.rcnn_weights import KIND, load_rcnn
from ..registry import is_registered, weights_info
from ..structures import Faces
from .devices import resolve_device


def is_rcnn_weights(weights: str | os.PathLike) -> bool:
    """Whether ``weights`` names shipped two-stage weights or is a `save_rcnn` checkpoint file."""
    if is_registered(weights):
        return weights_info(str(weights)).kind == KIND
    path = Path(weights)
    if not path.is_file():
        return False
    try:  # mmap: only the small config is read here; the loader reads the tensors once
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # not a (zip-format) torch file: not ours to judge here
        return False
    config = checkpoint.get("config", {}) if isinstance(checkpoint, dict) else {}
    return isinstance(config, dict) and "mode" in config and "heads" in config


class TwoStageDetector:
    """Boxes and scores of class ``label`` (1: the face class of face-trained weights) from a
    two-stage detector. ``min_score``: boxes scoring lower are dropped (the model itself keeps
    everything above 0.05, which average precision wants; a user of the faces wants fewer).

    Weights without an RPN of their own (``proposals="mtcnn"``, the shipped ones) run the MTCNN
    cascade their config names (`ProposalSource`) for proposals, and each face keeps the 5
    landmarks of the proposal its box refines. The heads predict no landmarks, so for weights with
    their own RPN the points come from ``aligner`` (a `FaceAligner` weights name, e.g.
    ``"dcrn"``, loaded only for such weights) on each box, else ``landmarks`` is ``None``.
    ``convention``: for weights with a box regressor per training source, the source whose box
    convention the boxes follow (``None``: the first, WIDER FACE's for the shipped weights;
    `conventions` lists them)."""

    def __init__(
        self,
        weights: str | os.PathLike,
        device: str | torch.device = "cpu",
        label: int = 1,
        aligner: str | None = None,
        min_score: float = 0.0,
        convention: str | None = None,
    ):
        self.device = resolve_device(device)
        model, self.meta = load_rcnn(weights)
        self.model = model.to(self.device).eval()
        if convention is not None:
            self.model.use_convention(convention)
        self.weights, self.label, self.min_score = weights, label, float(min_score)
        self.aligner = None
        if aligner is not None and self.model.rpn is not None:
            from ..align import FaceAligner

            self.aligner = FaceAligner(aligner, device=self.device)

    @property
    def conventions(self) -> tuple[str, ...]:
        """The sources whose box conventions the weights can give (empty: one convention)."""
        return self.model.cfg.conventions

    @torch.inference_mode()
    def detect_arrays(self, arrays: list[np.ndarray]) -> list[Faces]:
        """`Faces` (best first) for RGB ``uint8 (H, W, 3)`` arrays."""
        images = [image_input(a, self.device) for a in arrays]
        out = []
        for found in self.model(images):
            keep = (found["labels"] == self.label) & (found["scores"] >= self.min_score)
            kept = {k: v[keep].cpu().numpy() for k, v in found.items()}
            order = np.argsort(-kept["scores"], kind="stable")
            boxes, scores = kept["boxes"][order].astype(np.float32), kept["scores"][order].astype(np.float32)
            if "landmarks" in kept:
                out.append(Faces(boxes, scores, kept["landmarks"][order].astype(np.float32)))
            else:
                out.append(Faces(boxes, scores))
        return out if self.aligner is None else self.aligner.align_arrays(arrays, out)
