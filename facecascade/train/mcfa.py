"""Training MCFA: the three sub-networks as one, on masked multi-task losses (Eq. 1-5), with
dynamic attribute weights (Eq. 4, 6-7).

**The degenerate solution, and what we do instead.** Read literally, Eq. 4-6 minimise
``mu^T l`` over ``mu = softmax(W x + b)`` jointly with the network: the minimum puts all weight
on the attribute with the smallest loss (the easiest), the opposite of what the paper says it
wants ("the more difficult facial attributes will be assigned with larger loss weights"). Here
the weighting layer is trained to *predict* the difficulty instead: its target, per face, is the
share of each attribute in that face's attribute loss, ``l / sum(l)`` (detached), fitted with a
cross-entropy, and the attribute loss uses the predicted weights without letting gradients
through them: ``L_attr = d * mu.detach()^T l``. For uniform weights that is the sum of the d
binary losses, the usual multi-label loss: each attribute weighs as much as face classification.
(Eq. 4's own scale, ``mu^T l`` = the mean, left the attributes 1/d of every other task; a first
run with it barely learned them: 84.2 % mean accuracy, most attributes at their majority class.)
Hard attributes (high loss) get weights above ``1/d``, easy ones below, and ``mu`` still comes
from a layer and a softmax on the last shared features as in Eq. 6. ``weighting="equal"``
(``mu = 1/d``) is the baseline; the log tracks the
weights' entropy and their correlation with each attribute's error rate.

Sample types feed only their losses: faces all four tasks, non-faces face classification only;
a variant without a task (``tasks``) drops its loss and, without ``"fd"``, the non-faces.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm import tqdm

from ..attributes.crops import attribute_transforms
from ..distributed.ddp import Part, barrier, data_parallel
from ..models.checkpoints import config_fields
from ..models.mcfa import MCFANet, MCFAOutput
from .mcfa_data import FaceSet, crop_targets, face_batch, negative_batch
from .photometric import Photometric
from .trainer import CsvLog, _checkpoint, _resume, log_training, log_validation, optimizer_step

TASKS = ("fd", "fll", "fac")  # face detection (classification + box), landmarks, attributes
VARIANTS = {"mcfa": ("fd", "fll", "fac"), "fac": ("fac",), "fll+fac": ("fll", "fac"), "fd+fac": ("fd", "fac")}
# `MCFATrainConfig` augmentation fields of `facecascade train mcfa --augment`
AUGMENTS: dict[str, dict[str, Any]] = {
    "standard": {"shift": 0.08, "scale": 0.1, "rotate": 0.0, "colour": 0.0, "blur": 0.0, "occlude": 0.0},
    "strong": {"shift": 0.12, "scale": 0.15, "rotate": 10.0, "colour": 0.5, "blur": 0.2, "occlude": 0.25},
}


@dataclass(frozen=True)
class MCFATrainConfig:
    tasks: tuple[str, ...] = TASKS
    weighting: str = "dynamic"  # "dynamic" (learned, see module doc) or "equal"
    epochs: int = 12
    batch_size: int = 64  # faces per step
    negatives: int = 16  # non-faces per step (with "fd")
    lr: float = 2e-3  # AdamW, cosine decay to 0
    weight_decay: float = 5e-4
    box_weight: float = 1.0  # weights of the Euclidean box and landmark losses (crop
    landmark_weight: float = 1.0  # sides); x1 beat x5 on our val split (88.27 vs 87.68 %)
    shift: float = 0.08  # random crop shift, in box sides
    scale: float = 0.1  # random crop scale, 1 +- this
    mirror: bool = True
    rotate: float = 0.0  # random crop rotation, +- degrees
    colour: float = 0.0  # probability of a colour jitter (`facecascade.train.photometric.Photometric`)
    blur: float = 0.0  # probability of a 3 x 3 or 5 x 5 blur
    occlude: float = 0.0  # probability of a flat rectangle over 15-40 % of the crop side
    label_smoothing: float = 0.0  # attribute targets 0 / 1 -> eps / 2, 1 - eps / 2
    seed: int = 0
    threads: int = 0  # torch threads; 0 = leave as is
    micro_batches: int = 0  # parts of each batch over the processes (0: one each; `facecascade.distributed.ddp`)

    def __post_init__(self) -> None:
        unknown = set(self.tasks) - set(TASKS)
        if unknown or "fac" not in self.tasks:
            raise ValueError(f"tasks must include 'fac' and come from {TASKS}, got {self.tasks}")
        if self.weighting not in ("dynamic", "equal"):
            raise ValueError(f"weighting must be 'dynamic' or 'equal', got {self.weighting!r}")
        if not 0.0 <= self.label_smoothing < 0.5:
            raise ValueError(f"label_smoothing must be in [0, 0.5), got {self.label_smoothing}")

    @property
    def photometric(self) -> Photometric | None:
        """The pixel jitter of training crops, or None when there is none."""
        jitter = Photometric(colour=self.colour, blur=self.blur, occlusion=self.occlude)
        return jitter if jitter != Photometric() else None


class MCFALoss(NamedTuple):
    total: Tensor
    cls: Tensor
    box: Tensor
    landmark: Tensor
    attr: Tensor
    weight_fit: Tensor


def attribute_loss(logits: Tensor, labels: Tensor, weights: Tensor, weighting: str) -> tuple[Tensor, Tensor]:
    """``(L_attr, L_weight_fit)`` for faces' attribute ``logits (F, d)``, ``labels (F, d)`` in
    {0, 1} and the predicted weights ``(F, d)`` (rows sum to 1); see the module doc."""
    per = F.binary_cross_entropy_with_logits(logits, labels, reduction="none")  # (F, d)
    if weighting == "equal" or len(per) == 0:
        return per.sum(dim=1).mean() if len(per) else logits.sum() * 0, weights.sum() * 0
    d = per.shape[1]
    share = per.detach() / per.detach().sum(dim=1, keepdim=True).clamp_min(1e-12)
    fit = -(share * torch.log(weights.clamp_min(1e-12))).sum(dim=1).mean()
    return d * (weights.detach() * per).sum(dim=1).mean(), fit


def smoothed(labels: Tensor, eps: float) -> Tensor:
    """Label smoothing of binary targets: 0 -> ``eps / 2``, 1 -> ``1 - eps / 2``."""
    return labels * (1 - eps) + eps / 2 if eps else labels


def subnet_loss(
    out: MCFAOutput, is_face: Tensor, boxes: Tensor, points: Tensor, labels: Tensor, cfg: MCFATrainConfig
) -> MCFALoss:
    """One sub-network's masked multi-task loss: ``is_face (B,)`` bool over the whole batch; the
    targets ``boxes (F, 4)``, ``points (F, 5, 2)``, ``labels (F, d)`` cover its faces."""
    zero = out.logits.sum() * 0
    cls = F.cross_entropy(out.logits, is_face.long()) if "fd" in cfg.tasks else zero
    box = ((out.box[is_face] - boxes) ** 2).sum(1).mean() * cfg.box_weight if "fd" in cfg.tasks else zero
    landmark = (
        ((out.landmarks[is_face] - points) ** 2).sum((1, 2)).mean() * cfg.landmark_weight
        if "fll" in cfg.tasks
        else zero
    )
    targets = smoothed(labels, cfg.label_smoothing)
    attr, fit = attribute_loss(out.attributes[is_face], targets, out.weights[is_face], cfg.weighting)
    return MCFALoss(cls + box + landmark + attr + fit, cls, box, landmark, attr, fit)


def mcfa_loss(
    outputs: list[MCFAOutput], is_face: Tensor, boxes: Tensor, points: Tensor, labels: Tensor, *, cfg: MCFATrainConfig
) -> MCFALoss:
    """Eq. 5: the sum of the three sub-networks' losses (`subnet_loss` takes the same targets)."""
    parts = [subnet_loss(out, is_face, boxes, points, labels, cfg=cfg) for out in outputs]
    return MCFALoss._make(sum(p[k] for p in parts) for k in range(len(MCFALoss._fields)))


