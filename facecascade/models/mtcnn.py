"""P-Net, R-Net and O-Net of MTCNN (Zhang et al., IEEE SPL 2016, Fig. 2).

Layer facts: P-Net conv3x3 3->10, max-pool 2/2, conv3x3 10->16, conv3x3 16->32, 1x1 convs to 2
(face) and 4 (box). R-Net conv3x3 3->28, max-pool 3/2, conv3x3 28->48, max-pool 3/2, conv2x2
48->64, fc 576->128, fc to 2 and 4. O-Net conv3x3 3->32, max-pool 3/2, conv3x3 32->64, max-pool
3/2, conv3x3 64->64, max-pool 2/2, conv2x2 64->128, fc 1152->256, fc to 2, 4 and 10. PReLU after
every conv/fc but the outputs. All pools use ceil mode (the reference's Caffe semantics).

Inputs are normalised pixels ``(x - 127.5) / 128`` ``(N, 3, H, W)`` RGB. Every net returns
*logits* for face/non-face (softmax them for probabilities), box offsets (x1, y1, x2, y2 in window
sizes) and, for O-Net, 5 landmarks as ``(N, 5, 2)`` positions relative to the window. The nets are
plain ``nn.Module``s with no side effects; named weights are loaded by `facecascade.models.weights`.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from .layers import CeilMaxPool2d, PReLU, conv_prelu


class StageOutput(NamedTuple):
    """What a cascade stage predicts for each window (or each P-Net response cell)."""

    logits: Tensor  # (N, 2) or (N, 2, H, W): non-face, face
    offsets: Tensor  # (N, 4) or (N, 4, H, W)
    landmarks: Tensor | None  # (N, 5, 2) relative to the window, O-Net only


class PNet(nn.Module):
    """Proposal network: fully convolutional, a 12x12 window every 2 pixels."""

    window = 12
    stride = 2

    def __init__(self, landmarks: int = 0) -> None:
        """``landmarks``: points of an optional landmark head (5 when trained with the landmark
        task, as in the MTCNN paper; the original released weights have none)."""
        super().__init__()
        self.stem = nn.Sequential(*conv_prelu(3, 10, 3))  # before the pool (see `MTCNNCascade`)
        self.body = nn.Sequential(CeilMaxPool2d(2, 2), *conv_prelu(10, 16, 3), *conv_prelu(16, 32, 3))
        self.cls = nn.Conv2d(32, 2, 1)
        self.box = nn.Conv2d(32, 4, 1)
        self.num_landmarks = landmarks
        self.landmarks = nn.Conv2d(32, 2 * landmarks, 1) if landmarks else None

    def trunk(self, x: Tensor) -> Tensor:
        """Features ``(N, 32, H', W')`` of ``x (N, 3, H, W)``; ``H' = ceil((H - 2) / 2) - 4``."""
        return self.body(self.stem(x))

    def forward(self, x: Tensor) -> StageOutput:
        """``x (N, 3, H, W)`` -> logits ``(N, 2, H', W')``, offsets ``(N, 4, H', W')`` and, with a
        landmark head, points ``(N, K, 2, H', W')`` relative to each cell's window."""
        return self.heads(self.trunk(x))

    def heads(self, feats: Tensor) -> StageOutput:
        """The output layers on trunk features ``(N, 32, H', W')``."""
        points = None
        if self.landmarks is not None:  # channels x1..xK, y1..yK like the other stages
            n, _, h, w = feats.shape
            points = self.landmarks(feats).view(n, 2, self.num_landmarks, h, w).transpose(1, 2)
        return StageOutput(self.cls(feats), self.box(feats), points)

    def face_margin(self, feats: Tensor) -> Tensor:
        """``logit(p_face) = l_face - l_nonface`` ``(N, H', W')`` from trunk features, as one dot
        product per cell (``sigmoid`` of it is the softmax face probability)."""
        bias = self.cls.bias
        assert bias is not None  # nn.Conv2d's default: built with one
        w = self.cls.weight[1, :, 0, 0] - self.cls.weight[0, :, 0, 0]
        b = bias[1] - bias[0]
        n, c, h, width = feats.shape
        if feats.is_contiguous(memory_format=torch.channels_last):  # one matrix-vector product
            return torch.mv(feats.permute(0, 2, 3, 1).reshape(-1, c), w).add_(b).view(n, h, width)
        return torch.einsum("nchw,c->nhw", feats, w) + b

    def cell_offsets(self, cell_feats: Tensor) -> Tensor:
        """Box offsets ``(K, 4)`` for ``cell_feats (K, 32)`` picked from the trunk output."""
        return nn.functional.linear(cell_feats, self.box.weight[:, :, 0, 0], self.box.bias)


class _WindowNet(nn.Module):
    """R-Net/O-Net: a conv trunk on a fixed-size window, an fc layer, and linear heads."""

    window: int

    def __init__(self, trunk: list[nn.Module], flat: int, hidden: int, landmarks: int) -> None:
        super().__init__()
        self.trunk = nn.Sequential(*trunk, nn.Flatten())
        self.fc = nn.Sequential(nn.Linear(flat, hidden), PReLU(hidden))
        self.cls = nn.Linear(hidden, 2)
        self.box = nn.Linear(hidden, 4)
        self.num_landmarks = landmarks
        self.landmarks = nn.Linear(hidden, 2 * landmarks) if landmarks else None

    def forward(self, x: Tensor) -> StageOutput:
        """``x (N, 3, window, window)`` -> logits ``(N, 2)``, offsets ``(N, 4)``, landmarks."""
        return self.heads(self.features(x))

    def features(self, x: Tensor) -> Tensor:
        """The fc feature ``(N, hidden)`` of windows ``x``."""
        return self.fc(self.trunk(x))

    def heads(self, hidden: Tensor) -> StageOutput:
        """The output layers on the fc feature."""
        points = None
        if self.landmarks is not None:  # stored as x1..xK, y1..yK like the reference
            points = self.landmarks(hidden).view(-1, 2, self.num_landmarks).transpose(1, 2)
        return StageOutput(self.cls(hidden), self.box(hidden), points)


class RNet(_WindowNet):
    """Refinement network on 24x24 windows."""

    window = 24

    def __init__(self, landmarks: int = 0) -> None:
        """``landmarks``: points of an optional landmark head (see `PNet`)."""
        super().__init__(
            [
                *conv_prelu(3, 28, 3),
                CeilMaxPool2d(3, 2),
                *conv_prelu(28, 48, 3),
                CeilMaxPool2d(3, 2),
                *conv_prelu(48, 64, 2),
            ],
            flat=576,
            hidden=128,
            landmarks=landmarks,
        )


class ONet(_WindowNet):
    """Output network on 48x48 windows, with 5 landmarks."""

    window = 48

    def __init__(self, landmarks: int = 5) -> None:
        super().__init__(
            [
                *conv_prelu(3, 32, 3),
                CeilMaxPool2d(3, 2),
                *conv_prelu(32, 64, 3),
                CeilMaxPool2d(3, 2),
                *conv_prelu(64, 64, 3),
                CeilMaxPool2d(2, 2),
                *conv_prelu(64, 128, 2),
            ],
            flat=1152,
            hidden=256,
            landmarks=landmarks,
        )
