"""Training the two-stage detectors (`facecascade.models.cascade_rcnn`) on `FaceRecord` lists.

Iteration-based SGD (momentum 0.9, weight decay 1e-4, linear warm-up, learning rate x0.1 at 75 %
and 90 % of each phase), horizontal flips (the paper's only augmentation), gradient norm clipped at
10, a CSV log, and a checkpoint every ``checkpoint_every`` steps that a rerun resumes from.

RPN training (FaceCraft §5, §6.6): ``rpn="joint"`` trains backbone, RPN and RoI heads end to end
(the default); ``rpn="separate"`` spends the first half of the iterations on backbone + RPN alone,
then freezes them and trains the RoI heads on their proposals for the second half;
``rpn="frozen"`` is that second phase alone, on a backbone and RPN loaded from another detector
(`load_backbone_and_rpn`): the check that tells whether the separate row's low AP comes from the
heads phase or from a backbone trained for objectness only (docs/models/cascade-rcnn.md).

A detector without an RPN (``RCNNConfig.proposals == "mtcnn"``) trains on the MTCNN cascade's
boxes of each image (``proposals``: `facecascade.train.rcnn_proposals.cached_proposals`) and
``jitter_copies`` boxes drawn around each of them and each ground-truth face. Each image's target
names the box regressor of its source (``"convention"``) when the detector has one per source.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from ..data.records import FaceRecord
from ..distributed.ddp import Part, barrier, current_world, data_parallel
from ..io import load_image
from ..models.cascade_rcnn import CascadeRCNN, image_input
from ..ops.boxes import mirror_boxes
from .rcnn_proposals import jittered
from .trainer import CsvLog

Proposals = dict[str, tuple[np.ndarray, np.ndarray]]
RPN_TRAINING = ("joint", "separate", "frozen")

LOSS_FIELDS = (
    "total",
    "loss_objectness",
    "loss_rpn_box_reg",
    "loss_cls_stage1",
    "loss_box_stage1",
    "loss_cls_stage2",
    "loss_box_stage2",
    "loss_cls_stage3",
    "loss_box_stage3",
)


@dataclass(frozen=True)
class RCNNTrainConfig:
    iterations: int = 4000
    batch_size: int = 2  # images per step
    lr: float = 0.02
    momentum: float = 0.9
    weight_decay: float = 1e-4
    warmup: int = 200  # steps of linear warm-up at the start of each phase
    decay_at: tuple[float, ...] = (0.75, 0.9)  # fractions of each phase where lr drops x0.1
    flip: bool = True
    rpn: str = "joint"  # "joint", "separate" or "frozen" (module docstring)
    min_box: float = 4.0  # boxes narrower or shorter than this (pixels) are dropped
    checkpoint_every: int = 100
    log_every: int = 20
    seed: int = 0
    threads: int = 0  # torch threads; 0 = leave as is
    micro_batches: int = 0  # parts of each batch over the processes (0: one each; `facecascade.distributed.ddp`)
    jitter_copies: int = 8  # given proposals: boxes drawn around each proposal and face
    jitter_spread: float = 0.25  # their largest shift and scale change, a fraction of the side

    def __post_init__(self) -> None:
        if self.rpn not in RPN_TRAINING:
            raise ValueError(f"rpn must be one of {', '.join(RPN_TRAINING)}, got {self.rpn!r}")
        if self.iterations < 1 or self.batch_size < 1:
            raise ValueError("iterations and batch_size must be >= 1")


def phases(cfg: RCNNTrainConfig) -> list[tuple[str, int, int]]:
    """``(parts, first step, end step)`` of each training phase."""
    if cfg.rpn == "joint":
        return [("all", 0, cfg.iterations)]
    if cfg.rpn == "frozen":
        return [("heads", 0, cfg.iterations)]
    half = cfg.iterations // 2
    return [("rpn", 0, half), ("heads", half, cfg.iterations)]


def learning_rate(step: int, start: int, end: int, cfg: RCNNTrainConfig) -> float:
    """Warm-up from lr/100, then steps of x0.1 at ``decay_at`` of the phase ``[start, end)``."""
    done = step - start
    if done < cfg.warmup:
        return cfg.lr * (0.01 + 0.99 * done / cfg.warmup)
    drops = sum(done >= f * (end - start) for f in cfg.decay_at)
    return cfg.lr * 0.1**drops


def detection_target(record: FaceRecord, min_box: float) -> dict[str, Tensor]:
    """``{"boxes", "labels"}`` of a record: ignored boxes and boxes under ``min_box`` pixels out."""
    boxes = record.boxes
    keep = ~record.ignore & (boxes[:, 2] - boxes[:, 0] >= min_box) & (boxes[:, 3] - boxes[:, 1] >= min_box)
    return {"boxes": torch.from_numpy(boxes[keep]).float(), "labels": torch.from_numpy(record.classes[keep])}


def flip_sample(image: Tensor, target: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
    """Mirror an image ``(3, H, W)`` and its boxes left-right."""
    return image.flip(-1), {**target, "boxes": mirror_boxes(target["boxes"], image.shape[-1])}


def load_sample(record: FaceRecord, cfg: RCNNTrainConfig, flip: bool) -> tuple[Tensor, dict[str, Tensor]]:
    image = image_input(load_image(record.image))
    target = detection_target(record, cfg.min_box)
    return flip_sample(image, target) if flip else (image, target)


def sample_proposals(
    boxes: np.ndarray, target: dict[str, Tensor], cfg: RCNNTrainConfig, rng: np.random.Generator
) -> Tensor:
    """An image's training proposals: its cascade ``boxes`` (already flipped with the image) and
    `jittered` copies of them and of its faces."""
    around = np.concatenate([boxes.astype(np.float32), target["boxes"].numpy()])
    return torch.from_numpy(np.concatenate([boxes, jittered(around, cfg.jitter_copies, cfg.jitter_spread, rng)]))


def load_with_proposals(
    model: CascadeRCNN, record: FaceRecord, cfg: RCNNTrainConfig, flip: bool, proposals: Proposals, rng
) -> tuple[Tensor, dict[str, Tensor], Tensor]:
    """`load_sample` with the image's training proposals and its source's box regressor."""
    image, target = load_sample(record, cfg, flip)
    boxes = proposals.get(str(record.image), (np.zeros((0, 4), np.float32),))[0]
    boxes = mirror_boxes(boxes, image.shape[-1]) if flip else boxes
    target["convention"] = torch.tensor(model.cfg.convention_index(record.source))
    return image, target, sample_proposals(boxes, target, cfg, rng)


def load_backbone_and_rpn(model: CascadeRCNN, other: CascadeRCNN) -> None:
    """Copy ``other``'s backbone and RPN into ``model`` (same architecture; the heads stay as they are)."""
    if model.backbone is None or model.rpn is None or other.backbone is None or other.rpn is None:
        raise ValueError("both detectors need a backbone and an RPN")
    model.backbone.load_state_dict(other.backbone.state_dict())
    model.rpn.load_state_dict(other.rpn.state_dict())


