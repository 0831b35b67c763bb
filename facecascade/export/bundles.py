"""What one weights name exports to: its graphs and the manifest's ``pipeline`` section, by kind."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from ..models.dcrn_weights import load_dcrn
from ..models.mcfa_weights import load_mcfa_members
from ..models.weights import load_mtcnn_with_meta
from .graphs import Graph, dcrn_graphs, mcfa_graphs, mtcnn_graphs
from .pipelines import dcrn_pipeline, mcfa_pipeline, mtcnn_pipeline

TWO_STAGE_REASON = (
    "the two-stage detectors do not export: torch.export (the ONNX exporter of PyTorch >= 2.9) cannot trace "
    "the data-dependent branch of torchvision.ops.batched_nms (on the number of boxes) nor the per-image "
    "proposal counts of the RoI heads, and the older TorchScript exporter is deprecated and would fix those "
    "counts at the example image's; run them in PyTorch (FaceDetector with these weights)"
)


@dataclass
class Bundle:
    """The graphs of one weights name, its pipeline settings and what it leaves out (and why)."""

    graphs: list[Graph]
    pipeline: dict[str, Any]
    not_exported: dict[str, str] = field(default_factory=dict)  # model -> reason


def detector_bundle(weights: str | os.PathLike) -> Bundle:
    """An MTCNN cascade (``mtcnn``, ``mtcnn-joint``, ``mtcnn-original`` or a checkpoint path)."""
    nets, meta = load_mtcnn_with_meta(weights)
    return Bundle(mtcnn_graphs(nets), mtcnn_pipeline(meta, nets.onet.num_landmarks))


def aligner_bundle(weights: str | os.PathLike) -> Bundle:
    """The DCRN aligner: GEN and one LRN step; the dynamic loop is the manifest's."""
    model, meta = load_dcrn(weights)
    return Bundle(dcrn_graphs(model), dcrn_pipeline(model.cfg, meta, model.gen.mean_shape.tolist()))


def attributes_bundle(weights: str | os.PathLike) -> Bundle:
    """The MCFA attribute network (an ensemble checkpoint's members in one graph)."""
    nets, meta = load_mcfa_members(weights)
    return Bundle(mcfa_graphs(nets), mcfa_pipeline(nets[0].cfg, meta, len(nets)))


def two_stage_bundle(weights: str | os.PathLike) -> Bundle:
    """Nothing: see `TWO_STAGE_REASON`."""
    return Bundle([], {"type": "two-stage-detector"}, {"detector": TWO_STAGE_REASON})


BUNDLES = {
    "detector": detector_bundle,
    "aligner": aligner_bundle,
    "attributes": attributes_bundle,
    "two-stage detector": two_stage_bundle,
}