def train_batch(
    faces: FaceSet,
    negatives: np.ndarray | None,
    face_index: np.ndarray,
    cfg: MCFATrainConfig,
    size: int,
    rng: np.random.Generator,
) -> tuple[Tensor, ...]:
    """``(x, is_face, boxes, points, labels)``: augmented faces, then non-faces when "fd" is on."""
    x, boxes, points, labels = face_batch(
        faces, face_index, size, rng, cfg.shift, cfg.scale, cfg.mirror, cfg.rotate, cfg.photometric
    )
    is_face = torch.ones(len(x), dtype=torch.bool)
    if "fd" in cfg.tasks and negatives is not None and cfg.negatives:
        neg = negative_batch(negatives, rng.integers(0, len(negatives), cfg.negatives), rng)
        x = torch.cat([x, neg])
        is_face = torch.cat([is_face, torch.zeros(len(neg), dtype=torch.bool)])
    return x, is_face, boxes, points, labels


@torch.no_grad()
def predict_faces(net: MCFANet, faces: FaceSet, size: int, batch: int = 256) -> list[MCFAOutput]:
    """Each sub-network's outputs for every face of ``faces`` (centred crops, no augmentation)."""
    net.eval()
    parts = [
        net(face_batch(faces, np.arange(i, min(i + batch, len(faces))), size)[0]) for i in range(0, len(faces), batch)
    ]
    return [MCFAOutput(*(torch.cat([p[j][k] for p in parts]) for k in range(5))) for j in range(3)]


