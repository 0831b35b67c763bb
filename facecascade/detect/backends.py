"""The networks of `MTCNNCascade` run by ONNX Runtime or OpenVINO (``FaceDetector(backend=...)``).

The engine stays the same (pyramid canvas, bands, crops, suppression); only its three networks
change. They come from a cached export of the weights (`facecascade.export.cache`: exported on
first use, reused afterwards): ``pnet_stem`` and ``pnet_features`` (P-Net cut after its first
PReLU, where the engine masks the positions just past odd-sized pyramid levels), ``rnet`` and
``onet``. P-Net's 1x1 heads (one dot product per response cell, box offsets for the cells that
pass) stay in PyTorch, on the same weights. The engine's CPU-specific paths (native stems, fused
layers, bfloat16) apply to the torch backend only.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor

from ..models.mtcnn import PNet, StageOutput
from ..models.weights import MTCNNNets

BACKENDS = ("torch", "onnxruntime", "openvino")
Run = Callable[..., tuple[Tensor, ...]]  # `facecascade.export.runtimes.Runner`


class OnnxPNet:
    """Stage 1 (`facecascade.detect.stages.ProposalStage`): trunk by a runtime, heads by ``pnet``."""

    def __init__(self, stem: Run, features: Run, pnet: PNet) -> None:
        self._stem, self._features, self.heads = stem, features, pnet
        self.window, self.stride = pnet.window, pnet.stride

    def stem(self, canvas: Tensor) -> Tensor:
        return self._stem(canvas)[0]

    def body(self, stem: Tensor) -> Tensor:
        return self._features(stem)[0]

    def face_margin(self, feats: Tensor) -> Tensor:
        return self.heads.face_margin(feats)

    def cell_offsets(self, cell_feats: Tensor) -> Tensor:
        return self.heads.cell_offsets(cell_feats)


class OnnxWindowNet:
    """Stage 2 or 3 (`facecascade.detect.stages.WindowStage`) by a runtime."""

    def __init__(self, run: Run, window: int, num_landmarks: int) -> None:
        self.run, self.window, self.num_landmarks = run, window, num_landmarks

    def __call__(self, crops: Tensor) -> StageOutput:
        if crops.shape[0] == 0:  # OpenVINO refuses empty batches
            points = crops.new_zeros(0, self.num_landmarks, 2) if self.num_landmarks else None
            return StageOutput(crops.new_zeros(0, 2), crops.new_zeros(0, 4), points)
        logits, offsets, *landmarks = self.run(crops)
        return StageOutput(logits, offsets, landmarks[0] if landmarks else None)


class OnnxStages(NamedTuple):
    """The three stages of a runtime (`facecascade.detect.stages.CascadeStages`)."""

    pnet: OnnxPNet
    rnet: OnnxWindowNet
    onet: OnnxWindowNet


def runtime_stages(weights: str | os.PathLike, nets: MTCNNNets, backend: str, device: torch.device) -> OnnxStages:
    """The stages of ``weights`` (whose PyTorch ``nets`` give P-Net's heads and the windows) run by
    ``backend`` (``"onnxruntime"`` or ``"openvino"``) on ``device``."""
    from ..export.cache import cached_export
    from ..export.runtimes import load_runner

    folder = cached_export(weights)

    def runner(name: str) -> Run:
        return load_runner(folder / f"{name}.onnx", backend, device)

    pnet = nets.pnet.to(device)
    return OnnxStages(
        OnnxPNet(runner("pnet_stem"), runner("pnet_features"), pnet),
        OnnxWindowNet(runner("rnet"), nets.rnet.window, nets.rnet.num_landmarks),
        OnnxWindowNet(runner("onet"), nets.onet.window, nets.onet.num_landmarks),
    )