def _save_state(path: Path, model: CascadeRCNN, optimizer, parts: str, step: int, rng: np.random.Generator) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(
        {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "parts": parts,
            "step": step,
            "rng": rng.bit_generator.state,
            "torch_rng": torch.get_rng_state(),
        },
        tmp,
    )
    tmp.replace(path)


def _resume(path: Path, model: CascadeRCNN, rng: np.random.Generator) -> tuple[int, tuple[str, dict] | None]:
    """The step to continue from and ``(parts, optimizer state)`` of the checkpoint, if any."""
    if not path.is_file():
        return 0, None
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"])
    rng.bit_generator.state = state["rng"]
    torch.set_rng_state(state["torch_rng"])
    return int(state["step"]), (state["parts"], state["optimizer"])


def _optimizer(model: CascadeRCNN, parts: str, cfg: RCNNTrainConfig) -> torch.optim.SGD:
    return torch.optim.SGD(
        model.trainable_parameters(parts), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
    )


def train_rcnn(
    model: CascadeRCNN,
    records: Sequence[FaceRecord],
    cfg: RCNNTrainConfig,
    out: Path,
    quiet: bool = False,
    steps: int = 0,
    proposals: Proposals | None = None,
) -> Path:
    """Train ``model`` on ``records`` (records without any kept box are skipped); resumes from
    ``out/last.pt``; logs to ``out/log.csv``. ``steps > 0``: stop after that many steps in this
    call (a time-boxed session; a later call continues). ``proposals``: each image's cascade boxes
    for a detector without an RPN (see the module docstring). Returns the checkpoint path."""
    records = [r for r in records if len(detection_target(r, cfg.min_box)["boxes"])]
    if not records:
        raise ValueError("no training image has a box to learn from")
    if (proposals is None) != (model.rpn is not None):
        raise ValueError(f"proposals are given exactly when the detector has none (proposals={model.cfg.proposals!r})")
    if model.rpn is None and cfg.rpn != "joint":
        raise ValueError(f"rpn={cfg.rpn!r} needs an RPN; this detector has none (its proposals are given)")
    top = max(int(r.classes.max()) for r in records)
    if top > model.cfg.num_classes:
        raise ValueError(f"the records have class {top}, the model only {model.cfg.num_classes} classes")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    last = out / "last.pt"
    step, optimizer_state = _resume(last, model, rng)
    stop = min(cfg.iterations, step + steps) if steps > 0 else cfg.iterations
    world = current_world()
    log = CsvLog(out / "log.csv", LOSS_FIELDS) if world.main else None
    began, optimizer, current, parallel = time.time(), None, None, None
    model.train()
    bar = tqdm(total=cfg.iterations, initial=step, disable=quiet or not world.main, desc="train rcnn", unit="step")

    def loss_of(module: torch.nn.Module, part: Part) -> dict[str, Tensor]:
        """The detector's losses on a part's images: rows of (record, flip) of the global batch."""
        if proposals is None:
            images, targets = zip(*(load_sample(records[int(i)], cfg, bool(f)) for i, f in part.index))
            losses = module(list(images), list(targets), parts=current)
        else:
            rows = [(records[int(i)], bool(f)) for i, f in part.index]
            images, targets, boxes = zip(*(load_with_proposals(model, r, cfg, f, proposals, part.rng) for r, f in rows))
            losses = module(list(images), list(targets), parts=current, proposals=list(boxes))
        return {"total": sum(losses.values()), **losses}

    while step < stop:
        parts, start, end = next(p for p in phases(cfg) if p[1] <= step < p[2])
        if parts != current:  # a new phase trains other parameters: new optimiser and wrapper
            optimizer, current = _optimizer(model, parts, cfg), parts
            if optimizer_state is not None and optimizer_state[0] == parts:  # same phase: resume it
                optimizer.load_state_dict(optimizer_state[1])
            optimizer_state, parallel = None, data_parallel(model, cfg.micro_batches)
        assert optimizer is not None and parallel is not None  # built at the first step, where ``current`` is None
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, start, end, cfg)
        picks = rng.integers(0, len(records), cfg.batch_size)
        flips = rng.random(cfg.batch_size) < (0.5 if cfg.flip else 0.0)
        optimizer.zero_grad(set_to_none=True)
        values = parallel.mean_terms(parallel.backward(np.column_stack([picks, flips]), loss_of, cfg.seed, step))
        if not math.isfinite(values["total"]):
            raise FloatingPointError(f"non-finite loss at step {step}: {values}")
        torch.nn.utils.clip_grad_norm_(model.trainable_parameters(parts), 10.0)
        optimizer.step()
        step += 1
        bar.update(1)
        if log is not None and (step % cfg.log_every == 0 or step == cfg.iterations):
            rounded = {k: round(v, 5) for k, v in values.items()}
            log.write(
                epoch=parts, step=step, split="train", lr=group["lr"], seconds=round(time.time() - began, 1), **rounded
            )
        if world.main and (step % cfg.checkpoint_every == 0 or step in (stop, end)):
            _save_state(last, model, optimizer, parts, step, rng)
    barrier()
    bar.close()
    return last
