"""Joint training of the 12/24/48 cascade as one network (FaceCraft, Qin et al., §4.1-4.2).

The loss is ``L = λ1 L_x12 + λ2 L_x24 + λ3 L_x48`` over 48x48 training windows; each branch's
``L`` is MTCNN's multi-task loss (`facecascade.train.losses.mtcnn_loss`: face/non-face with online
hard sample mining, box and landmark regression, each on its sample kinds). **Threshold control**
(`gate_masks`): a window reaches the x24 loss only if the x12 branch gives it a face probability
above ``gates[0]`` (paper: 0.1), and the x48 loss only if it also passes x24 at ``gates[1]``
(paper: 0.003), so the later branches train on the windows the earlier ones let through, as in a
cascade, but with the scores of the network being trained.

Box-regression residuals are z-scored per coordinate, as the paper normalises its targets to unit
variance (`RegressionScale`); the mean cancels in a residual, and the result is multiplied by the
RMS of the standard deviations so that MTCNN's task weights keep their balance.

The network (`facecascade.models.joint.JointCascade`) starts from separately trained stages, as
the paper does; with ``share=False`` the same loop trains the three stages separately (no shared
features, no gradient between branches): the baseline of the joint-vs-separate comparison.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, cast

import numpy as np
import torch
from torch import Tensor, nn

from ..models.joint import JointCascade, JointOutputs
from ..models.mtcnn import StageOutput
from .losses import SampleKind, TaskWeights, mtcnn_loss
from .samples import SampleArrays
from .trainer import TrainConfig, evaluation_batches, steps_per_epoch

# The stage alphas of the MTCNN paper: 1/0.5/0.5 for P-Net and R-Net, 1/0.5/1 for O-Net.
BRANCH_TASKS = (TaskWeights(1.0, 0.5, 0.5), TaskWeights(1.0, 0.5, 0.5), TaskWeights(1.0, 0.5, 1.0))


@dataclass(frozen=True)
class JointConfig:
    """Joint-training settings; the shared loop settings are in ``train``."""

    train: TrainConfig = TrainConfig(
        epochs=8, batch_size=128, lr=1e-3, weight_decay=5e-4, samples_per_epoch=60_000, low_res=0.5
    )  # as O-Net's recipe
    gates: tuple[float, float] = (0.1, 0.003)  # threshold-control layers (paper §4.2)
    branch_weights: tuple[float, float, float] = (1.0, 1.0, 1.0)  # λ1, λ2, λ3
    momentum: float = 0.9  # SGD, as the paper
    lr_drop: float = 2 / 3  # share of the steps at lr, then lr / 10
    share: bool = True  # False: the separate-training baseline
    landmarks: bool = True  # False: no landmark task (ablation)
    normalize_targets: bool = True


def gate_masks(logits12: Tensor, logits24: Tensor, gates: tuple[float, float]) -> tuple[Tensor, Tensor]:
    """Which windows reach the x24 and x48 losses: ``p12 > gates[0]``, and also ``p24 > gates[1]``.

    The masks are decisions, not functions to differentiate: computed without gradient.
    """
    with torch.no_grad():
        pass24 = logits12.softmax(1)[:, 1] > gates[0]
        pass48 = pass24 & (logits24.softmax(1)[:, 1] > gates[1])
    return pass24, pass48


def pnet_box_targets(offsets: Tensor) -> Tensor:
    """Stage-2/3 box targets (relative to a square window ``[x0, x0 + S)``) in P-Net's coding.

    P-Net's calibration starts from ``(x0 + S/12, y0 + S/12, x0 + S, y0 + S)`` with exclusive sizes
    (`facecascade.train.samples.pnet_reference_boxes`), stages 2 and 3 from the window with
    inclusive sizes ``S + 1``. Ignoring that one pixel (a ``1/S`` relative error), an offset of the
    top-left corner becomes ``(t - 1/12) * 12/11`` and of the bottom-right ``t * 12/11``.
    """
    return (offsets - offsets.new_tensor([1.0, 1.0, 0.0, 0.0]) / 12.0) * (12.0 / 11.0)


def pnet_landmark_targets(points: Tensor) -> Tensor:
    """Landmark positions relative to the window, relative to P-Net's box instead (as
    `pnet_box_targets`, up to one pixel): ``(r - 1/12) * 12/11``."""
    return (points - 1.0 / 12.0) * (12.0 / 11.0)


class RegressionScale(NamedTuple):
    """Per-coordinate weights of box residuals: ``rms(std) / std`` (unit variance, same scale)."""

    weight: Tensor  # (4,)

    @classmethod
    def fit(cls, samples: SampleArrays, limit: int = 200_000) -> RegressionScale:
        """From the box targets of the positives and part faces of ``samples``."""
        kinds = np.asarray(samples.kinds)
        rows = np.flatnonzero((kinds == SampleKind.POSITIVE) | (kinds == SampleKind.PART))[:limit]
        boxes = np.asarray(samples.boxes[rows])
        boxes = boxes[np.isfinite(boxes).all(1)]  # NaN: no box target (`SamplingConfig.box_sources`)
        if len(boxes) < 2:
            return cls.identity()
        std = torch.from_numpy(boxes).double().std(0).clamp_min(1e-6)
        return cls((std.pow(2).mean().sqrt() / std).float())

    @classmethod
    def identity(cls) -> RegressionScale:
        return cls(torch.ones(4))


class JointLossParts(NamedTuple):
    total: Tensor
    x12: Tensor
    x24: Tensor
    x48: Tensor
    pass24: Tensor  # share of the batch reaching the x24 loss
    pass48: Tensor  # ... and the x48 loss


def _select(out: StageOutput, mask: Tensor) -> StageOutput:
    return StageOutput(out.logits[mask], out.offsets[mask], None if out.landmarks is None else out.landmarks[mask])


def branch_loss(
    out: StageOutput, kinds: Tensor, boxes: Tensor, points: Tensor, weights: TaskWeights, scale: Tensor, keep: float
) -> Tensor:
    """MTCNN's loss of one branch, box residuals weighted per coordinate by ``scale``."""
    return mtcnn_loss(out.logits, out.offsets * scale, out.landmarks, kinds, boxes * scale, points, weights, keep).total


