"""MCFA: facial attributes from a jointly trained 3-scale cascade (S_Net, M_Net, L_Net).

The face crop is average-pooled into three scales. Each sub-network has a VGG-style trunk; M_Net's
fc feature is concatenated with S_Net's flattened feature, L_Net's with M_Net's (the paper's
"last shared layer"). After it, each sub-network has two more layers, then heads for face/non-face,
box (4), 5 landmarks and d attributes, and a dynamic-weight layer: a linear layer and a softmax on
the last shared features giving ``mu (N, d)``, which sums to 1 (Eq. 6-7).

Sizes, chosen for the 2-core CPU and for CelebA's 89 x 109 copy (the paper: 56/112/224 with VGG-16
trunks): inputs 24 / 48 / 96, one 3x3 conv (+ BatchNorm, ReLU) per block and max-pool 2, widths in
`MCFAConfig`. S_Net ends in a valid 3x3 conv to a 1x1 map (it is fully convolutional); its two
extra layers are 1x1 convolutions on that map, written here as the equal linear layers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass(frozen=True)
class MCFAConfig:
    sizes: tuple[int, int, int] = (24, 48, 96)  # S_Net, M_Net, L_Net input sides (pixels)
    s_widths: tuple[int, ...] = (16, 32, 64)  # S_Net blocks (24 -> 3), then a 3x3 conv to
    s_feature: int = 128  # ... a 1 x 1 x s_feature map
    m_widths: tuple[int, ...] = (24, 48, 96, 128)  # M_Net blocks (48 -> 3)
    l_widths: tuple[int, ...] = (24, 48, 64, 96, 128)  # L_Net blocks (96 -> 3)
    fc: int = 256  # M_Net / L_Net fc before the concatenation
    head: int = 128  # width of the two layers after the shared one
    num_attributes: int = 40
    num_landmarks: int = 5
    dropout: float = 0.2  # before the two extra layers (training only)


class MCFAOutput(NamedTuple):
    """One sub-network's predictions for ``N`` crops."""

    logits: Tensor  # (N, 2) non-face, face
    box: Tensor  # (N, 4) x1, y1, x2, y2 of the face box, in crop sides
    landmarks: Tensor  # (N, K, 2) in crop sides
    attributes: Tensor  # (N, d) logits: attribute present
    weights: Tensor  # (N, d) dynamic attribute weights, rows sum to 1


def _blocks(widths: tuple[int, ...], cin: int = 3) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for w in widths:
        layers += [
            nn.Conv2d(cin, w, 3, padding=1, bias=False),
            nn.BatchNorm2d(w),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        ]
        cin = w
    return layers


class MCFAHeads(nn.Module):
    """Two layers after the last shared feature, the task heads, and the dynamic weights (a
    linear layer and a softmax on the shared feature, Eq. 6; the feature is detached there)."""

    def __init__(self, shared: int, cfg: MCFAConfig):
        super().__init__()
        self.extra = nn.Sequential(
            nn.Dropout(cfg.dropout),
            nn.Linear(shared, cfg.head),
            nn.ReLU(inplace=True),
            nn.Linear(cfg.head, cfg.head),
            nn.ReLU(inplace=True),
        )
        self.cls = nn.Linear(cfg.head, 2)
        self.box = nn.Linear(cfg.head, 4)
        self.landmarks = nn.Linear(cfg.head, 2 * cfg.num_landmarks)
        self.attributes = nn.Linear(cfg.head, cfg.num_attributes)
        self.weighting = nn.Linear(shared, cfg.num_attributes)
        self.num_landmarks = cfg.num_landmarks

    def forward(self, shared: Tensor) -> MCFAOutput:
        h = self.extra(shared)
        points = self.landmarks(h).view(-1, self.num_landmarks, 2)
        # the weighting layer learns from the shared features but does not shape them
        # (`facecascade.train.mcfa` trains it to predict which attributes are hard)
        return MCFAOutput(
            self.cls(h), self.box(h), points, self.attributes(h), torch.softmax(self.weighting(shared.detach()), dim=1)
        )


class MCFANet(nn.Module):
    """The three cascaded sub-networks, trained as one.

    ``forward(x)`` takes normalised crops ``(N, 3, L, L)`` (L = ``cfg.sizes[2]``; pixels
    ``(x - 127.5) / 128``) and returns one `MCFAOutput` per sub-network, S_Net first; L_Net's is
    the final answer.
    """

    def __init__(self, cfg: MCFAConfig = MCFAConfig()):
        super().__init__()
        self.cfg = cfg
        s, m, l = cfg.sizes
        side_m, side_l = m >> len(cfg.m_widths), l >> len(cfg.l_widths)
        self.s_trunk = nn.Sequential(
            *_blocks(cfg.s_widths),
            nn.Conv2d(cfg.s_widths[-1], cfg.s_feature, s >> len(cfg.s_widths)),
            nn.ReLU(inplace=True),
            nn.Flatten(),
        )
        self.m_trunk = nn.Sequential(
            *_blocks(cfg.m_widths), nn.Flatten(), nn.Linear(cfg.m_widths[-1] * side_m**2, cfg.fc), nn.ReLU(inplace=True)
        )
        self.l_trunk = nn.Sequential(
            *_blocks(cfg.l_widths), nn.Flatten(), nn.Linear(cfg.l_widths[-1] * side_l**2, cfg.fc), nn.ReLU(inplace=True)
        )
        m_shared = cfg.fc + cfg.s_feature
        self.heads = nn.ModuleList(
            [MCFAHeads(cfg.s_feature, cfg), MCFAHeads(m_shared, cfg), MCFAHeads(cfg.fc + m_shared, cfg)]
        )

    def scales(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The input average-pooled to S_Net's, M_Net's and L_Net's sides."""
        s, m, l = self.cfg.sizes
        if x.shape[-1] != l or x.shape[-2] != l:
            raise ValueError(f"MCFANet expects (N, 3, {l}, {l}) crops, got {tuple(x.shape)}")
        return F.adaptive_avg_pool2d(x, s), F.adaptive_avg_pool2d(x, m), x

    def forward(self, x: Tensor) -> list[MCFAOutput]:
        xs, xm, xl = self.scales(x)
        s = self.s_trunk(xs)  # (N, s_feature)
        m = torch.cat([self.m_trunk(xm), s], dim=1)  # (N, fc + s_feature)
        l = torch.cat([self.l_trunk(xl), m], dim=1)  # (N, 2 fc + s_feature)
        return [head(f) for head, f in zip(self.heads, (s, m, l))]
