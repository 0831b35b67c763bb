"""The RoI heads of Cascade R-CNN (Cai and Vasconcelos, CVPR 2018) and the paper's baselines, as
configurations of one piece of code.

A detector's heads are a sequence of stages (`StageConfig`). Each stage has a 2-fc head on
RoIAligned features, one or more classifiers (``num_classes + 1`` logits each, background first)
and one class-agnostic box regressor. At training, stage ``t``:

1. takes the boxes regressed by stage ``t - 1`` (the RPN's proposals for ``t = 1``; the
   *resampling* of §4.2), adds the ground truth to them,
2. labels each box with its best-overlapping object if the IoU is at least the classifier's
   threshold ``u`` (background otherwise; Eq. 3), once per classifier,
3. samples ``rois_per_image`` boxes per image with up to ``positive_fraction`` foreground (by the
   first classifier's labels),
4. computes cross-entropy for every classifier and smooth-L1 regression on the foreground, with
   targets normalised by the stage's ``std`` (the paper's "stat", §4.1), weighted by the stage's
   ``loss_weight``, and
5. passes its regressed boxes (detached) to stage ``t + 1``.

At inference the boxes go through the stages in turn; the final boxes are the last stage's
regression, and the score is the average of the probabilities of every classifier of every stage
on the last stage's input boxes (the paper's ensemble, Table 2: "given the 3rd stage proposals").

`MODES` (the paper's Table 1, same backbone and data):

* ``cascade``: three stages at IoU 0.5 / 0.6 / 0.7, std 0.1-0.2 / 0.05-0.1 / 0.033-0.067, loss
  weights 1 / 0.5 / 0.25 (the values of the authors' released code; the paper measures its
  statistics, Fig. 2, and finds learning "not sensitive" to them);
* ``baseline``: one stage at 0.5 (Faster R-CNN / FPN+);
* ``iterative``: the baseline trained alike, its stage applied three times at inference
  (*iterative BBox*);
* ``integral``: one stage, one regressor, three classifiers at 0.5 / 0.6 / 0.7 (*integral loss*).

Box convention everywhere: ``x1, y1, x2, y2`` in pixels of the (resized) image.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.detection._utils import BalancedPositiveNegativeSampler
from torchvision.ops import MultiScaleRoIAlign, batched_nms, box_iou, clip_boxes_to_image, remove_small_boxes

from ..ops.coding import decode_deltas, encode_deltas


@dataclass(frozen=True)
class StageConfig:
    """One detection stage: the foreground IoU of each of its classifiers (the first also labels
    regression and sampling), its regression-target std, and its loss weight."""

    ious: tuple[float, ...] = (0.5,)
    std: tuple[float, float, float, float] = (0.1, 0.1, 0.2, 0.2)
    loss_weight: float = 1.0


CASCADE = (
    StageConfig((0.5,), (0.1, 0.1, 0.2, 0.2), 1.0),
    StageConfig((0.6,), (0.05, 0.05, 0.1, 0.1), 0.5),
    StageConfig((0.7,), (0.033, 0.033, 0.067, 0.067), 0.25),
)
BASELINE = (StageConfig(),)
INTEGRAL = (StageConfig((0.5, 0.6, 0.7)),)
MODES: dict[str, tuple[tuple[StageConfig, ...], int]] = {  # stages, times the stages run at test
    "cascade": (CASCADE, 1),
    "baseline": (BASELINE, 1),
    "iterative": (BASELINE, 3),
    "integral": (INTEGRAL, 1),
}


@dataclass(frozen=True)
class HeadsConfig:
    """The RoI heads: stages, sizes, sampling and post-processing."""

    stages: tuple[StageConfig, ...] = CASCADE
    test_iterations: int = 1  # >1: the stages run this many times at inference (iterative BBox)
    num_classes: int = 1  # object classes (background excluded)
    in_channels: int = 64  # feature pyramid channels
    featmap_names: tuple[str, ...] = ("0", "1", "2", "3")
    roi_size: int = 7
    representation: int = 256  # width of the 2 fc layers
    rois_per_image: int = 256  # sampled boxes per image and stage at training
    positive_fraction: float = 0.25
    score_thresh: float = 0.05
    nms_thresh: float = 0.5
    detections_per_image: int = 100
    min_box_size: float = 1e-2
    conventions: int = 1  # box regressors per stage: one per training source's box convention
    # (`RCNNConfig.conventions`); inference uses `CascadeRoIHeads.convention`
    prior_weight: float = 0.0  # given proposal scores s: a box scores p^(1 - w) * s^w at inference

    def __post_init__(self) -> None:
        if not self.stages or self.test_iterations < 1:
            raise ValueError("need at least one stage and test_iterations >= 1")
        if self.conventions < 1:
            raise ValueError(f"conventions must be >= 1, got {self.conventions}")
        if not 0.0 <= self.prior_weight <= 1.0:
            raise ValueError(f"prior_weight must be in [0, 1], got {self.prior_weight}")
        for stage in self.stages:
            if not stage.ious or not all(0.0 < u < 1.0 for u in stage.ious):
                raise ValueError(f"stage IoU thresholds must be in (0, 1), got {stage.ious}")


class StageHead(nn.Module):
    """2 fc layers on RoI features, ``num_classifiers`` classifiers and a class-agnostic regressor
    per box convention; ``forward`` -> (list of ``(R, num_classes + 1)`` logits, ``(R, 4 *
    conventions)`` deltas, convention ``c`` in columns ``4c .. 4c + 3``)."""

    def __init__(
        self, in_features: int, representation: int, num_classes: int, num_classifiers: int, conventions: int = 1
    ) -> None:
        super().__init__()
        self.fc = nn.Sequential(
            nn.Flatten(),
            nn.Linear(in_features, representation),
            nn.ReLU(inplace=True),
            nn.Linear(representation, representation),
            nn.ReLU(inplace=True),
        )
        classifiers = [nn.Linear(representation, num_classes + 1) for _ in range(num_classifiers)]
        self.classifiers = nn.ModuleList(classifiers)
        self.regressor = nn.Linear(representation, 4 * conventions)
        for layer, std in [(c, 0.01) for c in classifiers] + [(self.regressor, 0.001)]:
            nn.init.normal_(layer.weight, std=std)
            nn.init.zeros_(layer.bias)

    def forward(self, roi_features: Tensor) -> tuple[list[Tensor], Tensor]:
        hidden = self.fc(roi_features)
        return [c(hidden) for c in self.classifiers], self.regressor(hidden)


def pick_convention(deltas: Tensor, conventions: Tensor | int) -> Tensor:
    """``(R, 4)`` deltas of each box's convention (an index per box, or one for all) from a
    regressor's ``(R, 4 * C)`` output."""
    per_convention = deltas.view(len(deltas), deltas.shape[1] // 4, 4)
    if isinstance(conventions, int):
        return per_convention[:, conventions]
    return per_convention[torch.arange(len(deltas), device=deltas.device), conventions]


def match_labels(boxes: Tensor, gt_boxes: Tensor, gt_labels: Tensor, ious: tuple[float, ...]) -> tuple[Tensor, Tensor]:
    """Each box's best-overlapping object: ``labels (K, N)`` per threshold in ``ious`` (the object's
    class where IoU >= u, 0 = background) and ``matched (N,)`` the index of that object (0 when
    there is none; only meaningful where a label is set)."""
    k, n = len(ious), len(boxes)
    if len(gt_boxes) == 0:
        return torch.zeros((k, n), dtype=torch.long, device=boxes.device), torch.zeros(
            n, dtype=torch.long, device=boxes.device
        )
    best, matched = box_iou(gt_boxes, boxes).max(0)
    thresholds = best.new_tensor(ious)[:, None]
    labels = torch.where(best[None] >= thresholds, gt_labels[matched][None], torch.zeros_like(matched)[None])
    return labels, matched


class CascadeRoIHeads(nn.Module):
    """The stages of `HeadsConfig` on RoI features (the FPN's or crops'); ``forward(features,
    proposals, image_sizes, targets)`` returns the losses (training; ``targets``: list of ``{"boxes", "labels"}`` and
    optionally ``"convention"``, the index of the image's box regressor) or detections
    (inference: list of ``{"boxes", "scores", "labels", "proposal"}``)."""

    def __init__(self, cfg: HeadsConfig, roi_features: nn.Module | None = None, feature_size: int = 0) -> None:
        """``roi_features``: what turns boxes into features (called like `MultiScaleRoIAlign`;
        default: RoIAlign on the FPN levels ``cfg.featmap_names``), with ``feature_size`` values
        per box (default: ``in_channels * roi_size**2``)."""
        super().__init__()
        self.cfg = cfg
        if roi_features is None:
            roi_features = MultiScaleRoIAlign(list(cfg.featmap_names), cfg.roi_size, sampling_ratio=2)
            feature_size = cfg.in_channels * cfg.roi_size**2
        self.roi_features, self.feature_size = roi_features, feature_size
        self.heads = nn.ModuleList(
            StageHead(feature_size, cfg.representation, cfg.num_classes, len(s.ious), cfg.conventions)
            for s in cfg.stages
        )
        self.sampler = BalancedPositiveNegativeSampler(cfg.rois_per_image, cfg.positive_fraction)
        self.convention = 0  # the box convention of the boxes `detect` returns (a regressor's index)

    def forward(
        self,
        features: dict[str, Tensor],
        proposals: list[Tensor],
        image_sizes: list[tuple[int, int]],
        targets: list[dict[str, Tensor]] | None = None,
        prior_scores: list[Tensor] | None = None,
    ):
        if self.training:
            if targets is None:
                raise ValueError("training needs targets")
            return self.losses(features, proposals, image_sizes, targets)
        return self.detect(features, proposals, image_sizes, prior_scores)

    # -- training ------------------------------------------------------------------------------
    def _sample(self, stage: StageConfig, boxes: list[Tensor], targets: list[dict[str, Tensor]]):
        """Per image: the ground truth added to ``boxes``, labels per classifier, matched objects,
        then a balanced sample. Returns sampled boxes, labels ``(K, R)``, regression targets of
        their matched objects and which sampled boxes are ground-truth copies, per image."""
        labels_k = [
            match_labels(torch.cat([b, t["boxes"]]), t["boxes"], t["labels"], stage.ious)
            for b, t in zip(boxes, targets)
        ]
        pos, neg = self.sampler([lab[0] for lab, _ in labels_k])
        out = []
        for b, t, (labels, matched), p, q in zip(boxes, targets, labels_k, pos, neg):
            all_boxes = torch.cat([b, t["boxes"]])
            keep = torch.nonzero(p | q).squeeze(1)
            is_gt = keep >= len(b)
            gt = t["boxes"][matched[keep]] if len(t["boxes"]) else all_boxes[keep]
            out.append((all_boxes[keep], labels[:, keep], gt, is_gt))
        return out

    def _stage_loss(
        self, stage: StageConfig, logits: list[Tensor], deltas: Tensor, labels: Tensor, rois: Tensor, gt: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Cross-entropy of every classifier (summed, the integral loss's form) and smooth-L1 on the
        foreground of the first, normalised by the sample count, times the stage's loss weight."""
        cls = cast(Tensor, sum(F.cross_entropy(lg, lab) for lg, lab in zip(logits, labels)))  # >= 1 classifier
        fg = labels[0] > 0
        if bool(fg.any()):
            target = encode_deltas(rois[fg], gt[fg], stage.std)
            box = F.smooth_l1_loss(deltas[fg], target, beta=1.0 / 9, reduction="sum") / max(1, len(rois))
        else:
            box = deltas.sum() * 0.0
        return cls * stage.loss_weight, box * stage.loss_weight

    def losses(
        self,
        features: dict[str, Tensor],
        proposals: list[Tensor],
        image_sizes: list[tuple[int, int]],
        targets: list[dict[str, Tensor]],
    ) -> dict[str, Tensor]:
        out: dict[str, Tensor] = {}
        boxes = [p.detach() for p in proposals]
        for t, (stage, head) in enumerate(zip(self.cfg.stages, self.heads)):
            sampled = self._sample(stage, boxes, targets)
            rois = [s[0] for s in sampled]
            logits, deltas = head(self.roi_features(features, rois, image_sizes))
            deltas = pick_convention(deltas, self._conventions(rois, targets))
            labels = torch.cat([s[1] for s in sampled], 1)
            cls, box = self._stage_loss(
                stage, logits, deltas, labels, torch.cat(rois), torch.cat([s[2] for s in sampled])
            )
            out[f"loss_cls_stage{t + 1}"], out[f"loss_box_stage{t + 1}"] = cls, box
            refined = decode_deltas(torch.cat(rois), deltas.detach(), stage.std).split([len(r) for r in rois])
            boxes = [clip_boxes_to_image(r[~s[3]], size) for r, s, size in zip(refined, sampled, image_sizes)]
        return out

    def _conventions(self, rois: list[Tensor], targets: list[dict[str, Tensor]]) -> Tensor:
        """Each sampled box's regressor: its image's ``target["convention"]`` (0 without one)."""
        index = [int(t.get("convention", torch.zeros(()))) for t in targets]
        if max(index, default=0) >= self.cfg.conventions:
            raise ValueError(f"a target's convention {max(index)} is beyond the {self.cfg.conventions} regressors")
        return torch.cat([torch.full((len(r),), i, dtype=torch.long, device=r.device) for r, i in zip(rois, index)])

    # -- inference -----------------------------------------------------------------------------
    def _steps(self) -> list[int]:
        """Which stage runs at each inference step (iterative BBox repeats the stages)."""
        return list(range(len(self.cfg.stages))) * self.cfg.test_iterations

    def ensemble_probabilities(self, roi_features: Tensor) -> Tensor:
        """The average softmax of every classifier of every stage on the same RoI features
        ``(R, num_classes + 1)``."""
        probs = [F.softmax(lg, -1) for head in self.heads for lg in head(roi_features)[0]]
        return torch.stack(probs).mean(0)

    def detect(
        self,
        features: dict[str, Tensor],
        proposals: list[Tensor],
        image_sizes: list[tuple[int, int]],
        prior_scores: list[Tensor] | None = None,
    ) -> list[dict[str, Tensor]]:
        """Detections per image; ``prior_scores``: each proposal's score from the proposal source,
        blended into the heads' by ``cfg.prior_weight`` (a weighted geometric mean)."""
        counts = [len(p) for p in proposals]
        boxes = torch.cat(proposals)
        steps = self._steps()
        for i, t in enumerate(steps):
            rois = list(boxes.split(counts))
            roi_features = self.roi_features(features, rois, image_sizes)
            _, deltas = self.heads[t](roi_features)
            deltas = pick_convention(deltas, self.convention)
            if i == len(steps) - 1:
                probs = self.ensemble_probabilities(roi_features)
            refined = decode_deltas(boxes, deltas, self.cfg.stages[t].std).split(counts)
            boxes = torch.cat([clip_boxes_to_image(r, size) for r, size in zip(refined, image_sizes)])
        probs = self._with_priors(probs, prior_scores)
        return [self._postprocess(b, p) for b, p in zip(boxes.split(counts), probs.split(counts))]

    def _with_priors(self, probs: Tensor, prior_scores: list[Tensor] | None) -> Tensor:
        """Object-class probabilities ``p`` of ``probs`` as ``p^(1 - w) * s^w`` (``w``: ``prior_weight``)."""
        w = self.cfg.prior_weight
        if prior_scores is None or w == 0.0:
            return probs
        prior = torch.cat(prior_scores).clamp_min(1e-6)[:, None]
        blended = probs[:, 1:].clamp_min(1e-6) ** (1.0 - w) * prior**w
        return torch.cat([probs[:, :1], blended], 1)

    def _postprocess(self, boxes: Tensor, probs: Tensor) -> dict[str, Tensor]:
        """Class-agnostic boxes and per-class scores -> thresholded, class-wise NMS, best first;
        ``"proposal"``: the index of the input box each detection refines."""
        num_classes = probs.shape[1] - 1
        found = {
            "boxes": boxes.repeat_interleave(num_classes, 0),
            "scores": probs[:, 1:].reshape(-1),
            "labels": torch.arange(1, num_classes + 1, device=probs.device).repeat(len(boxes)),
            "proposal": torch.arange(len(boxes), device=probs.device).repeat_interleave(num_classes),
        }
        found = {k: v[found["scores"] > self.cfg.score_thresh] for k, v in found.items()}
        found = {k: v[remove_small_boxes(found["boxes"], self.cfg.min_box_size)] for k, v in found.items()}
        keep = batched_nms(found["boxes"], found["scores"], found["labels"], self.cfg.nms_thresh)
        return {k: v[keep[: self.cfg.detections_per_image]] for k, v in found.items()}
