"""Data-parallel training with `torch.distributed`: the same trainers on 1 process or N.

``torchrun --nproc_per_node=N -m facecascade train ...`` starts N processes; each joins the
process group torchrun describes (`init_from_env`: gloo on CPU, nccl on CUDA) and the trainers
share every optimiser step out between them:

* **The global batch defines the step, not the number of processes.** Every process draws the
  same epoch order and the same global batches from the run's seeded generator; a global batch is
  cut into ``micro_batches`` equal parts (default: one per process), and process ``r`` computes
  parts ``r, r + N, r + 2N, ...``. Each part is augmented by its own generator, seeded by (run seed,
  step, part), and torch's generator is reseeded the same way, so a part's samples, augmentation,
  loss and online hard sample mining do not depend on which process computes it.
* **Gradients** are those of the mean of the parts' losses: each part's loss is scaled by
  ``N / micro_batches`` and `DistributedDataParallel` averages over the processes in the last
  backward pass of each process (the earlier ones run under ``no_sync``). One process with
  ``micro_batches=M`` (gradient accumulation) therefore takes the same steps as M processes,
  up to float rounding: that is what the tests check, and what lets a checkpoint written by N
  processes resume in any other number.
* **Online hard sample mining** (MTCNN, FaceCraft) keeps the hardest 70 % of each part, as the
  paper keeps 70 % of each mini-batch: with a global batch of 256 in 2 parts, the hardest 70 % of
  each 128. Set ``--micro-batches`` to keep one run's mining (and BatchNorm's batch statistics) the
  same whatever N is. (BatchNorm's running statistics are rank 0's: `DistributedDataParallel`
  hands them to the others at each forward pass; the learned weights do not depend on them.)
* **Rank 0 alone** logs, evaluates, writes checkpoints and packs weights; the others wait for it
  (`main_first`, `barrier`). All processes read checkpoints at resume, so ``--out`` must be on a
  file system they share (one machine, or a network file system on a cluster).
"""

from __future__ import annotations

import contextlib
import datetime
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn

# Rank 0 may evaluate, mine samples or pack weights for a long while; the others wait that long.
TIMEOUT = datetime.timedelta(hours=6)


@dataclass(frozen=True)
class World:
    """This process's place among the training processes."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Rank 0: the one that logs, evaluates and writes."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def current_world() -> World:
    """The process group this process belongs to (`init_from_env`), or a world of one."""
    if not (dist.is_available() and dist.is_initialized()):
        return World()
    return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def init_from_env(device: str = "cpu") -> World:
    """Join the process group that ``torchrun`` describes in the environment (``WORLD_SIZE``,
    ``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``): gloo for ``device="cpu"``, nccl for
    CUDA (each process on GPU ``LOCAL_RANK``). Without torchrun (``WORLD_SIZE`` unset or 1) the
    world is this process alone and nothing is started."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return current_world()
    if not dist.is_initialized():
        cuda = device.startswith("cuda")
        if cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if cuda else "gloo", timeout=TIMEOUT)
    return current_world()


def device_for(device: str, world: World) -> str:
    """``cuda`` becomes ``cuda:<local rank>`` in a multi-process run; other devices are kept."""
    return f"cuda:{world.local_rank}" if world.distributed and device == "cuda" else device


def barrier() -> None:
    """Wait for every process (nothing to wait for in a world of one)."""
    if current_world().distributed:
        dist.barrier()


@contextlib.contextmanager
def main_first() -> Iterator[None]:
    """Rank 0 runs the block first (e.g. writes a sample cache); the others run it once rank 0
    is through (and find what it wrote)."""
    world = current_world()
    if not world.main:
        barrier()
    try:
        yield
    finally:
        if world.main:
            barrier()


def leave() -> None:
    """Leave the process group at the end of a run (a no-op without one)."""
    if current_world().distributed:
        barrier()
        dist.destroy_process_group()


def part_seed(seed: int, step: int, part: int) -> int:
    """The seed of part ``part`` of global step ``step``: the same in every process."""
    return int(np.random.SeedSequence([seed, step, part]).generate_state(1)[0])


