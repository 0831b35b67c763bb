"""What `MTCNNCascade` calls on its three networks, as protocols: the PyTorch modules of
`facecascade.models.mtcnn` (and a joint cascade's test-time stages) follow them, and so do the
ONNX Runtime / OpenVINO adapters of `facecascade.detect.backends`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from torch import Tensor

from ..models.mtcnn import StageOutput


class ProposalStage(Protocol):
    """Stage 1 as the engine runs it on a canvas band: ``stem`` (conv1 + PReLU) ``(1, 3, H, W) ->
    (1, 10, H - 2, W - 2)``, then ``body`` (pooling and the rest of the trunk) ``-> (1, 32, H', W')``;
    the 1x1 heads as `face_margin` on the feature map and `cell_offsets` on chosen cells."""

    @property
    def window(self) -> int: ...
    @property
    def stride(self) -> int: ...
    @property
    def stem(self) -> Callable[[Tensor], Tensor]: ...
    @property
    def body(self) -> Callable[[Tensor], Tensor]: ...
    def face_margin(self, feats: Tensor) -> Tensor: ...
    def cell_offsets(self, cell_feats: Tensor) -> Tensor: ...


class WindowStage(Protocol):
    """Stage 2 or 3: ``(N, 3, window, window)`` normalised crops -> `StageOutput`."""

    @property
    def window(self) -> int: ...
    @property
    def num_landmarks(self) -> int: ...
    def __call__(self, crops: Tensor) -> StageOutput: ...


class CascadeStages(Protocol):
    """The three stages (`facecascade.models.weights.MTCNNNets` is one)."""

    @property
    def pnet(self) -> ProposalStage: ...
    @property
    def rnet(self) -> WindowStage: ...
    @property
    def onet(self) -> WindowStage: ...
