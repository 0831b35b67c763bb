"""A small ResNet with a feature pyramid, trained from scratch, for the two-stage detectors
(`facecascade.models.cascade_rcnn`).

No pretrained weights can be downloaded here, so the backbone must train from random
initialisation on a 2-core CPU: basic residual blocks with GroupNorm (which, unlike BatchNorm,
does not depend on the 1-2 images per batch a detector trains with), widths 32-64-128-256 (about
2.9 M parameters with the FPN), strides 4-8-16-32, and torchvision's `FeaturePyramidNetwork` on
top with a max-pooled extra level: outputs ``"0"`` .. ``"3"`` at strides 4, 8, 16, 32 and
``"pool"`` at 64, all with ``fpn_channels`` channels.
"""

from __future__ import annotations

from collections import OrderedDict

import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import FeaturePyramidNetwork
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, channels // 4), channels)


class BasicBlock(nn.Module):
    """Two 3x3 conv + GroupNorm layers with a residual connection (a 1x1 projection when the
    shape changes)."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.norm1 = _norm(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.norm2 = _norm(cout)
        self.skip = None
        if stride != 1 or cin != cout:
            self.skip = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), _norm(cout))

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.norm1(self.conv1(x)))
        out = self.norm2(self.conv2(out))
        return F.relu(out + (x if self.skip is None else self.skip(x)))


class ResNetFPN(nn.Module):
    """Small ResNet (stem to stride 4, then one stage per width, each halving the resolution
    after the first) and an FPN; ``forward(images (N, 3, H, W))`` -> ``OrderedDict`` of pyramid
    levels (see the module docstring). ``out_channels`` is read by the RPN and RoI heads."""

    def __init__(self, widths: tuple[int, ...] = (32, 64, 128, 256), blocks: int = 1, fpn_channels: int = 64) -> None:
        super().__init__()
        stem = widths[0]
        self.stem = nn.Sequential(
            nn.Conv2d(3, stem, 3, 2, 1, bias=False),
            _norm(stem),
            nn.ReLU(inplace=True),
            nn.Conv2d(stem, stem, 3, 2, 1, bias=False),
            _norm(stem),
            nn.ReLU(inplace=True),
        )
        stages, cin = [], stem
        for i, width in enumerate(widths):
            layers = [BasicBlock(cin, width, stride=1 if i == 0 else 2)]
            layers += [BasicBlock(width, width) for _ in range(blocks - 1)]
            stages.append(nn.Sequential(*layers))
            cin = width
        self.stages = nn.ModuleList(stages)
        self.fpn = FeaturePyramidNetwork(list(widths), fpn_channels, extra_blocks=LastLevelMaxPool())
        self.out_channels = fpn_channels

    def forward(self, x: Tensor) -> OrderedDict[str, Tensor]:
        x = self.stem(x)
        feats = OrderedDict()
        for i, stage in enumerate(self.stages):
            x = stage(x)
            feats[str(i)] = x
        return self.fpn(feats)