def branch_tasks(cfg: JointConfig) -> tuple[TaskWeights, ...]:
    """The branches' task weights (`BRANCH_TASKS`; landmark weight 0 without the landmark task)."""
    return BRANCH_TASKS if cfg.landmarks else tuple(t._replace(landmark=0.0) for t in BRANCH_TASKS)


def joint_loss(
    out: JointOutputs, batch: tuple[Tensor, ...], cfg: JointConfig, scale: RegressionScale, keep: float
) -> JointLossParts:
    """``λ1 L_x12 + λ2 L_x24 + λ3 L_x48``, the later branches on the windows their gates pass."""
    _, kinds, boxes, points = batch
    pass24, pass48 = gate_masks(out.x12.logits, out.x24.logits, cfg.gates)
    w = scale.weight.to(boxes.device)
    tasks12, tasks24, tasks48 = branch_tasks(cfg)
    losses = [branch_loss(out.x12, kinds, pnet_box_targets(boxes), pnet_landmark_targets(points), tasks12, w, keep)]
    for branch, mask, tasks in ((out.x24, pass24, tasks24), (out.x48, pass48, tasks48)):
        losses.append(branch_loss(_select(branch, mask), kinds[mask], boxes[mask], points[mask], tasks, w, keep))
    total = cast(Tensor, sum(lam * loss for lam, loss in zip(cfg.branch_weights, losses)))  # three terms
    x12, x24, x48 = (loss.detach() for loss in losses)
    return JointLossParts(total, x12, x24, x48, pass24.float().mean(), pass48.float().mean())


class JointTask:
    """The `facecascade.train.trainer.Task` of the joint cascade."""

    fields: tuple[str, ...] = (
        "total",
        "x12",
        "x24",
        "x48",
        "pass24",
        "pass48",
        "acc12",
        "acc24",
        "acc48",
        "face_recall",
    )

    def __init__(self, cfg: JointConfig, scale: RegressionScale, device: torch.device):
        self.cfg, self.scale, self.device = cfg, scale, device

    def loss(self, net: nn.Module, batch: tuple[Tensor, ...], keep: float) -> JointLossParts:
        return joint_loss(net(batch[0]), batch, self.cfg, self.scale, keep)

    @torch.no_grad()
    def evaluate(self, net: nn.Module, samples: SampleArrays, limit: int) -> dict[str, float]:
        """Mean branch losses (no hard-sample mining), each branch's face/non-face accuracy on the
        windows it is gated to, and the share of positives the whole cascade calls faces."""
        net.eval()
        sums, batches = np.zeros(6), 0
        hits, counts = np.zeros(4), np.zeros(4)
        for batch in evaluation_batches(samples, limit, self.device):
            out = net(batch[0])
            sums += [float(v) for v in joint_loss(out, batch, self.cfg, self.scale, keep=1.0)]
            batches += 1
            h, c = _gated_accuracy(out, batch[1], self.cfg.gates)
            hits += h
            counts += c
        net.train()
        means = sums / max(batches, 1)
        metrics = dict(zip(("total", "x12", "x24", "x48", "pass24", "pass48"), means))
        rates = hits / np.maximum(counts, 1)
        metrics.update(zip(("acc12", "acc24", "acc48", "face_recall"), rates))
        return {k: float(v) for k, v in metrics.items()}


def _gated_accuracy(out: JointOutputs, kinds: Tensor, gates: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Correct and counted face/non-face calls per branch (on its gated windows), and positives
    passing all three branches (x48 at 0.5)."""
    pass24, pass48 = gate_masks(out.x12.logits, out.x24.logits, gates)
    cls = (kinds == SampleKind.NEGATIVE) | (kinds == SampleKind.POSITIVE)
    face = kinds == SampleKind.POSITIVE
    hits, counts = [], []
    for branch, mask in ((out.x12, torch.ones_like(cls)), (out.x24, pass24), (out.x48, pass48)):
        m = mask & cls
        hits.append(int(((branch.logits.argmax(1) == 1) == face)[m].sum()))
        counts.append(int(m.sum()))
    hits.append(int((pass48 & (out.x48.logits.argmax(1) == 1) & face).sum()))
    counts.append(int(face.sum()))
    return np.array(hits, float), np.array(counts, float)


def make_optimizer(net: JointCascade, cfg: JointConfig) -> tuple[torch.optim.Optimizer, object]:
    """SGD with momentum and weight decay (paper: 0.9, 5e-4) and a step decay of the learning
    rate to a tenth after ``lr_drop`` of the steps (paper: 0.001, then 0.0001)."""
    t = cfg.train
    optimizer = torch.optim.SGD(net.parameters(), lr=t.lr, momentum=cfg.momentum, weight_decay=t.weight_decay)
    drop_at = int(cfg.lr_drop * t.epochs * steps_per_epoch(t))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0 if s < drop_at else 0.1)
    return optimizer, scheduler
