"""The training loop: ratio-balanced epochs, checkpoints, resume, a CSV log; for one cascade stage
(`train_stage`) or any model with a `Task` (the joint cascade, `facecascade.train.joint`)."""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import numpy as np
import torch
from torch import Tensor, nn
from tqdm import tqdm

from ..detect.mtcnn import normalize_pixels
from ..distributed.ddp import DataParallel, Part, Terms, barrier, current_world, data_parallel
from .augment import low_resolution
from .losses import LossParts, SampleKind, TaskWeights, mtcnn_loss
from .samples import SampleArrays


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 10
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-4
    samples_per_epoch: int = 150_000
    ratio: tuple[float, float, float, float] = (3.0, 1.0, 1.0, 2.0)  # neg : pos : part : landmark (paper)
    keep: float = 0.7  # online hard sample mining; 1.0 switches it off
    weights: TaskWeights = field(default_factory=TaskWeights)
    seed: int = 0
    threads: int = 0  # torch threads; 0 = leave as is
    val_samples: int = 20_000  # validation samples scored after each epoch (0: all)
    low_res: float = 0.0  # share of training samples seen at a lower resolution
    low_res_min: int = 16  # ... of at least this side (`facecascade.train.augment`)
    micro_batches: int = (
        0  # parts of each batch, shared out over processes (0: one per process; `facecascade.distributed.ddp`)
    )


def epoch_indices(kinds: np.ndarray, ratio: tuple[float, ...], total: int, rng: np.random.Generator) -> np.ndarray:
    """Shuffled sample indices for one epoch, kinds drawn in ``ratio`` (kinds absent or with a zero
    ratio are skipped; a kind with fewer samples than its share is drawn with replacement)."""
    pools = [np.flatnonzero(kinds == k) for k in SampleKind]
    share = np.array([r if len(p) else 0.0 for r, p in zip(ratio, pools)])
    if share.sum() == 0:
        raise ValueError("no samples of any kind with a non-zero ratio")
    counts = np.floor(total * share / share.sum()).astype(int)
    picks = [rng.choice(p, c, replace=c > len(p)) for p, c in zip(pools, counts) if c > 0]
    return rng.permutation(np.concatenate(picks))


def to_batch(samples: SampleArrays, index: np.ndarray, device: torch.device) -> tuple[Tensor, ...]:
    """Normalised images ``(B, 3, S, S)``, kinds, box and landmark targets on ``device``."""
    index = np.sort(index)  # memory-mapped reads in order
    images = torch.from_numpy(np.ascontiguousarray(samples.images[index])).to(device)
    x = normalize_pixels(images.permute(0, 3, 1, 2).float())
    return (
        x,
        torch.from_numpy(np.asarray(samples.kinds[index])).long().to(device),
        torch.from_numpy(np.asarray(samples.boxes[index])).to(device),
        torch.from_numpy(np.asarray(samples.landmarks[index])).to(device),
    )


