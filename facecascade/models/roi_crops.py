"""RoI features from image crops: each box (with context around it) is cut from the image
itself at a fixed size by RoIAlign and goes through a small CNN of its own (R-CNN's per-region
features, Girshick et al. 2014, with the heads of Cascade R-CNN on top).

Why, beside the shared feature pyramid (`facecascade.models.rcnn_backbone`): a detector fed by
our MTCNN cascade has a handful of boxes per photo, so running a CNN on each box costs less on a
2-core CPU than a backbone over the whole photo, and a face of 20 pixels is seen at the same
resolution as one of 400. The network is MobileNet-style (depthwise-separable 3x3 convolutions
with BatchNorm, which the hundreds of crops per training step keep well estimated).

``CropRoIFeatures(features, rois, image_sizes)`` has the call signature of torchvision's
`MultiScaleRoIAlign`, with ``features = {"image": images}`` (normalised ``(3, H, W)`` pixels, a
list or a batch), and returns ``(R, channels, side / stride, side / stride)`` features of the
boxes ``rois`` (a list of ``(R_i, 4)`` per image).
The crops are sampled adaptively (RoIAlign's ``sampling_ratio=-1``: as many points per output cell
as the region has pixels across it), so a large face is averaged down, not aliased.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torchvision.ops import roi_align


def _conv(cin: int, cout: int, stride: int, groups: int = 1, kernel: int = 3) -> list[nn.Module]:
    return [
        nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    ]


def separable(cin: int, cout: int, stride: int) -> list[nn.Module]:
    """A depthwise 3x3 and a pointwise 1x1 convolution, each with BatchNorm and ReLU."""
    return _conv(cin, cin, stride, groups=cin) + _conv(cin, cout, 1, kernel=1)


class CropTrunk(nn.Module):
    """A 3x3 stem (stride 2), then separable blocks with ``widths``, stride 2 where ``strides``
    says; for a 48-pixel crop and the default strides the output is 6 x 6."""

    def __init__(self, widths: tuple[int, ...] = (64, 96, 96, 128, 128), strides: tuple[int, ...] = (1, 2, 1, 2, 1)):
        super().__init__()
        if len(widths) != len(strides):
            raise ValueError("widths and strides need one entry per block")
        layers, cin = _conv(3, 32, 2), 32
        for width, stride in zip(widths, strides):
            layers += separable(cin, width, stride)
            cin = width
        self.body = nn.Sequential(*layers)
        self.out_channels = cin
        self.stride = 2 * int(torch.tensor(strides).prod())

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


class CropRoIFeatures(nn.Module):
    """Crops of ``side`` pixels of each box enlarged ``context`` times about its centre, through a
    `CropTrunk` (see the module docstring)."""

    def __init__(self, side: int = 48, context: float = 1.4, widths=(64, 96, 96, 128, 128), strides=(1, 2, 1, 2, 1)):
        super().__init__()
        if side < 8 or not context >= 1.0:
            raise ValueError(f"need side >= 8 and context >= 1, got {side} and {context}")
        self.side, self.context = side, float(context)
        self.trunk = CropTrunk(tuple(widths), tuple(strides))
        self.out_size = side // self.trunk.stride

    def crop_boxes(self, rois: Tensor) -> Tensor:
        """The regions cut for ``rois`` ``(R, 4)``: each box scaled ``context`` times about its centre."""
        centre = (rois[:, :2] + rois[:, 2:]) / 2
        half = (rois[:, 2:] - rois[:, :2]) * (self.context / 2)
        return torch.cat([centre - half, centre + half], 1)

    def crops(self, image: Tensor, rois: Tensor) -> Tensor:
        """``(R, 3, side, side)`` crops of one image ``(3, H, W)`` (zeros outside it)."""
        regions = self.crop_boxes(rois)
        return roi_align(image[None], [regions], (self.side, self.side), 1.0, sampling_ratio=-1, aligned=True)

    def forward(self, features: dict[str, Any], rois: list[Tensor], image_sizes) -> Tensor:
        images = features["image"]
        crops = [self.crops(image, r) for image, r in zip(images, rois) if len(r)]
        if not crops:
            return rois[0].new_zeros((0, self.trunk.out_channels, self.out_size, self.out_size))
        return self.trunk(torch.cat(crops))
