"""Two-stage detectors: backbone + FPN + RPN + the RoI heads of `facecascade.models.cascade_heads`
(Cascade R-CNN and the baselines of its Table 1), for any number of classes.

Built from torchvision pieces where they fit: `GeneralizedRCNNTransform` (resize so the shorter
side is ``min_size`` but the longer at most ``max_size``, normalise, batch), the RPN
(`AnchorGenerator`, `RPNHead`, `RegionProposalNetwork`) and `MultiScaleRoIAlign`; the backbone is
`facecascade.models.rcnn_backbone.ResNetFPN`, trained from scratch.

Forward contract (torchvision's and detectron2's): ``model(images, targets)`` in training returns a
dict of named losses (``loss_objectness``, ``loss_rpn_box_reg``, ``loss_cls_stage1``, ...); in
eval mode ``model(images)`` returns one ``{"boxes", "scores", "labels", "proposal"}`` dict per
image, boxes ``x1, y1, x2, y2`` in pixels of the input image, ``proposal`` the index of the
proposal each detection refines (and ``"landmarks"`` ``(N, 5, 2)``, that proposal's, when the
model ran its MTCNN proposal source itself). ``images``: a list of ``(3, H, W)`` float tensors
in [0, 1]; ``targets``: a list of ``{"boxes": (N, 4) float, "labels": (N,) int64 >= 1}``.

``parts`` selects what trains, for FaceCraft's comparison of joint and separate RPN training (§5):
``"all"`` (joint, end to end: the default), ``"rpn"`` (backbone and RPN only, no RoI heads) and
``"heads"`` (the RoI heads only, on proposals from a frozen backbone and RPN).

Three choices make the variants of the issue-26 ablation (docs/models/cascade-rcnn.md):

* ``proposals``: ``"rpn"`` (the detector's own RPN) or ``"mtcnn"`` (no RPN: the boxes of the
  MTCNN cascade of ``proposal_source``, FaceCraft's cascade feeding a Fast R-CNN; at inference
  the model runs that cascade itself unless ``proposals=`` gives them, one ``(N_i, 4)`` tensor of
  boxes per image in its pixels; training always gives them);
* ``features``: ``"fpn"`` (RoIAlign on the shared ResNet-FPN) or ``"crops"`` (each box cut from
  the image and through a small CNN of its own, `facecascade.models.roi_crops`; needs
  ``proposals="mtcnn"``, and the image is not resized);
* ``conventions``: the sources (``FaceRecord.source``) whose box conventions get regressors of
  their own; a target's ``"convention"`` (the index of its source) picks the regressor it trains,
  and `CascadeRCNN.use_convention` picks the one inference uses (the first by default).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torchvision.models.detection.rpn import AnchorGenerator, RegionProposalNetwork, RPNHead
from torchvision.models.detection.transform import GeneralizedRCNNTransform, resize_boxes

from .cascade_heads import MODES, CascadeRoIHeads, HeadsConfig
from .proposal_source import ProposalSource
from .rcnn_backbone import ResNetFPN
from .roi_crops import CropRoIFeatures

PARTS = ("all", "rpn", "heads")
PROPOSALS = ("rpn", "mtcnn")
FEATURES = ("fpn", "crops")
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


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
    proposals: str = "rpn"  # or "mtcnn" (module docstring)
    proposal_source: ProposalSource = field(default_factory=ProposalSource)  # with proposals="mtcnn"
    features: str = "fpn"  # or "crops"
    crop_side: int = 48  # features="crops": crop side in pixels,
    crop_context: float = 1.4  # the crop's side over the box's,
    crop_widths: tuple[int, ...] = (64, 96, 96, 128, 128)  # and the crop CNN's blocks
    crop_strides: tuple[int, ...] = (1, 2, 1, 2, 1)
    conventions: tuple[str, ...] = ()  # sources with a box regressor each (empty: one for all)
    proposal_score_weight: float = 0.5  # proposals="mtcnn": the cascade's score in the final one

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.proposals not in PROPOSALS or self.features not in FEATURES:
            raise ValueError(f"proposals must be one of {PROPOSALS} and features one of {FEATURES}")
        if self.features == "crops" and self.proposals != "mtcnn":
            raise ValueError("features='crops' has no feature map for an RPN: it needs proposals='mtcnn'")
        if self.num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {self.num_classes}")
        stages, iterations = MODES[self.mode]
        heads = replace(
            self.heads,
            stages=stages,
            test_iterations=iterations,
            num_classes=self.num_classes,
            in_channels=self.fpn_channels,
            conventions=max(1, len(self.conventions)),
            prior_weight=self.proposal_score_weight if self.proposals == "mtcnn" else 0.0,
        )
        object.__setattr__(self, "heads", heads)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> RCNNConfig:
        values = dict(values)
        heads = dict(values.pop("heads", {}))
        heads.pop("stages", None)  # set by the mode
        source = values.pop("proposal_source", None)
        if source is not None:
            values["proposal_source"] = ProposalSource(**{**source, "thresholds": tuple(source["thresholds"])})
        tuples = {k: tuple(v) for k, v in values.items() if isinstance(v, list)}
        head_fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in heads.items()}
        return cls(**{**values, **tuples}, heads=HeadsConfig(**head_fields))

    def convention_index(self, source: str) -> int:
        """The regressor trained on boxes of ``source`` (0 when the config has one for all)."""
        if not self.conventions:
            return 0
        if source not in self.conventions:
            raise ValueError(f"no box convention for source {source!r}; the detector has {self.conventions}")
        return self.conventions.index(source)


class CascadeRCNN(nn.Module):
    """A two-stage detector of `RCNNConfig` (see the module docstring for the forward contract)."""

    def __init__(self, cfg: RCNNConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.transform = GeneralizedRCNNTransform(cfg.min_size, cfg.max_size, MEAN, STD)
        self.backbone: nn.Module | None = None
        self.rpn: RegionProposalNetwork | None = None
        self._proposer: Any = None  # proposals="mtcnn": the MTCNN detector, loaded when first needed
        if cfg.features == "crops":
            crops = CropRoIFeatures(cfg.crop_side, cfg.crop_context, cfg.crop_widths, cfg.crop_strides)
            size = crops.trunk.out_channels * crops.out_size**2
            self.roi_heads = CascadeRoIHeads(cfg.heads, crops, size)
            return
        self.backbone = ResNetFPN(cfg.widths, cfg.blocks, cfg.fpn_channels)
        if cfg.proposals == "rpn":
            self.rpn = self._rpn(cfg)
        self.roi_heads = CascadeRoIHeads(cfg.heads)

    @staticmethod
    def _rpn(cfg: RCNNConfig) -> RegionProposalNetwork:
        anchors = AnchorGenerator(tuple((s,) for s in cfg.anchor_sizes), (cfg.aspect_ratios,) * len(cfg.anchor_sizes))
        return RegionProposalNetwork(
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

    def use_convention(self, source: str) -> None:
        """Boxes at inference in the box convention of training source ``source``."""
        self.roi_heads.convention = self.cfg.convention_index(source)

    def forward(
        self,
        images: list[Tensor],
        targets: list[dict[str, Tensor]] | None = None,
        parts: str = "all",
        proposals: list[Tensor] | None = None,
    ):
        if parts not in PARTS:
            raise ValueError(f"parts must be one of {', '.join(PARTS)}, got {parts!r}")
        if self.training and targets is None:
            raise ValueError("training needs targets")
        if proposals is not None and self.rpn is not None:
            raise ValueError("this detector makes its own proposals and takes none (its config: proposals='rpn')")
        if proposals is not None or self.rpn is not None:
            return self._forward(images, targets, parts, proposals, None)
        proposals, scores, landmarks = self.source_proposals(images)
        found = self._forward(images, targets, parts, proposals, scores)
        for detections, points in zip(found, landmarks):  # each face keeps its proposal's 5 points
            detections["landmarks"] = points[detections["proposal"]]
        return found

    def _forward(self, images, targets, parts: str, proposals: list[Tensor] | None, scores):
        if self.backbone is None:
            return self._crops_forward(images, targets, proposals or [], scores)
        return self._pyramid_forward(images, targets, parts, proposals, scores)

    def source_proposals(self, images: list[Tensor]) -> tuple[list[Tensor], list[Tensor], list[Tensor]]:
        """The boxes, scores and 5 landmarks ``(N, 5, 2)`` of `RCNNConfig.proposal_source` for
        ``images`` (inference only: training passes the cached boxes). Its MTCNN detector is
        loaded at the first call; it adds no border to small images (`FaceDetector` has added it
        before a two-stage detector sees them). The scores join the heads' (``proposal_score_weight``);
        each detection keeps its proposal's landmarks (``"landmarks"`` in the output)."""
        if self.training:
            raise ValueError("training a detector without an RPN needs its proposals (proposals=...)")
        if not images:
            return [], [], []
        if self._proposer is None:
            self._proposer = self.cfg.proposal_source.detector(images[0].device, small_image_side=0)
        arrays = [im.mul(255).round_().clamp_(0, 255).byte().permute(1, 2, 0).cpu().numpy() for im in images]
        found = self._proposer.detect_arrays(arrays)
        device = images[0].device

        def tensors(field: str) -> list[Tensor]:
            return [torch.from_numpy(np.asarray(getattr(f, field), np.float32)).to(device) for f in found]

        return tensors("boxes"), tensors("scores"), tensors("landmarks")

    def _crops_forward(self, images: list[Tensor], targets, proposals: list[Tensor], scores):
        """features="crops": the heads on the images as they are (normalised, not resized)."""
        if not images:
            return {} if self.training else []
        mean, std = images[0].new_tensor(MEAN)[:, None, None], images[0].new_tensor(STD)[:, None, None]
        features = {"image": [(im - mean) / std for im in images]}
        sizes = [(int(im.shape[-2]), int(im.shape[-1])) for im in images]
        if self.training:
            return self.roi_heads(features, proposals, sizes, targets)
        return self.roi_heads(features, proposals, sizes, prior_scores=scores)

    def _pyramid_forward(self, images: list[Tensor], targets, parts: str, given: list[Tensor] | None, scores=None):
        original_sizes = [(int(im.shape[-2]), int(im.shape[-1])) for im in images]
        batch, targets = self.transform(images, targets)
        frozen = self.training and parts == "heads"
        assert self.backbone is not None
        with torch.set_grad_enabled(torch.is_grad_enabled() and not frozen):
            features = self.backbone(batch.tensors)
            if given is not None:
                sizes = zip(given, original_sizes, batch.image_sizes)
                proposals, rpn_losses = [resize_boxes(b, list(old), list(new)) for b, old, new in sizes], {}
            else:
                proposals, rpn_losses = self._proposals(batch, features, targets, frozen)
        if not self.training:
            detections = self.roi_heads(features, proposals, batch.image_sizes, prior_scores=scores)
            return self.transform.postprocess(detections, batch.image_sizes, original_sizes)
        losses = {} if parts == "heads" else dict(rpn_losses)
        if parts != "rpn":
            losses.update(self.roi_heads(features, proposals, batch.image_sizes, targets))
        return losses

    def _proposals(self, batch, features, targets, frozen: bool):
        assert self.rpn is not None
        if frozen:
            self.rpn.eval()  # test-time proposals from the frozen RPN
        proposals, losses = self.rpn(batch, features, targets)
        if frozen:
            self.rpn.train()
        return proposals, losses

    def trainable_parameters(self, parts: str = "all") -> list[nn.Parameter]:
        """The parameters ``parts`` trains (see the module docstring)."""
        if parts == "heads":
            return list(self.roi_heads.parameters())
        if parts == "rpn":
            return [p for m in (self.backbone, self.rpn) if m is not None for p in m.parameters()]
        return list(self.parameters())