def stage_outputs(net: nn.Module, x: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
    """``(logits (B, 2), offsets (B, 4), landmarks (B, K, 2) or None)`` for window-sized inputs
    (P-Net's 1x1 response maps are flattened)."""
    out = net(x)
    if out.logits.dim() == 4:  # P-Net
        points = None if out.landmarks is None else out.landmarks[..., 0, 0]
        return out.logits[:, :, 0, 0], out.offsets[:, :, 0, 0], points
    return out.logits, out.offsets, out.landmarks


def batch_loss(net: nn.Module, batch: tuple[Tensor, ...], cfg: TrainConfig, keep: float) -> LossParts:
    x, kinds, boxes, points = batch
    logits, offsets, landmarks = stage_outputs(net, x)
    return mtcnn_loss(logits, offsets, landmarks, kinds, boxes, points, cfg.weights, keep)


def evaluation_batches(
    samples: SampleArrays, limit: int, device: torch.device, size: int = 1024
) -> Iterator[tuple[Tensor, ...]]:
    """`to_batch` batches of all ``samples`` or, with ``limit``, of that many samples evenly spread
    over the set (the same ones every time)."""
    chosen = np.arange(len(samples))
    if 0 < limit < len(samples):
        chosen = np.linspace(0, len(samples) - 1, limit).round().astype(np.int64)
    for start in range(0, len(chosen), size):
        yield to_batch(samples, chosen[start : start + size], device)


@torch.no_grad()
def evaluate(
    net: nn.Module, samples: SampleArrays, cfg: TrainConfig, device: torch.device, limit: int = 0
) -> dict[str, float]:
    """Mean losses over ``samples`` (no hard-sample mining) and face/non-face accuracy; with
    ``limit``, over that many samples evenly spread over the set (`evaluation_batches`)."""
    net.eval()
    sums = np.zeros(4)
    correct = counted = batches = 0
    for x, kinds, boxes, points in evaluation_batches(samples, limit, device):
        logits, offsets, landmarks = stage_outputs(net, x)
        sums += [float(v) for v in mtcnn_loss(logits, offsets, landmarks, kinds, boxes, points, cfg.weights, 1.0)]
        cls = (kinds == SampleKind.NEGATIVE) | (kinds == SampleKind.POSITIVE)
        correct += int(((logits.argmax(1) == 1) == (kinds == SampleKind.POSITIVE))[cls].sum())
        counted += int(cls.sum())
        batches += 1
    net.train()
    means = sums / max(batches, 1)
    return {
        "total": means[0],
        "det": means[1],
        "box": means[2],
        "landmark": means[3],
        "accuracy": correct / max(counted, 1),
    }


class CsvLog:
    """Append-only CSV of training and validation rows; ``fields`` after epoch/step/split."""

    def __init__(self, path: Path, fields: tuple[str, ...] = ("total", "det", "box", "landmark", "accuracy")):
        self.path = path
        self.fields = ["epoch", "step", "split", *fields, "lr", "seconds"]
        if not path.exists():
            with open(path, "w", newline="") as f:
                csv.writer(f).writerow(self.fields)

    def write(self, **row) -> None:
        with open(self.path, "a", newline="") as f:
            csv.writer(f).writerow([row.get(k, "") for k in self.fields])


def log_validation(
    log: CsvLog, name: str, epoch: int, steps: int, began: float, metrics: dict[str, float], quiet: bool
) -> None:
    """One validation row in the log, and (unless ``quiet``) one line on the console."""
    log.write(epoch=epoch, step=steps, split="val", seconds=round(time.time() - began, 1), **metrics)
    if not quiet:
        tqdm.write(f"{name} epoch {epoch}: val " + " ".join(f"{k} {v:.4f}" for k, v in metrics.items()))


class Task(Protocol):
    """What a training loop needs to know about a model: its loss and its validation."""

    fields: tuple[str, ...]  # loss parts and metrics logged, ``total`` first

    def loss(self, net: nn.Module, batch: tuple[Tensor, ...], keep: float) -> NamedTuple: ...

    def evaluate(self, net: nn.Module, samples: SampleArrays, limit: int) -> dict[str, float]: ...


class StageTask:
    """One cascade stage trained with the MTCNN multi-task loss."""

    fields: tuple[str, ...] = ("total", "det", "box", "landmark", "accuracy")

    def __init__(self, cfg: TrainConfig, device: torch.device):
        self.cfg, self.device = cfg, device

    def loss(self, net: nn.Module, batch: tuple[Tensor, ...], keep: float) -> LossParts:
        return batch_loss(net, batch, self.cfg, keep)

    def evaluate(self, net: nn.Module, samples: SampleArrays, limit: int) -> dict[str, float]:
        return evaluate(net, samples, self.cfg, self.device, limit)


def optimizer_step(
    parallel: DataParallel,
    optimizer: torch.optim.Optimizer,
    scheduler,
    index: np.ndarray,
    loss_of: Callable[[nn.Module, Part], Any],
    seed: int,
    step: int,
) -> Terms:
    """One optimiser and scheduler step on the global batch ``index`` (global step number
    ``step``), its parts shared out by ``parallel``; the loss terms for `log_training`."""
    optimizer.zero_grad(set_to_none=True)
    terms = parallel.backward(index, loss_of, seed, step)
    optimizer.step()
    scheduler.step()
    return terms


def log_training(
    log: CsvLog | None, parallel: DataParallel, terms: Terms, epoch: int, step: int, scheduler, began: float
) -> dict[str, float]:
    """The step's mean loss terms over all parts (a collective: every process calls it), written
    as a training row of ``log`` (rank 0's; ``None`` elsewhere)."""
    values = parallel.mean_terms(terms)
    if log is not None:
        seconds = round(time.time() - began, 1)
        log.write(epoch=epoch + 1, step=step, split="train", lr=scheduler.get_last_lr()[0], seconds=seconds, **values)
    return values


def _checkpoint(path: Path, net, optimizer, scheduler, epoch: int, rng: np.random.Generator) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(
        {
            "net": net.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "epoch": epoch,
            "rng": rng.bit_generator.state,
            "torch_rng": torch.get_rng_state(),
        },
        tmp,
    )
    tmp.replace(path)


def _resume(path: Path, net, optimizer, scheduler, rng: np.random.Generator) -> int:
    if not path.is_file():
        return 0
    state = torch.load(path, map_location="cpu", weights_only=True)
    net.load_state_dict(state["net"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    rng.bit_generator.state = state["rng"]
    torch.set_rng_state(state["torch_rng"])
    return int(state["epoch"])


def steps_per_epoch(cfg: TrainConfig) -> int:
    return max(1, cfg.samples_per_epoch // cfg.batch_size)


def train_stage(
    net: nn.Module,
    train: SampleArrays,
    val: SampleArrays | None,
    cfg: TrainConfig,
    out: Path,
    device: torch.device = torch.device("cpu"),
    quiet: bool = False,
) -> nn.Module:
    """Train one cascade stage ``net`` on ``train`` (`fit` with the MTCNN loss), with AdamW and a
    cosine learning-rate decay."""
    net.to(device)
    optimizer = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    total = cfg.epochs * steps_per_epoch(cfg)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * min(1.0, s / total)))
    )
    return fit(net, train, val, cfg, out, StageTask(cfg, device), optimizer, scheduler, device, quiet)


def fit(
    net: nn.Module,
    train: SampleArrays,
    val: SampleArrays | None,
    cfg: TrainConfig,
    out: Path,
    task: Task,
    optimizer: torch.optim.Optimizer,
    scheduler,
    device: torch.device = torch.device("cpu"),
    quiet: bool = False,
) -> nn.Module:
    """Train ``net`` on ``train`` with ``task``'s loss; checkpoint each epoch to ``out/last.pt``
    and resume from it.

    Epochs draw sample kinds in ``cfg.ratio``; the scheduler steps once per batch. The log
    ``out/log.csv`` has one training row per 50 steps and one validation row per epoch. Under
    ``torchrun`` the batches are shared out over the processes (`facecascade.distributed.ddp`);
    rank 0 alone logs, validates and checkpoints.
    """
    world = current_world()
    quiet = quiet or not world.main
    out.mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    net.to(device).train()
    steps = steps_per_epoch(cfg)
    start = _resume(out / "last.pt", net, optimizer, scheduler, rng)
    parallel = data_parallel(net, cfg.micro_batches)
    log = CsvLog(out / "log.csv", task.fields) if world.main else None
    began = time.time()

    def loss_of(model: nn.Module, part: Part) -> NamedTuple:
        batch = to_batch(train, part.index, device)
        batch = (low_resolution(batch[0], cfg.low_res, cfg.low_res_min), *batch[1:])
        return task.loss(model, batch, cfg.keep)

    for epoch in range(start, cfg.epochs):
        order = epoch_indices(np.asarray(train.kinds), cfg.ratio, steps * cfg.batch_size, rng)
        bar = tqdm(
            range(steps), desc=f"{out.name} epoch {epoch + 1}/{cfg.epochs}", disable=quiet, unit="step", leave=False
        )
        for step in bar:
            index = order[step * cfg.batch_size : (step + 1) * cfg.batch_size]
            terms = optimizer_step(parallel, optimizer, scheduler, index, loss_of, cfg.seed, epoch * steps + step)
            if step % 50 == 0:
                values = log_training(log, parallel, terms, epoch, step, scheduler, began)
                bar.set_postfix(loss=f"{values[task.fields[0]]:.3f}")
        if log is not None:
            if val is not None and len(val):
                log_validation(log, out.name, epoch + 1, steps, began, task.evaluate(net, val, cfg.val_samples), quiet)
            _checkpoint(out / "last.pt", net, optimizer, scheduler, epoch + 1, rng)
    barrier()
    net.eval()
    return net


def config_dict(cfg: TrainConfig) -> dict:
    d = asdict(cfg)
    d["weights"] = list(cfg.weights)
    return d
