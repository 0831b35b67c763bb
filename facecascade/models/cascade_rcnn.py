"""Two-stage detectors: backbone + FPN + RPN + the RoI heads of `facecascade.models.cascade_heads`
(Cascade R-CNN and the baselines of its Table 1), for any number of classes.

Built from torchvision pieces where they fit: `GeneralizedRCNNTransform` (resize so the shorter
side is ``min_size`` but the longer at most ``max_size``, normalise, batch), the RPN
(`AnchorGenerator`, `RPNHead`, `RegionProposalNetwork`) and `MultiScaleRoIAlign`; the backbone is
`facecascade.models.rcnn_backbone.ResNetFPN`, trained from scratch.

Forward contract (torchvision's and detectron2's): ``model(images, targets)`` in training returns a
dict of named losses (``loss_objectness``, ``loss_rpn_box_reg``, ``loss_cls_stage1``, ...); in
eval mode ``model(images)`` returns one ``{"boxes", "scores", "labels"}`` dict per image, boxes
``x1, y1, x2, y2`` in pixels of the input image. ``images``: a list of ``(3, H, W)`` float tensors
in [0, 1]; ``targets``: a list of ``{"boxes": (N, 4) float, "labels": (N,) int64 >= 1}``.

``parts`` selects what trains, for FaceCraft's comparison of joint and separate RPN training (§5):
``"all"`` (joint, end to end: the default), ``"rpn"`` (backbone and RPN only, no RoI heads) and
``"heads"`` (the RoI heads only, on proposals from a frozen backbone and RPN).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torchvision.models.detection.rpn import AnchorGenerator, RegionProposalNetwork, RPNHead
from torchvision.models.detection.transform import GeneralizedRCNNTransform

from .cascade_heads import MODES, CascadeRoIHeads, HeadsConfig
from .rcnn_backbone import ResNetFPN

PARTS = ("all", "rpn", "heads")


def image_input(array: np.ndarray, device: torch.device | str = "cpu") -> Tensor:
    """An RGB ``uint8 (H, W, 3)`` array as the detectors take it: ``(3, H, W)`` float in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(array)).to(device).permute(2, 0, 1).float().div_(255)


@dataclass(frozen=True)
class RCNNConfig:
    """Everything that defines a two-stage detector (stored with its checkpoints)."""

    num_classes: int = 1
    mode: str = "cascade"  # a key of `cascade_heads.MODES`
    min_size: int = 512  # shorter image side after resizing
    max_size: int = 768  # longer side at most
    widths: tuple[int, ...] = (32, 64, 128, 256)  # backbone stages (strides 4..32)
    blocks: int = 1  # residual blocks per stage
    fpn_channels: int = 64
    anchor_sizes: tuple[int, ...] = (16, 32, 64, 128, 256)  # one per pyramid level "0".."3", "pool"
    aspect_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)
    rpn_pre_nms: tuple[int, int] = (1000, 500)  # per level, training / testing
    rpn_post_nms: tuple[int, int] = (512, 300)  # per image, training / testing
    rpn_nms: float = 0.7
    rpn_batch: int = 256
    heads: HeadsConfig = field(default_factory=HeadsConfig)  # sizes and sampling; stages and classes
    # come from `mode` and `num_classes`

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {self.num_classes}")
        stages, iterations = MODES[self.mode]
        heads = replace(
            self.heads,
            stages=stages,
            test_iterations=iterations,
            num_classes=self.num_classes,
            in_channels=self.fpn_channels,
        )
        object.__setattr__(self, "heads", heads)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> RCNNConfig:
        values = dict(values)
        heads = dict(values.pop("heads", {}))
        heads.pop("stages", None)  # set by the mode
        tuples = {k: tuple(v) for k, v in values.items() if isinstance(v, list)}
        head_fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in heads.items()}
        return cls(**{**values, **tuples}, heads=HeadsConfig(**head_fields))


class CascadeRCNN(nn.Module):
    """A two-stage detector of `RCNNConfig` (see the module docstring for the forward contract)."""

    def __init__(self, cfg: RCNNConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.transform = GeneralizedRCNNTransform(
            cfg.min_size, cfg.max_size, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
        )
        self.backbone = ResNetFPN(cfg.widths, cfg.blocks, cfg.fpn_channels)
        anchors = AnchorGenerator(tuple((s,) for s in cfg.anchor_sizes), (cfg.aspect_ratios,) * len(cfg.anchor_sizes))
        self.rpn = RegionProposalNetwork(
            anchors,
            RPNHead(cfg.fpn_channels, len(cfg.aspect_ratios)),
            fg_iou_thresh=0.7,
            bg_iou_thresh=0.3,
            batch_size_per_image=cfg.rpn_batch,
            positive_fraction=0.5,
            pre_nms_top_n={"training": cfg.rpn_pre_nms[0], "testing": cfg.rpn_pre_nms[1]},
            post_nms_top_n={"training": cfg.rpn_post_nms[0], "testing": cfg.rpn_post_nms[1]},
            nms_thresh=cfg.rpn_nms,
        )
        self.roi_heads = CascadeRoIHeads(cfg.heads)

    def forward(self, images: list[Tensor], targets: list[dict[str, Tensor]] | None = None, parts: str = "all"):
        if parts not in PARTS:
            raise ValueError(f"parts must be one of {', '.join(PARTS)}, got {parts!r}")
        if self.training and targets is None:
            raise ValueError("training needs targets")
        original_sizes = [tuple(im.shape[-2:]) for im in images]
        batch, targets = self.transform(images, targets)
        frozen = self.training and parts == "heads"
        with torch.set_grad_enabled(torch.is_grad_enabled() and not frozen):
            features = self.backbone(batch.tensors)
            if frozen:
                self.rpn.eval()  # test-time proposals from the frozen RPN
            proposals, rpn_losses = self.rpn(batch, features, targets)
            if frozen:
                self.rpn.train()
        if not self.training:
            detections = self.roi_heads(features, proposals, batch.image_sizes)
            return self.transform.postprocess(detections, batch.image_sizes, original_sizes)
        losses = {} if parts == "heads" else dict(rpn_losses)
        if parts != "rpn":
            losses.update(self.roi_heads(features, proposals, batch.image_sizes, targets))
        return losses

    def trainable_parameters(self, parts: str = "all") -> list[nn.Parameter]:
        """The parameters ``parts`` trains (see the module docstring)."""
        if parts == "heads":
            return list(self.roi_heads.parameters())
        if parts == "rpn":
            return list(self.backbone.parameters()) + list(self.rpn.parameters())
        return list(self.parameters())