@dataclass(frozen=True)
class Part:
    """One micro-batch of a global batch: its number, its sample indices and its generator."""

    number: int
    index: np.ndarray
    rng: np.random.Generator


def parts_of(index: np.ndarray, micro_batches: int, world: World, seed: int, step: int) -> list[Part]:
    """This process's parts of the global batch ``index`` (`np.array_split` into ``micro_batches``;
    part ``m`` belongs to process ``m % world.size``)."""
    chunks = np.array_split(np.asarray(index), micro_batches)
    return [
        Part(m, chunks[m], np.random.default_rng(part_seed(seed, step, m)))
        for m in range(world.rank, micro_batches, world.size)
    ]


class Terms(NamedTuple):
    """Loss terms summed over this process's parts of a step (`DataParallel.backward`)."""

    names: tuple[str, ...]
    sums: Tensor


class DataParallel:
    """A network's optimiser steps shared out over the processes of `current_world`.

    Build it with `data_parallel`; call the network through `model` (the `DistributedDataParallel`
    wrapper in a multi-process run, the network itself otherwise); `backward` runs this process's
    parts of one global batch."""

    def __init__(self, net: nn.Module, model: nn.Module, world: World, micro_batches: int):
        self.net, self.model, self.world, self.micro_batches = net, model, world, micro_batches

    def backward(self, index: np.ndarray, loss_of: Callable[[nn.Module, Part], Any], seed: int, step: int) -> Terms:
        """Accumulate the gradient of the mean loss over the ``micro_batches`` parts of ``index``
        (gradients already zeroed by the caller); ``loss_of(model, part)`` gives a part's loss
        terms as a named tuple or a dict of tensors, the total first. Returns this process's sums
        of the terms over its parts, for `mean_terms`."""
        parts = parts_of(index, self.micro_batches, self.world, seed, step)
        scale = self.world.size / self.micro_batches
        sums: Tensor | None = None
        names: tuple[str, ...] = ()
        for i, part in enumerate(parts):
            torch.manual_seed(part_seed(seed, step, part.number))
            sync = i == len(parts) - 1 or not self.world.distributed
            with contextlib.nullcontext() if sync else self.model.no_sync():  # type: ignore[operator]
                terms = loss_of(self.model, part)
                named = dict(terms._asdict() if hasattr(terms, "_asdict") else terms)
                (next(iter(named.values())) * scale).backward()
            names = tuple(named)
            values = torch.stack([torch.as_tensor(t).detach().double().cpu() for t in named.values()])
            sums = values if sums is None else sums + values
        assert sums is not None  # every process has at least one part (micro_batches >= size)
        return Terms(names, sums)

    def mean_terms(self, terms: Terms) -> dict[str, float]:
        """Each loss term's mean over all parts of the step (a collective: every process calls it)."""
        sums = terms.sums.clone()
        if self.world.distributed:
            dist.all_reduce(sums)
        return {name: float(v) for name, v in zip(terms.names, sums / self.micro_batches)}


def data_parallel(net: nn.Module, micro_batches: int = 0, find_unused: bool = True) -> DataParallel:
    """`DataParallel` for ``net`` (already on its device, weights loaded) in `current_world`.

    Args:
        micro_batches: parts per global batch (0: one per process); at least the number of processes.
        find_unused: let `DistributedDataParallel` find the parameters a step leaves without a
            gradient (the landmark head of a part without landmark faces, a gated branch, a
            frozen phase); a small cost per step for these networks.
    """
    world = current_world()
    parts = micro_batches or world.size
    if parts < world.size:
        raise ValueError(f"micro_batches ({parts}) must be at least the number of processes ({world.size})")
    model: nn.Module = net
    if world.distributed:
        on_cuda = next(net.parameters()).is_cuda
        model = nn.parallel.DistributedDataParallel(
            net,
            device_ids=[torch.cuda.current_device()] if on_cuda else None,
            find_unused_parameters=find_unused,
        )
    return DataParallel(net, model, world, parts)


def main_only(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` on rank 0 (its result; ``None`` elsewhere), then a barrier."""
    result = fn(*args, **kwargs) if current_world().main else None
    barrier()
    return result