def attribute_accuracy(logits: Tensor, labels: Tensor) -> Tensor:
    """Per-attribute accuracy ``(d,)`` of ``logits > 0`` against ``labels`` in {0, 1}."""
    return ((logits > 0).float() == labels).float().mean(dim=0)


def evaluate(
    net: MCFANet, faces: FaceSet, negatives: np.ndarray | None, size: int, outs: list[MCFAOutput] | None = None
) -> dict[str, float]:
    """Mean attribute accuracy of L_Net (and of S_Net, M_Net), face/non-face accuracy, landmark
    error (crop sides), and what the dynamic weights do (entropy, correlation with error).
    ``outs``: `predict_faces` of ``faces`` when the caller has them already."""
    outs = predict_faces(net, faces, size) if outs is None else outs
    labels = torch.from_numpy(faces.attributes)
    acc = [attribute_accuracy(o.attributes, labels) for o in outs]
    everyone = np.arange(len(faces))
    points = torch.from_numpy(crop_targets(faces, everyone, attribute_transforms(faces.boxes, size), size)[1])
    metrics = {
        "acc": float(acc[2].mean()),
        "acc_s": float(acc[0].mean()),
        "acc_m": float(acc[1].mean()),
        "landmark_err": float((outs[2].landmarks - points).norm(dim=2).mean()),
    }
    face_ok = (outs[2].logits.argmax(1) == 1).float()
    if negatives is not None and len(negatives):
        net.eval()
        with torch.no_grad():
            neg = torch.cat(
                [
                    net(negative_batch(negatives, np.arange(i, min(i + 256, len(negatives)))))[2].logits
                    for i in range(0, len(negatives), 256)
                ]
            )
        face_ok = torch.cat([face_ok, (neg.argmax(1) == 0).float()])
    metrics["face_acc"] = float(face_ok.mean())
    mu = outs[2].weights.mean(0)
    metrics["mu_entropy"] = float(-(mu * mu.log()).sum() / math.log(len(mu)))  # 1 = uniform
    metrics["mu_err_corr"] = float(np.corrcoef(mu.numpy(), (1 - acc[2]).numpy())[0, 1])
    return metrics


FIELDS = (
    "total",
    "cls",
    "box",
    "landmark",
    "attr",
    "weight_fit",
    "acc",
    "acc_s",
    "acc_m",
    "landmark_err",
    "face_acc",
    "mu_entropy",
    "mu_err_corr",
)


def fit_mcfa(
    net: MCFANet,
    train: FaceSet,
    val: FaceSet,
    neg_train: np.ndarray | None,
    neg_val: np.ndarray | None,
    cfg: MCFATrainConfig,
    out: Path,
    quiet: bool = False,
) -> MCFANet:
    """Train ``net``; checkpoint each epoch to ``out/last.pt`` and resume from it; log to
    ``out/log.csv`` (training rows every 20 steps, one validation row per epoch)."""
    out.mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    size = net.cfg.sizes[2]
    steps = max(1, len(train) // cfg.batch_size)
    optimizer = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * min(1.0, s / (cfg.epochs * steps))))
    )
    start = _resume(out / "last.pt", net, optimizer, scheduler, rng)
    parallel = data_parallel(net, cfg.micro_batches)
    world = parallel.world
    log, began = (CsvLog(out / "log.csv", FIELDS) if world.main else None), time.time()
    negatives = [len(c) for c in np.array_split(np.arange(cfg.negatives), parallel.micro_batches)]

    def loss_of(model: nn.Module, part: Part) -> MCFALoss:
        part_cfg = replace(cfg, negatives=negatives[part.number])
        x, is_face, boxes, points, labels = train_batch(train, neg_train, part.index, part_cfg, size, part.rng)
        return mcfa_loss(model(x), is_face, boxes, points, labels, cfg=cfg)

    for epoch in range(start, cfg.epochs):
        net.train()
        order = rng.permutation(len(train))
        bar = tqdm(
            range(steps),
            desc=f"{out.name} epoch {epoch + 1}/{cfg.epochs}",
            disable=quiet or not world.main,
            leave=False,
        )
        for step in bar:
            index = order[step * cfg.batch_size : (step + 1) * cfg.batch_size]
            terms = optimizer_step(parallel, optimizer, scheduler, index, loss_of, cfg.seed, epoch * steps + step)
            if step % 20 == 0:
                log_training(log, parallel, terms, epoch, step, scheduler, began)
        if log is not None:
            log_validation(log, out.name, epoch + 1, steps, began, evaluate(net, val, neg_val, size), quiet)
            _checkpoint(out / "last.pt", net, optimizer, scheduler, epoch + 1, rng)
    barrier()
    net.eval()
    return net


def config_dict(cfg: MCFATrainConfig) -> dict:
    return config_fields(cfg)
